package server

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/event"
	"github.com/conveyor-ci/conveyor/internal/exec"
	"github.com/conveyor-ci/conveyor/internal/gitmirror"
	"github.com/conveyor-ci/conveyor/internal/store"
	"github.com/conveyor-ci/conveyor/internal/trigger"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

var _ api.Actions = (*Server)(nil)

// AddRepo validates and registers a repository.
func (s *Server) AddRepo(ctx context.Context, orgID int64, in api.RepoInput) (*store.Repo, error) {
	switch in.Forge {
	case event.GitHub, event.GitLab, event.Gitea:
	default:
		return nil, errs.E("repo", errs.Invalid, "forge %q: want github, gitlab or gitea", in.Forge)
	}
	u, err := url.Parse(in.URL)
	if err != nil || u.Host == "" && u.Scheme != "file" {
		return nil, errs.E("repo", errs.Invalid, "url %q is not a repository URL", in.URL)
	}
	if u.User != nil {
		return nil, errs.E("repo", errs.Invalid, "put credentials in clone_user/clone_password, not in the URL")
	}
	name := in.RepoName() // the name the API's audit entry names
	if name == "" {
		return nil, errs.E("repo", errs.Invalid, "cannot tell the repository name from %q; give name", in.URL)
	}
	secret := in.Secret
	if secret == "" {
		secret = randomHex(20)
	} else if strings.TrimSpace(secret) == "" {
		return nil, errs.E("repo", errs.Invalid, "the webhook secret is blank")
	}
	branch := in.Branch
	if branch == "" {
		branch = "main"
	}
	r := &store.Repo{OrgID: orgID, Name: name, URL: in.URL, Forge: in.Forge, Secret: secret, Branch: branch,
		AllowSHA1: in.AllowSHA1, RunTestDeliveries: in.RunTestDeliveries, StatusToken: in.StatusToken, APIURL: in.APIURL,
		CloneUser: in.CloneUser, ClonePassword: in.ClonePassword}
	if err := s.store.CreateRepo(ctx, r); err != nil {
		return nil, err
	}
	s.refreshSchedules()
	return r, nil
}

// UpdateRepo changes a repository's settings; the webhook path's cached
// copy is dropped so that the change holds at once on this replica.
func (s *Server) UpdateRepo(ctx context.Context, orgID, id int64, in api.RepoUpdate) (*store.Repo, error) {
	r, err := s.store.UpdateRepo(ctx, orgID, id, store.RepoSettings{RunTestDeliveries: in.RunTestDeliveries, Secret: in.Secret,
		EnvMap: in.EnvMap, SkipForkApproval: in.SkipForkApproval, NetworkPolicy: in.NetworkPolicy, Runtime: in.Runtime})
	if err != nil {
		return nil, err
	}
	s.hooks.repos.forget(id)
	return r, nil
}

// Dispatch validates a workflow_dispatch request at its ref and accepts it.
func (s *Server) Dispatch(ctx context.Context, orgID, repoID int64, in api.DispatchInput) (int64, error) {
	repo, err := s.store.GetRepo(ctx, orgID, repoID)
	if err != nil {
		return 0, err
	}
	if in.Workflow == "" {
		return 0, errs.E("dispatch", errs.Invalid, "workflow is required")
	}
	ref := in.Ref
	if ref == "" {
		ref = repo.Branch
	}
	if err := s.overMonthlyLimit(ctx, orgID); err != nil {
		return 0, err
	}
	key := repoKey(repo)
	if err := s.src.git.Sync(ctx, key, repo.URL, creds(repo)); err != nil {
		return 0, err
	}
	sha, fullRef, err := s.src.git.Resolve(ctx, key, ref)
	if err != nil {
		return 0, err
	}
	files, err := s.src.git.ReadFiles(ctx, key, sha, workflowDirs...)
	if err != nil {
		return 0, err
	}
	var wf *workflow.Workflow
	for name, data := range files {
		if sameWorkflow(name, in.Workflow) {
			w, probs := workflow.Parse(data, name)
			if len(probs) > 0 {
				return 0, errs.E("dispatch", errs.Invalid, "%v", probs)
			}
			wf = w
		}
	}
	if wf == nil {
		return 0, errs.E("dispatch", errs.NotFound, "no workflow %q at %s", in.Workflow, ref)
	}
	t := wf.Trigger("workflow_dispatch")
	if t == nil {
		return 0, errs.E("dispatch", errs.Invalid, "workflow %s has no workflow_dispatch trigger", wf.File)
	}
	inputs, err := trigger.DispatchInputs(t, in.Inputs)
	if err != nil {
		return 0, err
	}
	actor := in.Actor
	if actor == "" {
		actor = "api"
	}
	payload := map[string]any{"ref": fullRef, "workflow": wf.File, "inputs": anyMap(inputs),
		"repository": map[string]any{"full_name": repo.Name}, "sender": map[string]any{"login": actor}}
	ev := &event.Event{Name: "workflow_dispatch", Ref: fullRef, SHA: sha, Inputs: inputs, Sender: actor,
		Repository: event.Repository{FullName: repo.Name, CloneURL: repo.URL, DefaultBranch: repo.Branch}}
	return s.acceptInternal(ctx, repo, "api", ev, payload, "")
}

