package exec

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/actions"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/expr"
	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// runReusable runs a job that calls a local reusable workflow: the callee's
// jobs run as a DAG of their own, with the caller's with: as inputs and
// its secrets: (or all secrets with inherit).
func (e *Executor) runReusable(ctx context.Context, workDir string, pw *plan.Workflow, n *jobNode, c *expr.Context, call *callInfo) {
	job := n.pj.Source
	start := time.Now()
	display := call.prefixed(n.pj.Name)
	fail := func(err error) { e.finishNode(n, display, Failure, nil, err, start) }
	wf, trig, err := e.callee(ctx, job, display, call)
	if err != nil {
		fail(err)
		return
	}
	path, _, _ := strings.Cut(job.Uses, "@")
	inputs, err := callInputs(job, trig, c, path)
	if err != nil {
		fail(err)
		return
	}
	secrets, err := e.callSecrets(job, c)
	if err != nil {
		fail(err)
		return
	}
	p, err := plan.Compile([]*workflow.Workflow{wf}, plan.Select{AnyEvent: true})
	if err != nil || len(p.Workflows) == 0 {
		if err == nil {
			err = errs.E("uses", errs.Invalid, "%s has no jobs", path)
		}
		fail(err)
		return
	}
	nodes := e.runWorkflow(ctx, workDir, p.Workflows[0], &callInfo{prefix: display + " / ", inputs: inputs, secrets: secrets, parent: call})
	jobs := map[string]any{}
	var results []string
	for id, cn := range nodes {
		outs := map[string]any{}
		for k, v := range cn.outputs {
			outs[k] = v
		}
		jobs[id] = map[string]any{"result": cn.result, "outputs": outs}
		results = append(results, cn.result)
	}
	oc := newContext(map[string]any{"jobs": jobs, "inputs": inputs, "github": c.Values["github"], "vars": c.Values["vars"]})
	outputs := map[string]any{}
	for _, o := range trig.Outputs {
		v, err := interp(o.Value, oc)
		if err != nil {
			fail(errs.Wrap("output "+o.Name, errs.Invalid, err))
			return
		}
		outputs[o.Name] = v
	}
	n.result = aggregate(results)
	n.outputs = outputs
}

// callee loads the workflow job calls (local or remote) and its
// workflow_call trigger.
func (e *Executor) callee(ctx context.Context, job *workflow.Job, display string, call *callInfo) (*workflow.Workflow, *workflow.Trigger, error) {
	if call.depth() >= maxCallDepth {
		return nil, nil, errs.E("uses", errs.Invalid, "%s: reusable workflows are nested more than %d deep", job.Uses, maxCallDepth)
	}
	path, _, _ := strings.Cut(job.Uses, "@")
	var wf *workflow.Workflow
	var err error
	if strings.HasPrefix(job.Uses, "./") {
		wf, err = e.parseWorkflow(path)
	} else {
		wf, err = e.remoteWorkflow(ctx, job.Uses, display)
	}
	if err != nil {
		return nil, nil, err
	}
	trig := wf.Trigger("workflow_call")
	if trig == nil {
		return nil, nil, errs.E("uses", errs.Invalid, "%s is not a reusable workflow: it has no on.workflow_call", path)
	}
	return wf, trig, nil
}

// callInputs are the callee's inputs: the caller's with: (typed as the
// callee declares), then the defaults; a required input missing is an
// error.
func callInputs(job *workflow.Job, trig *workflow.Trigger, c *expr.Context, path string) (map[string]any, error) {
	inputs := map[string]any{}
	with := map[string]string{}
	for _, p := range job.With {
		v, err := interpValue(p.Value, c)
		if err != nil {
			return nil, errs.Wrap("with "+p.Key, errs.Invalid, err)
		}
		with[strings.ToLower(p.Key)] = p.Key
		inputs[p.Key] = v
	}
	for _, in := range trig.Inputs {
		if _, ok := with[strings.ToLower(in.Name)]; ok {
			if s, isStr := inputs[in.Name].(string); isStr {
				inputs[in.Name] = typedInput(in.Type, s)
			}
			continue
		}
		if in.HasDefault {
			v, err := interpValue(in.Default, c)
			if err != nil {
				return nil, err
			}
			if s, isStr := v.(string); isStr {
				v = typedInput(in.Type, s)
			}
			inputs[in.Name] = v
		} else if in.Required {
			return nil, errs.E("uses", errs.Invalid, "input %q is required by %s", in.Name, path)
		}
	}
	return inputs, nil
}

// callSecrets are the callee's secrets: all of the caller's with inherit,
// else its secrets: evaluated (and masked).
func (e *Executor) callSecrets(job *workflow.Job, c *expr.Context) (map[string]string, error) {
	secrets := map[string]string{}
	if job.SecretsInherit {
		for k, v := range e.opts.Secrets {
			secrets[k] = v
		}
		return secrets, nil
	}
	for _, p := range job.Secrets {
		v, err := interp(p.Value, c)
		if err != nil {
			return nil, err
		}
		secrets[p.Key] = v
		e.opts.Masker.Add(v)
	}
	return secrets, nil
}

func (e *Executor) parseWorkflow(path string) (*workflow.Workflow, error) {
	if e.opts.ParseWorkflow != nil {
		return e.opts.ParseWorkflow(path)
	}
	b, err := actions.ReadLocal(e.opts.RepoDir, path)
	if err != nil {
		return nil, err
	}
	wf, probs := workflow.Parse(b, path)
	if len(probs) > 0 {
		return nil, errs.Wrap("uses", errs.Invalid, probs)
	}
	return wf, nil
}

// maxCallDepth bounds reusable workflows calling reusable workflows.
const maxCallDepth = 10

func (c *callInfo) depth() int {
	n := 0
	for ; c != nil; c = c.parent {
		n++
	}
	return n
}

// remoteWorkflow fetches owner/repo/.github/workflows/x.yml@ref and
// parses it; display names the calling job for the log.
func (e *Executor) remoteWorkflow(ctx context.Context, uses, display string) (*workflow.Workflow, error) {
	ref, err := actions.Parse(uses)
	if err != nil {
		return nil, err
	}
	if !ref.IsWorkflow() {
		return nil, errs.E("uses", errs.Invalid, "%q: a job's uses: names a workflow file, ./.github/workflows/x.yml or owner/repo/.github/workflows/x.yml@ref", uses)
	}
	if e.opts.Actions == nil {
		return nil, errs.E("uses", errs.Unavailable, "%s is a remote reusable workflow, and this executor has no action source (--actions-url)", uses)
	}
	res, err := e.opts.Actions.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	verb := "Download"
	if !res.Fetched {
		verb = "From the cache:"
	}
	e.report(Event2{Type: Notice, Job: display, JobKey: display, Text: fmt.Sprintf("%s workflow repository '%s@%s' (SHA:%s)", verb, ref.Repository(), ref.Version, res.SHA)})
	return actions.LoadWorkflow(res.Dir, ref)
}
