package workflow

import (
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Parse reads a workflow file. It returns the workflow (possibly partial)
// and the problems found, sorted by position. It never panics.
func Parse(data []byte, file string) (*Workflow, Problems) {
	return ParseLimits(data, file, Limits{})
}

// ParseLimits is Parse with limits other than the defaults.
func ParseLimits(data []byte, file string, limits Limits) (*Workflow, Problems) {
	p := &parser{file: file, limits: limits}
	w := &Workflow{File: file}
	if root := p.load(data); root != nil {
		w.Node = root
		p.workflow(w, root)
	}
	SortProblems(p.probs)
	return w, p.probs
}

func (p *parser) workflow(w *Workflow, root *yaml.Node) {
	var hasJobs, hasSteps, hasOn bool
	var jobsNode, stepsNode, triggersNode *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch root.Content[i].Value {
		case "jobs":
			hasJobs, jobsNode = true, root.Content[i+1]
		case "steps":
			hasSteps, stepsNode = true, root.Content[i+1]
		case "triggers":
			triggersNode = root.Content[i+1]
		}
	}
	if hasSteps && !hasJobs {
		p.serverless(w, root, stepsNode, triggersNode)
		return
	}
	p.mapping(root, false, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			w.Name, _ = p.literal(v)
		case "run-name":
			w.RunName, _ = p.str(v)
		case "description":
			p.str(v)
		case "on":
			hasOn = true
			w.On = p.on(v)
		case "env":
			w.Env = p.kvs(v)
		case "defaults":
			w.Defaults = p.defaults(v)
		case "permissions":
			w.Permissions = p.permissions(v)
		case "concurrency":
			w.Concurrency = p.concurrency(v)
		case "jobs":
			w.Jobs = p.jobs(v)
		default:
			p.unknown(key, k)
		}
	})
	if !hasOn {
		p.errAt(root, "Required property is missing: on")
	}
	if !hasJobs {
		p.errAt(root, "Required property is missing: jobs")
	} else if jobsNode.Kind == yaml.MappingNode && len(jobsNode.Content) == 0 || isNull(jobsNode) {
		p.errAt(jobsNode, "The workflow must contain at least one job with no dependencies.")
	}
}

// knownEvents are the events GitHub accepts in on:, with the filter keys each takes.
var knownEvents = map[string][]string{
	"branch_protection_rule":      {"types"},
	"check_run":                   {"types"},
	"check_suite":                 {"types"},
	"create":                      nil,
	"delete":                      nil,
	"deployment":                  nil,
	"deployment_status":           nil,
	"discussion":                  {"types"},
	"discussion_comment":          {"types"},
	"fork":                        nil,
	"gollum":                      nil,
	"image_version":               {"types", "names", "versions"},
	"issue_comment":               {"types"},
	"issues":                      {"types"},
	"label":                       {"types"},
	"merge_group":                 {"types", "branches", "branches-ignore"},
	"milestone":                   {"types"},
	"page_build":                  nil,
	"project":                     {"types"},
	"project_card":                {"types"},
	"project_column":              {"types"},
	"public":                      nil,
	"pull_request":                {"types", "branches", "branches-ignore", "paths", "paths-ignore", "tags", "tags-ignore"},
	"pull_request_comment":        {"types"},
	"pull_request_review":         {"types"},
	"pull_request_review_comment": {"types"},
	"pull_request_target":         {"types", "branches", "branches-ignore", "paths", "paths-ignore", "tags", "tags-ignore"},
	"push":                        {"branches", "branches-ignore", "tags", "tags-ignore", "paths", "paths-ignore"},
	"registry_package":            {"types"},
	"release":                     {"types"},
	"repository_dispatch":         {"types"},
	"schedule":                    nil,
	"status":                      nil,
	"watch":                       {"types"},
	"workflow_call":               {"inputs", "outputs", "secrets"},
	"workflow_dispatch":           {"inputs"},
	"workflow_run":                {"types", "workflows", "branches", "branches-ignore"},
}