// acceptInternal stores an event made by Conveyor (API, cron).
func (s *Server) acceptInternal(ctx context.Context, repo *store.Repo, source string, ev *event.Event, payload map[string]any, delivery string) (int64, error) {
	sev, err := internalEvent(repo, source, ev, payload, delivery)
	if err != nil {
		return 0, err
	}
	acc, err := s.hooks.intake.Accept(ctx, sev)
	if err != nil {
		return 0, err
	}
	s.wakeEvents()
	return acc.ID, nil
}

// internalEvent is the stored form of an event Conveyor made itself.
func internalEvent(repo *store.Repo, source string, ev *event.Event, payload map[string]any, delivery string) (*store.Event, error) {
	body, err := json.Marshal(runEvent{Event: ev, Payload: payload})
	if err != nil {
		return nil, errs.Wrap("event", errs.Invalid, err)
	}
	return &store.Event{OrgID: repo.OrgID, RepoID: repo.ID, Source: source, Name: ev.Name,
		DeliveryID: delivery, Body: body, Received: time.Now(), State: store.EventPending}, nil
}

// Cancel cancels a run; running jobs on this replica stop at once, on
// others at their next heartbeat.
func (s *Server) Cancel(ctx context.Context, orgID, runID int64) (*store.Run, error) {
	r, err := s.store.CancelRun(ctx, orgID, runID, "cancelled by a user")
	if err != nil {
		return nil, err
	}
	s.cancels.Notify(runID)
	s.wakeStatuses()
	return r, nil
}

// Rerun re-runs a finished run with the same event, workflow file and
// inputs. With failedOnly, jobs that succeeded keep their result and
// outputs (shown as reused) and only failed or cancelled jobs, and the
// jobs that depend on them, run again.
func (s *Server) Rerun(ctx context.Context, orgID, runID int64, failedOnly bool) (*store.Run, error) {
	old, err := s.store.GetRun(ctx, orgID, runID)
	if err != nil {
		return nil, err
	}
	if !store.Terminal(old.Status) {
		return nil, errs.E("rerun", errs.Conflict, "run %d is still %s", runID, old.Status)
	}
	if err := s.overMonthlyLimit(ctx, orgID); err != nil {
		return nil, err
	}
	jobs, err := s.store.Jobs(ctx, orgID, runID)
	if err != nil {
		return nil, err
	}
	again := rerunSet(jobs, failedOnly)
	if failedOnly && len(again) == 0 {
		return nil, errs.E("rerun", errs.Invalid, "run %d has no failed jobs", runID)
	}
	nr := rerunOf(old)
	newJobs, err := s.rerunJobs(ctx, old, jobs, again, failedOnly)
	if err != nil {
		return nil, err
	}
	queueReusedNeeds(newJobs)
	// The jobs are compiled again from the run's file (lists of jobs do
	// not carry their compiled form); one that cannot be is compiled when
	// leased, and fails then with the reason.
	if wf, probs := s.src.workflows.lint(old.WorkflowYAML, old.Workflow); wf != nil && len(probs) == 0 {
		if err := compileJobs(wf, old.Event, newJobs); err != nil {
			s.log.Warn("re-run: compiling its jobs", "run", runID, "err", err)
		}
	}
	runs, err := s.store.CreateRuns(ctx, []store.NewRun{{Run: &nr, Jobs: newJobs}})
	if err != nil {
		return nil, err
	}
	s.wakeDispatch()
	s.wakeStatuses()
	return runs[0], nil
}

