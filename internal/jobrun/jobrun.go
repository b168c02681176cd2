// Package jobrun runs one leased job of a server run with the shared
// executor: the server's own workers and remote agents (conveyor agent)
// both use it, so a job behaves the same wherever it runs. It decodes the
// run's stored event, plans the job from its compiled form (the job
// contract's Job; the workflow file only from a server of contract
// version 1, which sends none), runs it given its needs' outcomes and maps the outcome to the job contract's
// Report (package jobspec).
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
	"github.com/conveyor-ci/conveyor/internal/jobspec"
	"github.com/conveyor-ci/conveyor/internal/logs"
	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/profiles"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// RunEvent is what a run keeps of its event (store.Run.EventJSON): the
// model and the payload the github.event context shows.
type RunEvent struct {
	Event   *event.Event   `json:"event"`
	Payload map[string]any `json:"payload"`
}

// NeedsOf turns outcomes of needed jobs, as the contract carries them,
// into the executor's.
func needsOf(in map[string]jobspec.Need) map[string]exec.Need {
	if len(in) == 0 {
		return nil
	}
	needs := make(map[string]exec.Need, len(in))
	for k, n := range in {
		needs[k] = exec.Need{Result: n.Result, Outputs: n.Outputs}
	}
	return needs
}

// keepOf is the executor's form of the instances a re-run keeps.
func keepOf(in []jobspec.Instance) []*exec.JobResult {
	var out []*exec.JobResult
	for _, i := range in {
		out = append(out, &exec.JobResult{Workflow: i.Workflow, JobID: i.Job, Name: i.Name, Result: i.Result,
			Started: i.Started, Duration: i.Duration, Outputs: i.Outputs, Error: i.Error, Reused: i.Reused})
	}
	return out
}

// instancesOf is the contract's form of the executor's instance results.
func instancesOf(in []*exec.JobResult) []jobspec.Instance {
	out := make([]jobspec.Instance, 0, len(in))
	for _, i := range in {
		out = append(out, jobspec.Instance{Workflow: i.Workflow, Job: i.JobID, Name: i.Name, Result: i.Result,
			Started: i.Started, Duration: i.Duration, Outputs: i.Outputs, Error: i.Error, Reused: i.Reused})
	}
	return out
}

