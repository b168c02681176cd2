package workflow

import (
	"go.yaml.in/yaml/v3"
)

// serverless reads the serverless-cd dialect: top-level steps: become one
// job "default" and triggers: map onto on: with CEL filters.
func (p *parser) serverless(w *Workflow, root, stepsNode, triggersNode *yaml.Node) {
	w.Dialect = "serverless-cd"
	j := &Job{ID: "default", Pos: posOf(stepsNode), RunsOn: &RunsOn{Labels: []string{"ubuntu-latest"}, Pos: posOf(stepsNode)}}
	w.Jobs = []*Job{j}
	p.mapping(root, false, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			w.Name, _ = p.str(v)
		case "env":
			w.Env = p.kvs(v)
		case "steps":
			if v.Kind != yaml.SequenceNode {
				p.mapping(v, false, nil)
				return
			}
			ids := map[string]bool{}
			for _, c := range v.Content {
				s := p.step(c, true)
				if s == nil {
					continue
				}
				j.Steps = append(j.Steps, s.Step)
				if s.ID != "" {
					if ids[s.ID] {
						p.errPos(s.idPos, "The identifier '%s' may not be used more than once within the same scope.", s.ID)
					}
					ids[s.ID] = true
				}
			}
		case "triggers":
			w.On = p.triggers(v)
		default:
			p.unknown(key, k)
		}
	})
}

// triggers reads triggers: {github|gitlab|gitea: {events: [{eventName, filter}]}}.
func (p *parser) triggers(n *yaml.Node) []*Trigger {
	var out []*Trigger
	p.mapping(n, false, func(forge string, k, v *yaml.Node) {
		switch forge {
		case "github", "gitlab", "gitea", "gitee", "codeup":
		default:
			p.unknown(forge, k)
			return
		}
		p.mapping(v, false, func(key string, kk, vv *yaml.Node) {
			if key != "events" {
				p.unknown(key, kk)
				return
			}
			if vv.Kind != yaml.SequenceNode {
				if !isNull(vv) {
					p.errAt(vv, "Unexpected value '%s': events must be a list", ShortValue(vv))
				}
				return
			}
			for _, e := range vv.Content {
				t := &Trigger{Pos: posOf(e)}
				have := map[string]bool{}
				p.mapping(e, false, func(key string, ek, ev *yaml.Node) {
					have[key] = true
					switch key {
					case "eventName":
						t.Event, _ = p.literal(ev)
					case "filter":
						t.Filter, _ = p.str(ev)
						t.FilterPos = posOf(ev)
					default:
						p.unknown(key, ek)
					}
				})
				if e.Kind == yaml.MappingNode {
					p.required(e, have, "eventName")
					if t.Event != "" {
						out = append(out, t)
					}
				}
			}
		})
	})
	return out
}