// IsEvent says whether GitHub knows the event name (in on:).
func IsEvent(name string) bool {
	_, ok := knownEvents[name]
	return ok
}

// Events lists the event names GitHub knows, sorted.
func Events() []string {
	out := make([]string, 0, len(knownEvents))
	for k := range knownEvents {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// EventKeys lists the keys on: takes under an event (filters, inputs,
// ...), beside filter (Conveyor's CEL filter, which every event takes).
func EventKeys(name string) []string {
	return append([]string(nil), knownEvents[name]...)
}

func (p *parser) event(name string, n *yaml.Node) bool {
	if _, ok := knownEvents[name]; !ok {
		p.errAt(n, "Unexpected value '%s'", name)
		return false
	}
	return true
}

func (p *parser) on(n *yaml.Node) []*Trigger {
	var out []*Trigger
	switch n.Kind {
	case yaml.ScalarNode:
		s, ok := p.literal(n)
		if ok && p.event(s, n) {
			out = append(out, &Trigger{Event: s, Pos: posOf(n)})
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			s, ok := p.literal(c)
			if ok && p.event(s, c) {
				out = append(out, &Trigger{Event: s, Pos: posOf(c)})
			}
		}
	case yaml.MappingNode:
		p.mapping(n, false, func(key string, k, v *yaml.Node) {
			if !p.event(key, k) {
				return
			}
			t := &Trigger{Event: key, Pos: posOf(k)}
			out = append(out, t)
			p.trigger(t, k, v)
		})
	}
	return out
}

// trigger reads what is under event t.Event in on: (k its key, v its
// value): a schedule, or the filters and declarations the event takes.
func (p *parser) trigger(t *Trigger, k, v *yaml.Node) {
	if t.Event == "schedule" {
		p.schedule(t, v)
		return
	}
	allowed := knownEvents[t.Event]
	// GitHub's runtime parser (the workflow-root schema) takes any
	// value under an event but workflow_call, and uses the keys it
	// knows; the language service's workflow-root-strict does not.
	loose := !p.limits.Strict && t.Event != "workflow_call"
	if loose && v.Kind != yaml.MappingNode {
		return
	}
	p.mapping(v, false, func(fk string, fkn, fv *yaml.Node) {
		if fk == "filter" {
			t.Filter, _ = p.str(fv)
			t.FilterPos = posOf(fv)
			return
		}
		if !contains(allowed, fk) {
			if !loose {
				p.unknown(fk, fkn)
			}
			return
		}
		p.triggerKey(t, fk, fv, loose)
	})
	p.exclusiveFilters(t, k)
}

// triggerKey reads one key the event takes: a filter list, or a
// workflow_call's / workflow_dispatch's declarations.
func (p *parser) triggerKey(t *Trigger, key string, v *yaml.Node, loose bool) {
	switch key {
	case "types":
		t.Types = p.strList(v)
	case "branches":
		t.Branches = p.strList(v)
	case "branches-ignore":
		t.BranchesIgnore = p.strList(v)
	case "tags":
		t.Tags = p.strList(v)
	case "tags-ignore":
		t.TagsIgnore = p.strList(v)
	case "paths":
		t.Paths = p.strList(v)
	case "paths-ignore":
		t.PathsIgnore = p.strList(v)
	case "workflows":
		t.Workflows = p.strList(v)
	case "names", "versions":
		p.strList(v)
	case "inputs":
		if loose && v.Kind != yaml.MappingNode {
			return
		}
		t.Inputs = p.inputs(v, t.Event)
	case "outputs":
		t.Outputs = p.outputs(v, true)
	case "secrets":
		t.Secrets = p.secretDecls(v)
	}
}

// exclusiveFilters reports, at the event's key k, a filter given with its
// -ignore twin.
func (p *parser) exclusiveFilters(t *Trigger, k *yaml.Node) {
	if t.Branches != nil && t.BranchesIgnore != nil {
		p.errAt(k, "Only one of 'branches' and 'branches-ignore' may be used for event '%s'", t.Event)
	}
	if t.Tags != nil && t.TagsIgnore != nil {
		p.errAt(k, "Only one of 'tags' and 'tags-ignore' may be used for event '%s'", t.Event)
	}
	if t.Paths != nil && t.PathsIgnore != nil {
		p.errAt(k, "Only one of 'paths' and 'paths-ignore' may be used for event '%s'", t.Event)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (p *parser) schedule(t *Trigger, n *yaml.Node) {
	if n.Kind != yaml.SequenceNode {
		if !isNull(n) {
			p.errAt(n, "Unexpected value '%s': schedule must be a list of {cron}", ShortValue(n))
		}
		return
	}
	for _, c := range n.Content {
		have := map[string]bool{}
		p.mapping(c, false, func(key string, k, v *yaml.Node) {
			have[key] = true
			switch key {
			case "cron":
				if s, ok := p.literal(v); ok {
					t.Cron = append(t.Cron, s)
				}
			case "timezone":
				p.literal(v)
			default:
				p.unknown(key, k)
			}
		})
		if c.Kind == yaml.MappingNode {
			p.required(c, have, "cron")
		}
	}
}

var inputTypes = map[string]bool{"string": true, "boolean": true, "number": true, "choice": true, "environment": true}

func (p *parser) inputs(n *yaml.Node, event string) []*Input {
	var out []*Input
	p.mapping(n, false, func(name string, k, v *yaml.Node) {
		in := &Input{Name: name, Pos: posOf(k)}
		out = append(out, in)
		if event == "workflow_dispatch" && !p.limits.Strict && !isNull(v) && v.Kind != yaml.MappingNode {
			return // the runtime parser takes any value here
		}
		have := map[string]bool{}
		p.mapping(v, false, func(key string, kk, vv *yaml.Node) {
			have[key] = true
			switch key {
			case "description":
				in.Description, _ = p.str(vv)
			case "type":
				in.Type, _ = p.literal(vv)
				ok := inputTypes[in.Type]
				if event == "workflow_call" && (in.Type == "choice" || in.Type == "environment") {
					ok = false
				}
				if !ok {
					p.errAt(vv, "Unexpected value '%s'", in.Type)
				}
			case "required":
				r := p.boolOrExpr(vv)
				in.Required, _ = parseBool(r)
			case "default":
				in.Default, _ = p.str(vv)
				in.HasDefault = true
			case "options":
				if event != "workflow_call" {
					in.Options = p.seqOfStr(vv)
					break
				}
				p.unknown(key, kk)
			case "deprecationMessage":
				if event == "action" {
					p.str(vv)
					break
				}
				p.unknown(key, kk)
			default:
				// The runtime parser ignores what it does not know
				// under a workflow_dispatch input (a name:, say).
				if event != "workflow_dispatch" || p.limits.Strict {
					p.unknown(key, kk)
				}
			}
		})
		if event == "workflow_call" && v.Kind == yaml.MappingNode {
			p.required(v, have, "type")
		}
		if in.Type == "choice" && len(in.Options) == 0 && v.Kind == yaml.MappingNode {
			p.errAt(v, "Required property is missing: options")
		}
	})
	return out
}

func (p *parser) outputs(n *yaml.Node, needValue bool) []*Output {
	var out []*Output
	p.mapping(n, false, func(name string, k, v *yaml.Node) {
		o := &Output{Name: name, Pos: posOf(k)}
		out = append(out, o)
		have := map[string]bool{}
		p.mapping(v, false, func(key string, kk, vv *yaml.Node) {
			have[key] = true
			switch key {
			case "description":
				o.Description, _ = p.str(vv)
			case "value":
				o.Value, _ = p.str(vv)
			default:
				p.unknown(key, kk)
			}
		})
		if needValue && v.Kind == yaml.MappingNode || isNull(v) && needValue {
			p.required(v, have, "value")
		}
	})
	return out
}

func (p *parser) secretDecls(n *yaml.Node) []*Secret {
	var out []*Secret
	p.mapping(n, false, func(name string, k, v *yaml.Node) {
		s := &Secret{Name: name, Pos: posOf(k)}
		out = append(out, s)
		p.mapping(v, false, func(key string, kk, vv *yaml.Node) {
			switch key {
			case "description":
				p.str(vv)
			case "required":
				r := p.boolOrExpr(vv)
				s.Required, _ = parseBool(r)
			default:
				p.unknown(key, kk)
			}
		})
	})
	return out
}

func (p *parser) defaults(n *yaml.Node) *Defaults {
	d := &Defaults{}
	p.mapping(n, false, func(key string, k, v *yaml.Node) {
		if key != "run" {
			p.unknown(key, k)
			return
		}
		p.mapping(v, false, func(key string, kk, vv *yaml.Node) {
			switch key {
			case "shell":
				d.Shell, _ = p.str(vv)
			case "working-directory":
				d.WorkingDirectory, _ = p.str(vv)
			default:
				p.unknown(key, kk)
			}
		})
	})
	return d
}

// PermissionScopes are the scopes permissions: accepts.
var PermissionScopes = []string{"actions", "artifact-metadata", "attestations", "checks", "code-quality", "contents", "copilot-requests", "deployments", "discussions", "drives", "id-token", "issues", "models", "packages", "pages", "pull-requests", "repository-projects", "security-events", "statuses", "vulnerability-alerts"}

// permissionLevels are the levels a scope takes when not read, write and
// none (GitHub's schema: write-or-no-access, read-or-no-access).
var permissionLevels = map[string][]string{
	"id-token":             {"read", "write", "none"}, // read: accepted by GitHub's runtime
	"copilot-requests":     {"write", "none"},
	"models":               {"read", "none"},
	"vulnerability-alerts": {"read", "none"},
}

func (p *parser) permissions(n *yaml.Node) *Permissions {
	perm := &Permissions{}
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		s, _ := p.literal(n)
		if s != "read-all" && s != "write-all" {
			p.errAt(n, "Unexpected value '%s'", s)
		}
		perm.All = s
		return perm
	}
	perm.Scopes = map[string]string{}
	p.mapping(n, false, func(key string, k, v *yaml.Node) {
		if !contains(PermissionScopes, key) {
			p.unknown(key, k)
			return
		}
		s, ok := p.literal(v)
		if !ok {
			return
		}
		levels, special := permissionLevels[key]
		if !special {
			levels = []string{"read", "write", "none"}
		}
		ok = contains(levels, s)
		if !ok {
			p.errAt(v, "Unexpected value '%s'", s)
			return
		}
		perm.Scopes[key] = s
	})
	return perm
}

func (p *parser) concurrency(n *yaml.Node) *Concurrency {
	c := &Concurrency{}
	if n.Kind == yaml.ScalarNode {
		c.Group, _ = p.str(n)
		return c
	}
	have := map[string]bool{}
	p.mapping(n, false, func(key string, k, v *yaml.Node) {
		have[key] = true
		switch key {
		case "group":
			c.Group, _ = p.str(v)
		case "cancel-in-progress":
			c.CancelInProgress = p.boolOrExpr(v)
		case "queue":
			p.literal(v)
		default:
			p.unknown(key, k)
		}
	})
	if n.Kind == yaml.MappingNode {
		p.required(n, have, "group")
	}
	return c
}

// ValidID reports whether s is a valid job or step id for GitHub, and why not.
func ValidID(s string) (bool, string) {
	if strings.HasPrefix(s, "__") {
		return false, "The identifier '" + s + "' is invalid. IDs starting with '__' are reserved."
	}
	bad := "The identifier '" + s + "' is invalid. IDs may only contain alphanumeric characters, '_', and '-'. IDs must start with a letter or '_' and and must be less than 100 characters."
	if s == "" || len(s) >= 100 {
		return false, bad
	}
	for i, r := range s {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_'
		digit := r >= '0' && r <= '9' || r == '-'
		if !letter && (i == 0 || !digit) {
			return false, bad
		}
	}
	return true, ""
}

func (p *parser) jobs(n *yaml.Node) []*Job {
	var out []*Job
	p.mapping(n, true, func(id string, k, v *yaml.Node) {
		if id == "" {
			p.errAt(k, "Unexpected value ''")
			return
		}
		if ok, why := ValidID(id); !ok {
			p.errAt(k, "%s", why)
		}
		j := &Job{ID: id, Pos: posOf(k)}
		out = append(out, j)
		if max := p.limits.MaxJobs; max > 0 && len(out) == max+1 {
			p.errAt(k, "%s", TooManyJobs(max))
		}
		p.job(j, v)
	})
	return out
}

// TooManyJobs is GitHub's message for a workflow over Limits.MaxJobs.
func TooManyJobs(max int) string {
	return fmt.Sprintf("The workflow may not contain more than %d jobs", max)
}

// jobKeys are the keys of a job that runs steps; reusableKeys those of a
// job that calls a reusable workflow.
var (
	jobKeys      = []string{"name", "needs", "if", "runs-on", "environment", "env", "defaults", "outputs", "strategy", "timeout-minutes", "continue-on-error", "container", "services", "permissions", "concurrency", "steps", "snapshot", "cancel-timeout-minutes"}
	reusableKeys = []string{"name", "needs", "if", "uses", "with", "secrets", "strategy", "permissions", "concurrency", "continue-on-error"}
)

func (p *parser) job(j *Job, n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		if isNull(n) {
			p.errAt(n, "Required property is missing: runs-on")
			return
		}
		p.mapping(n, false, nil)
		return
	}
	have := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		have[n.Content[i].Value] = true
	}
	reusable := have["uses"] && !have["runs-on"]
	allowed := jobKeys
	if reusable {
		allowed = reusableKeys
	}
	p.mapping(n, false, func(key string, k, v *yaml.Node) {
		if !contains(allowed, key) {
			p.unknown(key, k)
			return
		}
		p.jobKey(j, key, v)
	})
	if !reusable && !have["runs-on"] {
		p.errAt(n, "Required property is missing: runs-on")
	}
}

// jobKey reads one key of a job, one the job's kind allows.
func (p *parser) jobKey(j *Job, key string, v *yaml.Node) {
	switch key {
	case "name":
		j.Name, _ = p.str(v)
	case "needs":
		p.needs(j, v)
	case "if":
		j.If, _ = p.str(v)
		j.IfPos = posOf(v)
	case "runs-on":
		j.RunsOn = p.runsOn(v)
	case "environment":
		p.environment(j, v)
	case "env":
		j.Env = p.kvs(v)
	case "defaults":
		j.Defaults = p.defaults(v)
	case "outputs":
		j.Outputs = p.kvs(v)
	case "strategy":
		j.Strategy = p.strategy(v)
	case "timeout-minutes", "cancel-timeout-minutes":
		s := p.numberOrExpr(v)
		if key == "timeout-minutes" {
			j.TimeoutMinutes = s
		}
	case "continue-on-error":
		j.ContinueOnError = p.boolOrExpr(v)
	case "container":
		j.Container = p.container(v, true)
	case "services":
		p.mapping(v, false, func(name string, kk, vv *yaml.Node) {
			c := p.container(vv, false)
			if c != nil {
				j.Services = append(j.Services, &Service{Name: name, Container: *c})
			}
		})
	case "permissions":
		j.Permissions = p.permissions(v)
	case "concurrency":
		j.Concurrency = p.concurrency(v)
	case "steps":
		j.Steps = p.steps(v, false)
	case "snapshot":
		p.snapshot(v)
	case "uses":
		j.Uses, _ = p.literal(v)
		j.UsesPos = posOf(v)
	case "with":
		j.With = p.kvs(v)
	case "secrets":
		p.jobSecrets(j, v)
	}
}

// needs reads a job's needs: one job ID or a list of them.
func (p *parser) needs(j *Job, v *yaml.Node) {
	switch v.Kind {
	case yaml.ScalarNode:
		if s, ok := p.literal(v); ok && s != "" {
			j.Needs = append(j.Needs, s)
			j.NeedsPos = append(j.NeedsPos, posOf(v))
		}
	case yaml.SequenceNode:
		for _, c := range v.Content {
			if s, ok := p.literal(c); ok {
				j.Needs = append(j.Needs, s)
				j.NeedsPos = append(j.NeedsPos, posOf(c))
			}
		}
	default:
		p.errAt(v, "A mapping was not expected")
	}
}

// jobSecrets reads the secrets: of a job that calls a reusable workflow:
// inherit, or a mapping of names to values.
func (p *parser) jobSecrets(j *Job, v *yaml.Node) {
	if v.Kind == yaml.ScalarNode && !isNull(v) {
		if v.Value == "inherit" {
			j.SecretsInherit = true
		} else {
			p.errAt(v, "Unexpected value '%s'", v.Value)
		}
		return
	}
	j.Secrets = p.kvs(v)
}

func (p *parser) snapshot(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode {
		p.str(n)
		return
	}
	have := map[string]bool{}
	p.mapping(n, false, func(key string, k, v *yaml.Node) {
		have[key] = true
		switch key {
		case "image-name", "version", "if":
			p.str(v)
		default:
			p.unknown(key, k)
		}
	})
	if n.Kind == yaml.MappingNode {
		p.required(n, have, "image-name")
	}
}

func (p *parser) runsOn(n *yaml.Node) *RunsOn {
	r := &RunsOn{Pos: posOf(n)}
	switch n.Kind {
	case yaml.ScalarNode, yaml.SequenceNode:
		r.Labels = p.strList(n)
	case yaml.MappingNode:
		p.mapping(n, false, func(key string, k, v *yaml.Node) {
			switch key {
			case "group":
				r.Group, _ = p.str(v)
				if g := r.Group; strings.Contains(g, "/") && !hasExpr(g) {
					var name string
					ok := false
					for _, pre := range []string{"organization/", "org/", "enterprise/", "ent/"} {
						if rest, found := strings.CutPrefix(g, pre); found {
							name, ok = rest, true
							break
						}
					}
					if !ok || name == "" || strings.Contains(name, "/") {
						p.errAt(v, "Invalid runs-on group name '%s'. Please use 'organization/' or 'enterprise/' prefix to target a single runner group.", g)
					}
				}
			case "labels":
				r.Labels = p.strList(v)
			default:
				p.unknown(key, k)
			}
		})
	}
	return r
}

func (p *parser) environment(j *Job, n *yaml.Node) {
	if n.Kind == yaml.ScalarNode {
		j.Environment, _ = p.str(n)
		return
	}
	have := map[string]bool{}
	p.mapping(n, false, func(key string, k, v *yaml.Node) {
		have[key] = true
		switch key {
		case "name":
			j.Environment, _ = p.str(v)
		case "url":
			j.EnvironmentURL, _ = p.str(v)
		case "deployment":
			p.boolOrExpr(v)
		default:
			p.unknown(key, k)
		}
	})
	if n.Kind == yaml.MappingNode {
		p.required(n, have, "name")
	}
}

func (p *parser) strategy(n *yaml.Node) *Strategy {
	s := &Strategy{Pos: posOf(n)}
	if n.Kind == yaml.ScalarNode && isExprOnly(n.Value) {
		s.Matrix = n
		return s
	}
	p.mapping(n, false, func(key string, k, v *yaml.Node) {
		switch key {
		case "matrix":
			s.Matrix = v
			if v.Kind == yaml.SequenceNode {
				p.errAt(v, "A sequence was not expected")
			} else if v.Kind == yaml.ScalarNode && !isExprOnly(v.Value) {
				p.errAt(v, "Unexpected value '%s'", ShortValue(v))
			}
		case "fail-fast":
			s.FailFast = p.boolOrExpr(v)
		case "max-parallel":
			s.MaxParallel = p.numberOrExpr(v)
		default:
			p.unknown(key, k)
		}
	})
	return s
}

func (p *parser) container(n *yaml.Node, job bool) *Container {
	c := &Container{Pos: posOf(n)}
	if n.Kind == yaml.ScalarNode {
		c.Image, _ = p.str(n)
		if c.Image == "" && !job {
			p.errAt(n, "Unexpected value ''")
		}
		return c
	}
	have := map[string]bool{}
	p.mapping(n, false, func(key string, k, v *yaml.Node) {
		have[key] = true
		switch key {
		case "image":
			c.Image, _ = p.str(v)
			if c.Image == "" {
				p.errAt(v, "Unexpected value ''")
			}
		case "env":
			c.Env = p.kvs(v)
		case "options":
			c.Options, _ = p.str(v)
		case "volumes":
			c.Volumes = p.strList(v)
		case "ports":
			c.Ports = p.strList(v)
		case "credentials":
			if v.Kind == yaml.ScalarNode && isExprOnly(v.Value) {
				c.Credentials = &Credentials{}
				return
			}
			cr := &Credentials{}
			c.Credentials = cr
			p.mapping(v, false, func(key string, kk, vv *yaml.Node) {
				switch key {
				case "username":
					cr.Username, _ = p.str(vv)
				case "password":
					cr.Password, _ = p.str(vv)
				default:
					p.unknown(key, kk)
				}
			})
		case "entrypoint", "command":
			p.str(v)
		default:
			p.unknown(key, k)
		}
	})
	if n.Kind == yaml.MappingNode && !have["image"] {
		p.required(n, have, "image")
	}
	return c
}

// steps reads a steps: list. composite restricts keys as an action's runs.steps.
func (p *parser) steps(n *yaml.Node, composite bool) []*Step {
	if n.Kind != yaml.SequenceNode {
		if isNull(n) {
			return nil
		}
		p.mapping(n, false, nil)
		return nil
	}
	var out []*Step
	ids := map[string]bool{}
	for _, c := range n.Content {
		s := p.step(c, false)
		if s == nil {
			continue
		}
		out = append(out, s.Step)
		if s.ID != "" {
			lid := strings.ToLower(s.ID)
			if ids[lid] {
				p.errPos(s.idPos, "The identifier '%s' may not be used more than once within the same scope.", s.ID)
			}
			ids[lid] = true
		}
	}
	_ = composite
	return out
}

// step reads one step; serverless accepts the serverless-cd aliases.
func (p *parser) step(n *yaml.Node, serverless bool) *stepWithPos {
	if n.Kind != yaml.MappingNode {
		p.mapping(n, false, nil)
		if isNull(n) {
			p.errAt(n, "Required property is missing: run")
		}
		return nil
	}
	s := &stepWithPos{Step: &Step{Pos: posOf(n)}}
	have := map[string]bool{}
	p.mapping(n, false, func(key string, k, v *yaml.Node) {
		if serverless {
			key = serverlessStepKey(key)
		}
		have[key] = true
		p.stepKey(s, key, k, v, serverless)
	})
	p.stepKind(s, n, have)
	return s
}

// serverlessStepKey maps a serverless-cd step key to the workflow key it
// stands for; keys a serverless step may not have get a leading "?".
func serverlessStepKey(key string) string {
	switch key {
	case "plugin":
		return "uses"
	case "inputs":
		return "with"
	case "shell", "timeout-minutes":
		return "?" + key
	}
	return key
}

// stepKey reads one key of a step (k its key node, v its value).
func (p *parser) stepKey(s *stepWithPos, key string, k, v *yaml.Node, serverless bool) {
	switch key {
	case "id":
		s.ID, _ = p.literal(v)
		s.idPos = posOf(v)
		if ok, why := ValidID(s.ID); !ok {
			p.errAt(v, "%s", why)
		}
	case "name":
		s.Name, _ = p.str(v)
	case "if":
		s.If, _ = p.str(v)
		s.IfPos = posOf(v)
	case "run":
		s.Run, _ = p.str(v)
		s.RunPos = posOf(v)
	case "uses":
		s.Uses, _ = p.literal(v)
		s.UsesPos = posOf(v)
		if !serverless && !hasExpr(s.Uses) && !validUses(s.Uses) {
			p.errAt(v, "Expected format {org}/{repo}[/path]@ref. Actual '%s'", s.Uses)
		}
	case "shell":
		s.Shell, _ = p.str(v)
	case "working-directory":
		s.WorkingDirectory, _ = p.str(v)
	case "env":
		s.Env = p.kvs(v)
	case "with":
		s.With = p.kvs(v)
	case "continue-on-error":
		s.ContinueOnError = p.boolOrExpr(v)
	case "timeout-minutes":
		s.TimeoutMinutes = p.numberOrExpr(v)
	case "background":
		s.Background = p.boolOrExpr(v)
	case "wait", "cancel":
		p.strList(v)
		s.Control = key
	case "wait-all":
		if !isNull(v) {
			p.boolOrExpr(v)
		}
		s.Control = key
	case "parallel":
		s.Control = key
		s.Parallel = p.steps(v, false)
	default:
		p.unknown(strings.TrimPrefix(key, "?"), k)
	}
}

// stepKind checks that the keys a step has (have) make one kind of step:
// a background-step control, a run step or a uses step.
func (p *parser) stepKind(s *stepWithPos, n *yaml.Node, have map[string]bool) {
	switch {
	case s.Control != "":
		// A background-step control (wait, wait-all, cancel, parallel):
		// neither run nor uses.
		for _, bad := range []string{"run", "uses", "with", "shell", "working-directory", "env", "if", "timeout-minutes", "background"} {
			if have[bad] {
				p.errAt(n, "Unexpected value '%s' in a %s step", bad, s.Control)
				break
			}
		}
	case have["run"] && have["uses"]:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "uses" || n.Content[i].Value == "plugin" {
				p.errAt(n.Content[i], "Unexpected value '%s'", n.Content[i].Value)
			}
		}
	case have["run"]:
		if have["with"] {
			p.errAt(n, "Unexpected value 'with': a run step takes no with")
		}
	case have["uses"]:
		if have["shell"] || have["working-directory"] {
			p.errAt(n, "Unexpected value 'shell' or 'working-directory': a uses step takes neither")
		}
	case have["with"]:
		p.errAt(n, "Required property is missing: uses")
	default:
		p.errAt(n, "Required property is missing: run")
	}
}

type stepWithPos struct {
	*Step
	idPos Pos
}

// validUses checks the form of a step's uses: as GitHub does.
func validUses(u string) bool {
	if u == "" {
		return false
	}
	if strings.HasPrefix(u, "docker://") || strings.HasPrefix(u, "./") || strings.HasPrefix(u, ".\\") {
		return true
	}
	if hasExpr(u) {
		return false
	}
	path, ref, ok := strings.Cut(u, "@")
	if !ok || ref == "" || path == "" {
		return false
	}
	parts := strings.Split(path, "/")
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return false
	}
	return true
}
