// Package jobrun runs one leased job of a server run with the shared
// executor: the server's own workers and remote agents (conveyor agent)
// both use it, so a job behaves the same wherever it runs. It decodes the
// run's stored event, parses and plans the stored workflow file, runs the
// job given its needs' outcomes and maps the outcome to a store.Completion.
// Where the source comes from (a git mirror, a tarball from the server) is
// the caller's business: Run is given a directory.
package jobrun

import (
	"context"
	"encoding/json"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/artifact"
	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/event"
	"github.com/conveyor-ci/conveyor/internal/exec"
	"github.com/conveyor-ci/conveyor/internal/logs"
	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/store"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// RunEvent is what a run keeps of its event (store.Run.EventJSON): the
// model and the payload the github.event context shows.
type RunEvent struct {
	Event   *event.Event   `json:"event"`
	Payload map[string]any `json:"payload"`
}

// Spec is one job to run: what a lease says, wherever the job runs.
type Spec struct {
	JobID int64
	// Key is the job's id in the workflow; Name its display name.
	Key, Name string
	RunID     int64
	RunNumber int64
	// RunAttempt is the run's attempt: 1, then 2 for its first re-run...
	RunAttempt int
	// Workflow is the file path in the repository; WorkflowYAML its
	// content at SHA, as the run was planned from.
	Workflow     string
	WorkflowYAML []byte
	// Event is the GitHub event name; EventJSON a RunEvent.
	Event     string
	EventJSON []byte
	SHA, Ref  string
	Inputs    map[string]string
	// Needs are the outcomes of the jobs this one needs.
	Needs map[string]exec.Need
	// Keep are matrix instances a re-run of failed jobs keeps from the
	// earlier attempt (exec.Options.Keep).
	Keep []*exec.JobResult
	// Secrets and Vars fill the secrets and vars contexts (the server reads
	// them for the job's repository and environment); every secret value
	// is masked in the job's output. Held in memory only.
	Secrets, Vars map[string]string
	// MaxTimeoutMinutes caps the job's timeout-minutes: its organisation's
	// quota (0: none).
	MaxTimeoutMinutes int
	// Network and Runtime are the job's sandbox settings: its repository's
	// (exec.Options.Network, Runtime).
	Network backend.NetworkPolicy
	Runtime string
}

// KeepOf reads the instances a queued job keeps: a re-run of failed jobs
// stores them as the new job's Results (JSON of []*exec.JobResult).
func KeepOf(results []byte) []*exec.JobResult {
	if len(results) == 0 {
		return nil
	}
	var keep []*exec.JobResult
	if json.Unmarshal(results, &keep) != nil {
		return nil
	}
	return keep
}

// SpecOf is the Spec of a leased job given its needs' outcomes.
func SpecOf(l *store.Lease, needs map[string]exec.Need) *Spec {
	job, run := l.Job, l.Run
	return &Spec{
		JobID: job.ID, Key: job.Key, Name: job.Name, RunID: run.ID, RunNumber: run.Number, RunAttempt: run.Attempt,
		Workflow: run.Workflow, WorkflowYAML: run.WorkflowYAML, Event: run.Event, EventJSON: run.EventJSON,
		SHA: run.SHA, Ref: run.Ref, Inputs: run.Inputs, Needs: needs, Keep: KeepOf(job.Results),
	}
}

// NeedsOf turns the jobs of a run into the outcomes job needs: a job that
// ended in error counts as failed, as GitHub shows it to dependents.
func NeedsOf(job *store.Job, jobs []*store.Job) map[string]exec.Need {
	if len(job.Needs) == 0 {
		return nil
	}
	needs := map[string]exec.Need{}
	for _, j := range jobs {
		for _, n := range job.Needs {
			if j.Key == n {
				status := j.Status
				if status == store.StatusError {
					status = exec.Failure
				}
				needs[n] = exec.Need{Result: status, Outputs: j.Outputs}
			}
		}
	}
	return needs
}

// Env is what the runner of a job provides: sandboxes and the runs-on
// mapping (see exec.Options), and the server URL jobs see as
// github.server_url.
type Env struct {
	Backend, Host, Containers backend.Backend
	Platforms                 map[string]string
	ServerURL                 string
	// Artifacts is the run's artifact store (set per job by the caller).
	Artifacts artifact.Store
	// Actions fetches remote actions and reusable workflows (the data
	// folder's action cache).
	Actions exec.ActionResolver
	// Cache serves actions/cache and @actions/cache (zero: none).
	Cache exec.Cache
}

// Run runs the job with the repository checked out in srcDir and job
// directories made under workDir (created if needed). It never fails:
// a job that cannot run is a Completion with StatusError, its reason also
// written to rep. When ctx ends with a cause of kind errs.Canceled (the
// run was cancelled) the job completes as cancelled.
func Run(ctx context.Context, env Env, spec *Spec, srcDir, workDir string, rep exec.Reporter) (c store.Completion) {
	// A panic outside the executor's jobs (which recover their own) fails
	// this job, not the server or agent running every other job.
	defer func() {
		if r := recover(); r != nil {
			c = Fail(rep, "internal error in Conveyor (please report it): %v\n%s", r, debug.Stack())
		}
	}()
	var re RunEvent
	if err := json.Unmarshal(spec.EventJSON, &re); err != nil || re.Event == nil {
		return Fail(rep, "the run's event is not readable: %v", err)
	}
	wf, probs := workflow.Parse(spec.WorkflowYAML, spec.Workflow)
	if len(probs) > 0 {
		return Fail(rep, "invalid workflow: %v", probs)
	}
	p, err := plan.Compile([]*workflow.Workflow{wf}, plan.Select{Event: spec.Event, AnyEvent: true})
	if err != nil || len(p.Workflows) == 0 {
		return Fail(rep, "cannot plan the workflow: %v", err)
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return Fail(rep, "job directory: %v", err)
	}
	ev := re.Event
	opts := exec.Options{
		Backend: env.Backend, Host: env.Host, Containers: env.Containers,
		Platforms: env.Platforms, RepoDir: srcDir, WorkDir: workDir,
		Event: exec.Event{
			Name: spec.Event, Payload: re.Payload, SHA: spec.SHA, Ref: spec.Ref, Repository: ev.Repository.FullName,
			Actor: ev.Sender, RunID: strconv.FormatInt(spec.RunID, 10), RunNumber: int(spec.RunNumber), RunAttempt: spec.RunAttempt,
			ServerURL: env.ServerURL,
		},
		Inputs: spec.Inputs, Reporter: rep, Masker: logs.NewMasker(), Keep: spec.Keep, Artifacts: env.Artifacts,
		Secrets: spec.Secrets, Vars: spec.Vars,
		Actions:    env.Actions,
		Cache:      env.Cache,
		MaxTimeout: time.Duration(spec.MaxTimeoutMinutes) * time.Minute,
		Network:    spec.Network,
		Runtime:    spec.Runtime,
	}
	if pr := ev.PullRequest; pr != nil {
		opts.Event.HeadRef, opts.Event.BaseRef = pr.HeadRef, pr.BaseRef
	}
	out, err := exec.New(opts).RunJob(ctx, p.Workflows[0], spec.Key, spec.Needs)
	if err != nil {
		return Fail(rep, "%v", err)
	}
	results, _ := json.Marshal(out.Instances)
	c = store.Completion{Status: out.Result, Outputs: out.Outputs, Results: results, Build: out.Build}
	for _, in := range out.Instances {
		if in.Error != "" {
			c.Error = in.Error
		}
	}
	if errs.KindOf(context.Cause(ctx)) == errs.Canceled {
		c.Status = store.StatusCancelled
	}
	return c
}

// Settings are what the server needs to know of a job before it runs.
type Settings struct {
	// Environment is the literal environment: name (its secrets and
	// variables win over the repository's); "" when the job has none, or
	// when the name is an expression, only known once the job runs (its
	// environment-level values are then not given).
	Environment string
	// ReadRun: the job's permissions: let its GITHUB_TOKEN read the run
	// (actions: read or write, read-all, write-all, or no permissions:
	// at all, GitHub's default); permissions: {} or actions: none deny.
	ReadRun bool
}

// SettingsOf reads job key's Settings from the workflow file.
func SettingsOf(yaml []byte, file, key string) Settings {
	wf, probs := workflow.Parse(yaml, file)
	if len(probs) > 0 || wf == nil {
		return Settings{}
	}
	for _, j := range wf.Jobs {
		if j.ID != key {
			continue
		}
		st := Settings{ReadRun: true}
		if !strings.Contains(j.Environment, "${{") {
			st.Environment = strings.TrimSpace(j.Environment)
		}
		p := j.Permissions
		if p == nil {
			p = wf.Permissions
		}
		if p != nil {
			st.ReadRun = p.All == "read-all" || p.All == "write-all" || p.Scopes["actions"] == "read" || p.Scopes["actions"] == "write"
		}
		return st
	}
	return Settings{}
}

// Fail is the Completion of a job that could not run; the reason is also
// written to rep for the job's log.
func Fail(rep exec.Reporter, format string, args ...any) store.Completion {
	err := errs.E("job", errs.Other, format, args...)
	if rep != nil {
		rep.Report(exec.Event2{Type: exec.RunError, Text: err.Error()})
	}
	return store.Completion{Status: store.StatusError, Error: err.Error()}
}
