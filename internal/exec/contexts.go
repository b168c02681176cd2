package exec

import (
	"strconv"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// The expression contexts of a job, typed. The executor reads and sets
// their fields; they become the maps expr evaluates only at that boundary
// (values), so no code changes a context through map type assertions.

// jobContexts are the contexts a job's expressions see, but env and steps
// (which exprContext adds per step).
type jobContexts struct {
	github   githubContext
	runner   runnerContext
	secrets  map[string]string
	vars     map[string]string
	inputs   map[string]any // typed as the trigger or the caller declares
	env      map[string]string
	needs    map[string]needContext
	matrix   map[string]any   // nil before the job's matrix is expanded
	strategy *strategyContext // nil before the job's matrix is expanded
	job      *jobContext      // nil before the job's sandbox is up
}

// githubContext is the github context.
type githubContext struct {
	event     eventFacts
	repo      repoFacts
	run       runFacts
	job       string       // the job id, once an instance starts
	workspace string       // the sandbox's workspace, once it is up
	action    *actionFacts // inside a composite or remote action
}

// eventFacts are what the triggering event says.
type eventFacts struct {
	payload                               any
	name, sha, ref, refName, refType      string
	headRef, baseRef, actor, triggerActor string
}

// repoFacts say where the repository lives.
type repoFacts struct {
	repository, owner, serverURL string
}

func (r repoFacts) apiURL() string { return apiURL(r.serverURL) }

// runFacts identify the workflow run.
type runFacts struct {
	workflow, workflowRef        string
	runID, runNumber, runAttempt string
	token                        string
	retentionDays                string
}

// actionFacts are github.action_* inside an action's steps.
type actionFacts struct {
	path, repository, ref string
}

// runnerContext is the runner context.
type runnerContext struct {
	arch      string
	temp      string // set once the sandbox is up
	toolCache string // set once the sandbox is up
}

// strategyContext is the strategy context of one matrix leg.
type strategyContext struct {
	failFast                  bool
	index, total, maxParallel int
}

// needContext is one entry of the needs context.
type needContext struct {
	result  string
	outputs map[string]any
}

// jobContext is the job context once the sandbox is up (service
// containers are not described yet).
type jobContext struct {
	status string
}

// values is the expression view of the contexts.
func (c *jobContexts) values() map[string]any {
	needs := make(map[string]any, len(c.needs))
	for id, n := range c.needs {
		outs := make(map[string]any, len(n.outputs))
		for k, v := range n.outputs {
			outs[k] = v
		}
		needs[id] = map[string]any{"result": n.result, "outputs": outs}
	}
	v := map[string]any{
		"github": c.github.value(), "runner": c.runner.value(), "needs": needs,
		"secrets": stringMap(c.secrets), "vars": stringMap(c.vars), "inputs": c.inputs, "env": stringMap(c.env),
	}
	if c.matrix != nil {
		v["matrix"] = c.matrix
	}
	if s := c.strategy; s != nil {
		v["strategy"] = map[string]any{"fail-fast": s.failFast, "job-index": float64(s.index), "job-total": float64(s.total),
			"max-parallel": float64(maxOr(s.maxParallel, s.total))}
	}
	if c.job != nil {
		v["job"] = map[string]any{"status": c.job.status, "container": map[string]any{"id": "", "network": ""}, "services": map[string]any{}}
	}
	return v
}

func (g *githubContext) value() map[string]any {
	ev, repo, run := g.event, g.repo, g.run
	m := map[string]any{
		"event": ev.payload, "event_name": ev.name, "sha": ev.sha, "ref": ev.ref, "ref_name": ev.refName, "ref_type": ev.refType,
		"repository": repo.repository, "repository_owner": repo.owner, "actor": ev.actor, "triggering_actor": ev.triggerActor,
		"workflow": run.workflow, "workflow_ref": run.workflowRef,
		"run_id": run.runID, "run_number": run.runNumber, "run_attempt": run.runAttempt, "retention_days": run.retentionDays,
		"server_url": repo.serverURL, "api_url": repo.apiURL(), "graphql_url": repo.apiURL() + "/graphql",
		"head_ref": ev.headRef, "base_ref": ev.baseRef, "token": run.token,
		"repositoryUrl": repo.serverURL + "/" + repo.repository + ".git",
	}
	if g.job != "" {
		m["job"] = g.job
	}
	if g.workspace != "" {
		m["workspace"] = g.workspace
	}
	if a := g.action; a != nil {
		m["action_path"] = a.path
		m["action_repository"] = a.repository
		m["action_ref"] = a.ref
	}
	return m
}

func (r *runnerContext) value() map[string]any {
	m := map[string]any{"os": "Linux", "arch": r.arch, "name": "conveyor", "environment": "self-hosted"}
	if r.temp != "" {
		m["temp"] = r.temp
	}
	if r.toolCache != "" {
		m["tool_cache"] = r.toolCache
	}
	return m
}

func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// baseContexts are the contexts known before a job starts.
func (e *Executor) baseContexts(wf *workflow.Workflow, call *callInfo) *jobContexts {
	ev := e.opts.Event
	payload := any(ev.Payload)
	if ev.Payload == nil {
		payload = map[string]any{}
	}
	owner, _, _ := strings.Cut(ev.Repository, "/")
	refName, refType := refNameType(ev.Ref)
	server := ev.ServerURL
	if server == "" {
		server = "https://github.com"
	}
	wfName := wf.Name
	if wfName == "" {
		wfName = wf.File
	}
	c := &jobContexts{
		github: githubContext{
			event: eventFacts{payload: payload, name: ev.Name, sha: ev.SHA, ref: ev.Ref, refName: refName, refType: refType,
				headRef: ev.HeadRef, baseRef: ev.BaseRef, actor: ev.Actor, triggerActor: ev.Actor},
			repo: repoFacts{repository: ev.Repository, owner: owner, serverURL: server},
			run: runFacts{workflow: wfName, workflowRef: ev.Repository + "/" + wf.File + "@" + ev.Ref, runID: ev.RunID,
				runNumber: strconv.Itoa(ev.RunNumber), runAttempt: strconv.Itoa(max(ev.RunAttempt, 1)), retentionDays: "0",
				token: e.opts.Secrets["GITHUB_TOKEN"]},
		},
		runner:  runnerContext{arch: runnerArch()},
		secrets: copyStrings(e.opts.Secrets),
		vars:    copyStrings(e.opts.Vars),
		env:     copyStrings(e.opts.Env),
	}
	if call != nil {
		c.inputs = call.inputs
		c.secrets = copyStrings(call.secrets)
		return c
	}
	c.inputs = triggerInputs(wf.Trigger(ev.Name), e.opts.Inputs)
	return c
}

// triggerInputs are the run's inputs with the trigger's defaults and types.
func triggerInputs(t *workflow.Trigger, given map[string]string) map[string]any {
	inputs := make(map[string]any, len(given))
	for k, v := range given {
		inputs[k] = v
	}
	if t == nil {
		return inputs
	}
	for _, in := range t.Inputs {
		if _, set := inputs[in.Name]; !set && in.HasDefault {
			inputs[in.Name] = in.Default
		}
		if in.Type == "boolean" || in.Type == "number" {
			if s, ok := inputs[in.Name].(string); ok {
				inputs[in.Name] = typedInput(in.Type, s)
			}
		}
	}
	return inputs
}

// refNameType is github.ref_name and github.ref_type of ref.
func refNameType(ref string) (string, string) {
	switch {
	case strings.HasPrefix(ref, "refs/heads/"):
		return strings.TrimPrefix(ref, "refs/heads/"), "branch"
	case strings.HasPrefix(ref, "refs/tags/"):
		return strings.TrimPrefix(ref, "refs/tags/"), "tag"
	case strings.HasPrefix(ref, "refs/pull/"):
		return strings.TrimPrefix(ref, "refs/pull/"), "branch" // "7/merge", as GitHub
	}
	return ref, ""
}

func copyStrings(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// stepContext is one entry of the steps context.
type stepContext struct {
	outputs             map[string]string
	outcome, conclusion string
}

func stepsValue(steps map[string]stepContext) map[string]any {
	out := make(map[string]any, len(steps))
	for id, s := range steps {
		out[id] = map[string]any{"outputs": stringMap(s.outputs), "outcome": s.outcome, "conclusion": s.conclusion}
	}
	return out
}