// rerunSet is the keys of the jobs a re-run runs again: all, or with
// failedOnly those that did not succeed (nor were skipped); and everything
// downstream of them.
func rerunSet(jobs []*store.Job, failedOnly bool) map[string]bool {
	again := map[string]bool{}
	for _, j := range jobs {
		if !failedOnly || (j.Status != store.StatusSuccess && j.Status != store.StatusSkipped) {
			again[j.Key] = true
		}
	}
	for changed := true; changed; {
		changed = false
		for _, j := range jobs {
			for _, n := range j.Needs {
				if again[n] && !again[j.Key] {
					again[j.Key], changed = true, true
				}
			}
		}
	}
	return again
}

// rerunOf is the new run of a re-run of old: the same event and file, a
// new attempt, queued.
func rerunOf(old *store.Run) store.Run {
	nr := *old
	nr.ID, nr.Number, nr.Status, nr.Error = 0, 0, store.StatusQueued, ""
	nr.Trigger, nr.RerunOf, nr.Attempt = "rerun", old.ID, old.Attempt+1
	nr.Started, nr.Finished, nr.Created = time.Time{}, time.Time{}, time.Time{}
	return nr
}

// rerunJobs is the re-run's jobs: those in again waiting or queued, the
// others reused with their results; a deployment whose environment now
// refuses the ref fails at once (redeploy).
func (s *Server) rerunJobs(ctx context.Context, old *store.Run, jobs []*store.Job, again map[string]bool, failedOnly bool) ([]*store.Job, error) {
	var newJobs []*store.Job
	for _, j := range jobs {
		nj := &store.Job{OrgID: j.OrgID, RepoID: j.RepoID, Key: j.Key, Name: j.Name, Needs: j.Needs,
			Labels: j.Labels, Backend: j.Backend, Priority: j.Priority, MaxAttempts: j.MaxAttempts,
			ConcurrencyGroup: j.ConcurrencyGroup, CancelInProgress: j.CancelInProgress}
		if err := s.redeploy(ctx, old, j, nj, again[j.Key]); err != nil {
			return nil, err
		}
		switch {
		case nj.Status == store.StatusFailure: // its environment refuses the ref now
		case !again[j.Key]:
			nj.Status, nj.Outputs, nj.Results, nj.ReusedFrom = j.Status, j.Outputs, j.Results, j.ID
		case len(j.Needs) > 0:
			nj.Status = store.StatusWaiting
		default:
			nj.Status = store.StatusQueued
		}
		if failedOnly && again[j.Key] && failed(j.Status) {
			// Its matrix instances that succeeded are kept, not run again
			// (jobrun.KeepOf); jobs re-run only because they depend on a
			// failed one run whole.
			nj.Results = keptInstances(j.Results)
		}
		newJobs = append(newJobs, nj)
	}
	return newJobs, nil
}

// queueReusedNeeds queues a waiting job whose needs are all reused: it is
// ready now.
func queueReusedNeeds(jobs []*store.Job) {
	reused := map[string]bool{}
	for _, j := range jobs {
		if j.ReusedFrom != 0 {
			reused[j.Key] = true
		}
	}
	for _, j := range jobs {
		if j.Status == store.StatusWaiting && allIn(j.Needs, reused) {
			j.Status = store.StatusQueued
		}
	}
}

func failed(status string) bool {
	return status == store.StatusFailure || status == store.StatusCancelled || status == store.StatusError
}

// keptInstances is the part of a job's instance results that a re-run of
// failed jobs keeps: the instances that succeeded, when some did not.
func keptInstances(results []byte) []byte {
	var ins []*exec.JobResult
	if json.Unmarshal(results, &ins) != nil || len(ins) < 2 {
		return nil
	}
	var keep []*exec.JobResult
	for _, in := range ins {
		if in != nil && in.Result == exec.Success {
			in.Reused = false
			keep = append(keep, in)
		}
	}
	if len(keep) == 0 || len(keep) == len(ins) {
		return nil
	}
	b, err := json.Marshal(keep)
	if err != nil {
		return nil
	}
	return b
}

func allIn(keys []string, set map[string]bool) bool {
	for _, k := range keys {
		if !set[k] {
			return false
		}
	}
	return true
}

func anyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func creds(r *store.Repo) gitmirror.Credentials {
	return gitmirror.Credentials{Username: r.CloneUser, Password: r.ClonePassword}
}
