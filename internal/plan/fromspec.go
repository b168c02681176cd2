package plan

import (
	"go.yaml.in/yaml/v3"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/jobspec"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// FromSpec is the plan of a compiled job: a workflow plan holding that
// one job, as the executor runs it (exec.Executor.RunJob with the
// outcomes of its needs). No workflow file is read.
func FromSpec(j *jobspec.Job) (*Workflow, error) {
	if j == nil || j.ID == "" {
		return nil, errs.E("plan", errs.Invalid, "no compiled job")
	}
	wf := sourceWorkflow(&j.Workflow)
	job := &workflow.Job{ID: j.ID, Name: j.Name, Pos: wpos(j.Pos), If: j.If.Text, IfPos: wpos(j.If.Pos),
		Env: wkvs(j.Env), Outputs: wkvs(j.Outputs)}
	for _, n := range j.Needs {
		job.Needs = append(job.Needs, n.ID)
		job.NeedsPos = append(job.NeedsPos, wpos(n.Pos))
	}
	for i := range j.Steps {
		job.Steps = append(job.Steps, sourceStep(&j.Steps[i]))
	}
	if c := j.Call; c != nil {
		job.Uses, job.UsesPos = c.Uses.Text, wpos(c.Uses.Pos)
		job.With, job.Secrets, job.SecretsInherit = wkvs(c.With), wkvs(c.Secrets), c.SecretsInherit
	}
	if err := sourceSettings(job, &j.Settings); err != nil {
		return nil, errs.Wrap(wf.File+": job "+j.ID, errs.Invalid, err)
	}
	wf.Jobs = []*workflow.Job{job}
	pj, err := compileJob(job)
	if err != nil {
		return nil, errs.Wrap(wf.File, errs.Invalid, err)
	}
	pw := &Workflow{File: wf.File, Name: wf.Name, Jobs: []*Job{pj}, Source: wf}
	if pw.Name == "" {
		pw.Name = wf.File
	}
	return pw, nil
}

func sourceWorkflow(w *jobspec.Workflow) *workflow.Workflow {
	wf := &workflow.Workflow{File: w.File, Name: w.Name, Env: wkvs(w.Env), Defaults: wdefaults(w.Defaults),
		Permissions: wpermissions(w.Permissions), Concurrency: wconcurrency(w.Concurrency)}
	if t := w.Trigger; t != nil {
		wt := &workflow.Trigger{Event: t.Event}
		for _, in := range t.Inputs {
			wt.Inputs = append(wt.Inputs, &workflow.Input{Name: in.Name, Type: in.Type, Required: in.Required,
				Default: in.Default, HasDefault: in.HasDefault, Options: in.Options, Pos: wpos(in.Pos)})
		}
		wf.On = []*workflow.Trigger{wt}
	}
	return wf
}

func sourceStep(s *jobspec.Step) *workflow.Step {
	return &workflow.Step{ID: s.ID, Name: s.Name, Pos: wpos(s.Pos), If: s.If.Text, IfPos: wpos(s.If.Pos),
		Run: s.Run.Text, RunPos: wpos(s.Run.Pos), Uses: s.Uses.Text, UsesPos: wpos(s.Uses.Pos), Shell: s.Shell,
		WorkingDirectory: s.WorkingDirectory, Env: wkvs(s.Env), With: wkvs(s.With), ContinueOnError: s.ContinueOnError,
		TimeoutMinutes: s.TimeoutMinutes}
}

func sourceSettings(job *workflow.Job, st *jobspec.Settings) error {
	job.Environment, job.EnvironmentURL, job.Defaults = st.Environment, st.EnvironmentURL, wdefaults(st.Defaults)
	job.TimeoutMinutes, job.ContinueOnError, job.Container = st.TimeoutMinutes, st.ContinueOnError, wcontainer(st.Container)
	job.Permissions, job.Concurrency = wpermissions(st.Permissions), wconcurrency(st.Concurrency)
	if r := st.RunsOn; r != nil {
		job.RunsOn = &workflow.RunsOn{Labels: r.Labels, Group: r.Group, Pos: wpos(r.Pos)}
	}
	for i := range st.Services {
		s := &st.Services[i]
		job.Services = append(job.Services, &workflow.Service{Name: s.Name, Container: *wcontainer(&s.Container)})
	}
	if s := st.Strategy; s != nil {
		job.Strategy = &workflow.Strategy{FailFast: s.FailFast, MaxParallel: s.MaxParallel, Pos: wpos(s.Pos)}
		if s.Matrix != nil {
			n, err := nodeOfSpec(s.Matrix, 0)
			if err != nil {
				return err
			}
			job.Strategy.Matrix = n
		}
	}
	return nil
}

// nodeOfSpec is the YAML node a compiled matrix was made from.
func nodeOfSpec(n *jobspec.Node, depth int) (*yaml.Node, error) {
	if depth > maxNodeDepth {
		return nil, errs.E("matrix", errs.Invalid, "line %d: the matrix is nested too deep", n.Line)
	}
	out := &yaml.Node{Tag: n.Tag, Value: n.Value, Line: n.Line, Column: n.Col}
	switch n.Kind {
	case jobspec.Scalar:
		out.Kind = yaml.ScalarNode
		return out, nil
	case jobspec.Sequence:
		out.Kind = yaml.SequenceNode
	case jobspec.Mapping:
		out.Kind = yaml.MappingNode
		if len(n.Content)%2 != 0 {
			return nil, errs.E("matrix", errs.Invalid, "line %d: a mapping of %d nodes", n.Line, len(n.Content))
		}
	default:
		return nil, errs.E("matrix", errs.Invalid, "line %d: unknown node kind %q", n.Line, n.Kind)
	}
	out.Content = make([]*yaml.Node, 0, len(n.Content))
	for i := range n.Content {
		c, err := nodeOfSpec(&n.Content[i], depth+1)
		if err != nil {
			return nil, err
		}
		out.Content = append(out.Content, c)
	}
	return out, nil
}

func wpos(p jobspec.Pos) workflow.Pos { return workflow.Pos{Line: p.Line, Col: p.Col} }

func wkvs(in []jobspec.KV) []workflow.KV {
	if in == nil {
		return nil
	}
	out := make([]workflow.KV, len(in))
	for i, kv := range in {
		out[i] = workflow.KV{Key: kv.Key, Value: kv.Value, Pos: wpos(kv.Pos)}
	}
	return out
}

func wdefaults(d *jobspec.Defaults) *workflow.Defaults {
	if d == nil {
		return nil
	}
	return &workflow.Defaults{Shell: d.Shell, WorkingDirectory: d.WorkingDirectory}
}

func wpermissions(p *jobspec.Permissions) *workflow.Permissions {
	if p == nil {
		return nil
	}
	return &workflow.Permissions{All: p.All, Scopes: p.Scopes}
}

func wconcurrency(c *jobspec.Concurrency) *workflow.Concurrency {
	if c == nil {
		return nil
	}
	return &workflow.Concurrency{Group: c.Group, CancelInProgress: c.CancelInProgress}
}

func wcontainer(c *jobspec.Container) *workflow.Container {
	if c == nil {
		return nil
	}
	out := &workflow.Container{Image: c.Image, Env: wkvs(c.Env), Options: c.Options, Volumes: c.Volumes, Ports: c.Ports, Pos: wpos(c.Pos)}
	if c.Credentials != nil {
		out.Credentials = &workflow.Credentials{Username: c.Credentials.Username, Password: c.Credentials.Password}
	}
	return out
}
