package workflow

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// ParseAction reads an action.yml file. It returns the action (possibly
// partial) and the problems found, sorted by position. It never panics.
func ParseAction(data []byte, file string) (*Action, Problems) {
	p := &parser{file: file}
	a := &Action{File: file}
	if root := p.load(data); root != nil {
		a.Node = root
		p.action(a, root)
	}
	SortProblems(p.probs)
	return a, p.probs
}

func (p *parser) action(a *Action, root *yaml.Node) {
	have := map[string]bool{}
	p.mapping(root, false, func(key string, k, v *yaml.Node) {
		have[key] = true
		switch key {
		case "name":
			a.Name, _ = p.str(v)
		case "description":
			a.Description, _ = p.str(v)
		case "author":
			p.str(v)
		case "branding":
			p.mapping(v, false, func(string, *yaml.Node, *yaml.Node) {})
		case "inputs":
			a.Inputs = p.inputs(v, "action")
		case "outputs":
			a.Outputs = p.outputs(v, false)
		case "runs":
			p.runs(&a.Runs, v)
		default:
			p.unknown(key, k)
		}
	})
	if !have["runs"] {
		p.errAt(root, "Required property is missing: runs")
	}
}

func (p *parser) runs(r *Runs, n *yaml.Node) {
	have := map[string]bool{}
	stepsNode := (*yaml.Node)(nil)
	p.mapping(n, false, func(key string, k, v *yaml.Node) {
		have[key] = true
		switch key {
		case "using":
			r.Using, _ = p.literal(v)
			u := strings.ToLower(r.Using)
			if u != "composite" && u != "docker" && !strings.HasPrefix(u, "node") {
				p.errAt(v, "Unexpected value '%s'", r.Using)
			}
		case "steps":
			stepsNode = v
			r.Steps = p.steps(v, true)
		case "image":
			r.Image, _ = p.str(v)
		case "entrypoint":
			r.Entrypoint, _ = p.str(v)
		case "pre-entrypoint":
			r.PreEntrypoint, _ = p.str(v)
		case "post-entrypoint":
			r.PostEntrypoint, _ = p.str(v)
		case "args":
			r.Args = p.strList(v)
		case "env":
			r.Env = p.kvs(v)
		case "main":
			r.Main, _ = p.str(v)
		case "pre":
			r.Pre, _ = p.str(v)
		case "pre-if":
			r.PreIf, _ = p.str(v)
		case "post":
			r.Post, _ = p.str(v)
		case "post-if":
			r.PostIf, _ = p.str(v)
		default:
			p.unknown(key, k)
		}
	})
	if n.Kind != yaml.MappingNode {
		return
	}
	p.required(n, have, "using")
	switch u := strings.ToLower(r.Using); {
	case u == "composite":
		if stepsNode == nil {
			p.errAt(n, "Required property is missing: steps")
		}
	case u == "docker":
		p.required(n, have, "image")
	case strings.HasPrefix(u, "node"):
		p.required(n, have, "main")
	}
}
