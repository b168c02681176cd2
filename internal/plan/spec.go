package plan

import (
	"go.yaml.in/yaml/v3"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/jobspec"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// maxNodeDepth bounds a matrix's nesting (the parser allows less).
const maxNodeDepth = 128

// Spec compiles job id of wf, for runs of event, into the job contract's
// compiled form (jobspec.Job): what a worker runs without the workflow
// file. A job the plan refuses (background steps) is refused here too.
func Spec(wf *workflow.Workflow, id, event string) (*jobspec.Job, error) {
	j := wf.Job(id)
	if j == nil {
		return nil, errs.E("plan", errs.NotFound, "no job %q in %s", id, wf.File)
	}
	if _, err := compileJob(j); err != nil {
		return nil, errs.Wrap(wf.File, errs.Invalid, err)
	}
	out := &jobspec.Job{Version: jobspec.Version, Workflow: specWorkflow(wf, event), ID: j.ID, Name: j.Name,
		Pos: pos(j.Pos), If: text(j.If, j.IfPos), Env: kvs(j.Env), Outputs: kvs(j.Outputs)}
	for i, n := range j.Needs {
		r := jobspec.Ref{ID: n}
		if i < len(j.NeedsPos) {
			r.Pos = pos(j.NeedsPos[i])
		}
		out.Needs = append(out.Needs, r)
	}
	for _, s := range j.Steps {
		out.Steps = append(out.Steps, specStep(s))
	}
	if j.Uses != "" {
		out.Call = &jobspec.Call{Uses: text(j.Uses, j.UsesPos), With: kvs(j.With), Secrets: kvs(j.Secrets), SecretsInherit: j.SecretsInherit}
	}
	st, err := specSettings(j)
	if err != nil {
		return nil, errs.Wrap(wf.File+": job "+j.ID, errs.Invalid, err)
	}
	out.Settings = st
	return out, nil
}

func specWorkflow(wf *workflow.Workflow, event string) jobspec.Workflow {
	w := jobspec.Workflow{File: wf.File, Name: wf.Name, Env: kvs(wf.Env), Defaults: defaults(wf.Defaults),
		Permissions: permissions(wf.Permissions), Concurrency: concurrency(wf.Concurrency)}
	if t := wf.Trigger(event); t != nil {
		w.Trigger = &jobspec.Trigger{Event: t.Event}
		for _, in := range t.Inputs {
			w.Trigger.Inputs = append(w.Trigger.Inputs, jobspec.Input{Name: in.Name, Type: in.Type, Required: in.Required,
				Default: in.Default, HasDefault: in.HasDefault, Options: in.Options, Pos: pos(in.Pos)})
		}
	}
	return w
}

func specStep(s *workflow.Step) jobspec.Step {
	return jobspec.Step{ID: s.ID, Name: s.Name, Pos: pos(s.Pos), If: text(s.If, s.IfPos), Run: text(s.Run, s.RunPos),
		Uses: text(s.Uses, s.UsesPos), Shell: s.Shell, WorkingDirectory: s.WorkingDirectory, Env: kvs(s.Env), With: kvs(s.With),
		ContinueOnError: s.ContinueOnError, TimeoutMinutes: s.TimeoutMinutes}
}

func specSettings(j *workflow.Job) (jobspec.Settings, error) {
	st := jobspec.Settings{Environment: j.Environment, EnvironmentURL: j.EnvironmentURL, Defaults: defaults(j.Defaults),
		TimeoutMinutes: j.TimeoutMinutes, ContinueOnError: j.ContinueOnError, Container: container(j.Container),
		Permissions: permissions(j.Permissions), Concurrency: concurrency(j.Concurrency)}
	if r := j.RunsOn; r != nil {
		st.RunsOn = &jobspec.RunsOn{Labels: r.Labels, Group: r.Group, Pos: pos(r.Pos)}
	}
	for _, s := range j.Services {
		if s != nil {
			st.Services = append(st.Services, jobspec.Service{Name: s.Name, Container: *container(&s.Container)})
		}
	}
	if s := j.Strategy; s != nil {
		st.Strategy = &jobspec.Strategy{FailFast: s.FailFast, MaxParallel: s.MaxParallel, Pos: pos(s.Pos)}
		if s.Matrix != nil {
			n, err := specNode(s.Matrix, 0)
			if err != nil {
				return st, err
			}
			st.Strategy.Matrix = &n
		}
	}
	return st, nil
}

// specNode is the plain form of a YAML node; aliases are resolved.
func specNode(n *yaml.Node, depth int) (jobspec.Node, error) {
	if depth > maxNodeDepth {
		return jobspec.Node{}, errs.E("matrix", errs.Invalid, "line %d: the matrix is nested too deep", n.Line)
	}
	switch n.Kind {
	case yaml.DocumentNode, yaml.AliasNode:
		inner := n.Alias
		if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
			inner = n.Content[0]
		}
		if inner == nil {
			return jobspec.Node{Kind: jobspec.Scalar, Tag: "!!null", Line: n.Line, Col: n.Column}, nil
		}
		return specNode(inner, depth+1)
	}
	out := jobspec.Node{Kind: jobspec.Scalar, Tag: n.Tag, Value: n.Value, Line: n.Line, Col: n.Column}
	switch n.Kind {
	case yaml.SequenceNode:
		out.Kind, out.Value = jobspec.Sequence, ""
	case yaml.MappingNode:
		out.Kind, out.Value = jobspec.Mapping, ""
	}
	if n.Kind == yaml.SequenceNode || n.Kind == yaml.MappingNode {
		out.Content = make([]jobspec.Node, 0, len(n.Content))
		for _, c := range n.Content {
			cn, err := specNode(c, depth+1)
			if err != nil {
				return out, err
			}
			out.Content = append(out.Content, cn)
		}
	}
	return out, nil
}

func pos(p workflow.Pos) jobspec.Pos { return jobspec.Pos{Line: p.Line, Col: p.Col} }

func text(s string, p workflow.Pos) jobspec.Text { return jobspec.Text{Text: s, Pos: pos(p)} }

func kvs(in []workflow.KV) []jobspec.KV {
	if in == nil {
		return nil
	}
	out := make([]jobspec.KV, len(in))
	for i, kv := range in {
		out[i] = jobspec.KV{Key: kv.Key, Value: kv.Value, Pos: pos(kv.Pos)}
	}
	return out
}

func defaults(d *workflow.Defaults) *jobspec.Defaults {
	if d == nil {
		return nil
	}
	return &jobspec.Defaults{Shell: d.Shell, WorkingDirectory: d.WorkingDirectory}
}

func permissions(p *workflow.Permissions) *jobspec.Permissions {
	if p == nil {
		return nil
	}
	return &jobspec.Permissions{All: p.All, Scopes: p.Scopes}
}

func concurrency(c *workflow.Concurrency) *jobspec.Concurrency {
	if c == nil {
		return nil
	}
	return &jobspec.Concurrency{Group: c.Group, CancelInProgress: c.CancelInProgress}
}

func container(c *workflow.Container) *jobspec.Container {
	if c == nil {
		return nil
	}
	out := &jobspec.Container{Image: c.Image, Env: kvs(c.Env), Options: c.Options, Volumes: c.Volumes, Ports: c.Ports, Pos: pos(c.Pos)}
	if c.Credentials != nil {
		out.Credentials = &jobspec.Credentials{Username: c.Credentials.Username, Password: c.Credentials.Password}
	}
	return out
}