// Env is what the runner of a job provides: sandboxes and the runs-on
// mapping (see exec.Options), and the server URL jobs see as
// github.server_url.
type Env struct {
	Backend, Host, Containers backend.Backend
	Platforms                 map[string]string
	// Profiles are the runs-on labels' sandbox profiles (nil: none).
	Profiles  *profiles.Config
	ServerURL string
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
// a job that cannot run is a Report with status error, its reason also
// written to rep. When ctx ends with a cause of kind errs.Canceled (the
// run was cancelled) the job completes as cancelled.
func Run(ctx context.Context, env Env, asg *jobspec.Assignment, srcDir, workDir string, rep exec.Reporter) (c jobspec.Report) {
	// A panic outside the executor's jobs (which recover their own) fails
	// this job, not the server or agent running every other job.
	defer func() {
		if r := recover(); r != nil {
			c = Fail(rep, "internal error in Conveyor (please report it): %v\n%s", r, debug.Stack())
		}
	}()
	spec := &asg.Run
	var re RunEvent
	if err := json.Unmarshal(spec.EventJSON, &re); err != nil || re.Event == nil {
		return Fail(rep, "the run's event is not readable: %v", err)
	}
	pw, err := Prepare(asg)
	if err != nil {
		return Fail(rep, "%v", err)
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return Fail(rep, "job directory: %v", err)
	}
	ev := re.Event
	opts := exec.Options{
		Backend: env.Backend, Host: env.Host, Containers: env.Containers,
		Platforms: env.Platforms, Profiles: env.Profiles, RepoDir: srcDir, WorkDir: workDir,
		Event: exec.Event{
			Name: spec.Event, Payload: re.Payload, SHA: spec.SHA, Ref: spec.Ref, Repository: ev.Repository.FullName,
			Actor: ev.Sender, RunID: strconv.FormatInt(spec.ID, 10), RunNumber: int(spec.Number), RunAttempt: max(spec.Attempt, 1),
			ServerURL: env.ServerURL,
		},
		Inputs: spec.Inputs, Reporter: rep, Masker: logs.NewMasker(), Keep: keepOf(asg.Keep), Artifacts: env.Artifacts,
		Secrets: asg.Secrets, Vars: asg.Vars,
		Actions:    env.Actions,
		Cache:      env.Cache,
		MaxTimeout: time.Duration(asg.MaxTimeoutMinutes) * time.Minute,
		Network:    backend.NetworkPolicy(asg.NetworkPolicy),
		Runtime:    asg.Runtime,
		Tenant: backend.Tenant{Org: asg.Org, Repo: spec.Repository, OrgID: asg.OrgID, RunID: spec.ID,
			JobID: asg.JobID, Lease: asg.LeaseToken, MaxJobs: asg.MaxJobs},
	}
	if pr := ev.PullRequest; pr != nil {
		opts.Event.HeadRef, opts.Event.BaseRef = pr.HeadRef, pr.BaseRef
	}
	out, err := exec.New(opts).RunJob(ctx, pw, asg.Key, needsOf(asg.Needs))
	if err != nil {
		return Fail(rep, "%v", err)
	}
	c = jobspec.Report{Version: jobspec.Version, Status: out.Result, Outputs: out.Outputs,
		Results: instancesOf(out.Instances), BuildMS: out.Build.Milliseconds()}
	for _, in := range out.Instances {
		if in.Error != "" {
			c.Error = in.Error
		}
	}
	if errs.KindOf(context.Cause(ctx)) == errs.Canceled {
		c.Status = jobspec.Cancelled
	}
	return c
}

// Prepare is the executor's plan of the assigned job: from its compiled
// form (asg.Job) when the server sent one, without reading the workflow
// file; from the workflow file only when a server of contract version 1
// sent none.
func Prepare(asg *jobspec.Assignment) (*plan.Workflow, error) {
	if asg.Job != nil {
		if v := asg.Job.Version; v < jobspec.JobVersion || v > jobspec.Version {
			return nil, errs.E("", errs.Invalid, "the compiled job is of job contract version %d, this worker reads %d to %d: upgrade it",
				v, jobspec.JobVersion, jobspec.Version)
		}
		if asg.Job.ID != asg.Key {
			return nil, errs.E("", errs.Invalid, "the compiled job is %q, the assignment %q", asg.Job.ID, asg.Key)
		}
		pw, err := plan.FromSpec(asg.Job)
		if err != nil {
			return nil, errs.Wrap("the compiled job", errs.Invalid, err)
		}
		return pw, nil
	}
	spec := &asg.Run
	wf, probs := workflow.Parse([]byte(spec.WorkflowYAML), spec.Workflow)
	if len(probs) > 0 {
		return nil, errs.E("", errs.Invalid, "invalid workflow: %v", probs)
	}
	p, err := plan.Compile([]*workflow.Workflow{wf}, plan.Select{Event: spec.Event, AnyEvent: true})
	if err != nil || len(p.Workflows) == 0 {
		return nil, errs.E("", errs.Invalid, "cannot plan the workflow: %v", err)
	}
	return p.Workflows[0], nil
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

// SettingsOf reads a compiled job's Settings.
func SettingsOf(j *jobspec.Job) Settings {
	if j == nil {
		return Settings{}
	}
	st := Settings{ReadRun: true}
	if !strings.Contains(j.Environment, "${{") {
		st.Environment = strings.TrimSpace(j.Environment)
	}
	p := j.Permissions
	if p == nil {
		p = j.Workflow.Permissions
	}
	if p != nil {
		st.ReadRun = p.All == "read-all" || p.All == "write-all" || p.Scopes["actions"] == "read" || p.Scopes["actions"] == "write"
	}
	return st
}

// Fail is the Report of a job that could not run; the reason is also
// written to rep for the job's log.
func Fail(rep exec.Reporter, format string, args ...any) jobspec.Report {
	err := errs.E("job", errs.Other, format, args...)
	if rep != nil {
		rep.Report(exec.Event2{Type: exec.RunError, Text: err.Error()})
	}
	return jobspec.Report{Version: jobspec.Version, Status: jobspec.Error, Error: err.Error()}
}
