package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/event"
	"github.com/conveyor-ci/conveyor/internal/expr"
	"github.com/conveyor-ci/conveyor/internal/forge"
	"github.com/conveyor-ci/conveyor/internal/jobrun"
	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/store"
	"github.com/conveyor-ci/conveyor/internal/trigger"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// workflowDirs are where a repository's workflow files are read from.
var workflowDirs = []string{".github/workflows", ".conveyor"}

// maxEventAttempts bounds retries of an event whose processing failed for
// an infrastructure reason (git unreachable).
const maxEventAttempts = 5

// runEvent is what a run keeps of its event: the model and the payload the
// github.event context shows. Re-runs and jobs read it back.
type runEvent = jobrun.RunEvent

// finishEvery bounds how long a processed event waits for the rest of its
// batch before the batch is written: runs must not wait behind git work.
const finishEvery = 20 * time.Millisecond

// processLoop turns accepted events into runs. The events of a claimed
// batch are planned in parallel (planning is CPU and git work, independent
// per event), and their outcomes written together (store.FinishEvents: one
// transaction, one fsync), so the processor does not take the single
// SQLite writer once per event while webhooks are group-committed on it.
func (s *Server) processLoop(ctx context.Context) {
	for {
		// A dead replica's claims come back after this; FinishEvents is fenced,
		// so a slow processor that loses its claim writes nothing.
		s.yieldToIntake(ctx)
		evs, err := s.store.ClaimEvents(ctx, s.cfg.Replica, claimBatch, max(2*s.cfg.LeaseTTL, 10*time.Second))
		if err != nil && ctx.Err() == nil {
			s.log.Error("claiming events", "err", err)
		}
		s.processBatch(ctx, evs)
		if len(evs) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake.event:
		case <-time.After(s.cfg.Poll):
		}
	}
}

// claimBatch is how many events one claim takes.
const claimBatch = 32

// processBatch plans evs on up to processParallel goroutines and writes the
// outcomes in claim order: whenever finishEvery has passed since the first
// unwritten outcome, the longest finished prefix is written (runs of one
// repository are created in the order of their events, which concurrency
// groups depend on; a slow event holds back only the writing of those
// after it, not their planning).
func (s *Server) processBatch(ctx context.Context, evs []*store.Event) {
	type result struct {
		i  int
		o  store.EventOutcome
		ok bool
	}
	results := make(chan result, len(evs))
	reads := s.newBatchReads()
	sem := make(chan struct{}, processParallel())
	for i, ev := range evs {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			o, ok := s.processEvent(ctx, ev, reads)
			results <- result{i, o, ok}
		}()
	}
	done := make([]*result, len(evs))
	next := 0                // the first outcome not written
	var due <-chan time.Time // when the finished prefix must be written
	flush := func() {
		var outs []store.EventOutcome
		for ; next < len(done) && done[next] != nil; next++ {
			if done[next].ok {
				outs = append(outs, done[next].o)
			}
		}
		s.finishEvents(ctx, outs)
		due = nil
	}
	for received := 0; received < len(evs); {
		select {
		case r := <-results:
			received++
			done[r.i] = &r
			if due == nil && done[next] != nil {
				due = time.After(finishEvery)
			}
		case <-due:
			flush()
		}
	}
	flush()
}

// processParallel is how many events are planned at once.
func processParallel() int { return max(2, 2*runtime.NumCPU()) }

// yieldToIntake lets waiting webhooks have the database's single writer
// first, for a while at most: accepting (durably, before the 2xx) is what
// a forge waits on; processing is asynchronous and catches up.
func (s *Server) yieldToIntake(ctx context.Context) {
	deadline := time.Now().Add(intakeYield)
	for s.hooks.intake.Waiting() > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// intakeYield bounds how long processing waits for webhook intake.
const intakeYield = 20 * time.Millisecond

// processEvent plans one claimed event; false when nothing is to be
// written (it is retried once its claim expires, or the server stops).
func (s *Server) processEvent(ctx context.Context, sev *store.Event, reads *batchReads) (store.EventOutcome, bool) {
	runs, err := s.planSafe(ctx, sev, reads)
	if err != nil {
		if errs.KindOf(err) == errs.Unavailable && sev.Attempts < maxEventAttempts && ctx.Err() == nil {
			s.log.Warn("event will be retried", "event", sev.ID, "attempt", sev.Attempts, "err", err)
			return store.EventOutcome{}, false // the claim expires and the event is claimed again
		}
		if ctx.Err() != nil {
			return store.EventOutcome{}, false
		}
		s.log.Warn("event failed", "event", sev.ID, "err", err)
		reason := err.Error()
		if reason == "" {
			reason = "failed"
		}
		return store.EventOutcome{EventID: sev.ID, Fail: reason}, true
	}
	return store.EventOutcome{EventID: sev.ID, Runs: runs}, true
}

// planSafe is plan with a panic turned into the event's failure: an event
// that finds a bug (a workflow file no test had) must fail alone, not
// crash the server and, claimed again after every restart, keep it down.
func (s *Server) planSafe(ctx context.Context, sev *store.Event, reads *batchReads) (runs []store.NewRun, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("internal error planning an event; the event fails", "event", sev.ID, "panic", r, "stack", string(debug.Stack()))
			runs, err = nil, errs.E("event", errs.Other, "internal error in Conveyor (please report it): %v", r)
		}
	}()
	return s.plan(ctx, sev, reads)
}

// finishEvents writes processed outcomes and announces the runs made.
func (s *Server) finishEvents(ctx context.Context, outs []store.EventOutcome) {
	if len(outs) == 0 {
		return
	}
	s.yieldToIntake(ctx)
	made := false
	for i, res := range s.store.FinishEvents(ctx, s.cfg.Replica, outs) {
		o := outs[i]
		if res.Err != nil {
			if o.Fail != "" {
				s.log.Error("failing event", "event", o.EventID, "err", res.Err)
			} else {
				s.log.Error("writing runs", "event", o.EventID, "err", res.Err)
			}
			continue
		}
		for _, r := range res.Runs {
			s.log.Info("run created", "run", r.ID, "repo", r.RepoID, "workflow", r.Workflow, "event", r.Event, "status", r.Status)
		}
		made = made || len(res.Runs) > 0
	}
	if made {
		s.wakeDispatch()
	}
}

// decode turns a stored event back into the model.
func decode(sev *store.Event) (*event.Event, error) {
	if sev.Source == "webhook" {
		return forge.Parse(sev.Forge, headerOf(sev.Headers), sev.Body)
	}
	var re runEvent
	if err := json.Unmarshal(sev.Body, &re); err != nil || re.Event == nil {
		return nil, errs.E("event", errs.Invalid, "stored %s event %d is not readable: %v", sev.Source, sev.ID, err)
	}
	re.Event.Body = re.Payload
	return re.Event, nil
}

// plan reads the workflows at the event's commit and builds the runs the
// event triggers. reads are the store reads shared by the events of a batch.
func (s *Server) plan(ctx context.Context, sev *store.Event, reads *batchReads) ([]store.NewRun, error) {
	ev, err := decode(sev)
	if err != nil {
		return nil, err
	}
	if ev.Name == "push" && ev.Deleted {
		return nil, s.dropBranchEnvironments(ctx, sev.OrgID, sev.RepoID, ev.Ref)
	}
	if ev.Name == "ping" {
		return nil, nil
	}
	if (ev.Name == "push" || ev.Name == "pull_request") && trigger.SkipCI(ev.HeadCommit) {
		s.log.Info("skipped: [skip ci] in the head commit", "event", sev.ID)
		return nil, nil
	}
	repo, err := reads.repo(ctx, sev.OrgID, sev.RepoID)
	if err != nil {
		return nil, err
	}
	if err := s.resolveCommit(ctx, repo, ev); err != nil {
		return nil, err
	}
	files, err := s.workflowFiles(ctx, repo, ev.SHA)
	if err != nil {
		return nil, err
	}
	if ev.Name == "push" && ev.Ref == "refs/heads/"+repo.Branch {
		s.noteSchedules(repo, sev.ID, files) // on: schedule is read from the default branch
	}
	evJSON, err := runEventJSON(sev, ev)
	if err != nil {
		return nil, errs.Wrap("event", errs.Invalid, err)
	}
	runs, err := s.planFiles(ctx, repo, sev, ev, files, evJSON)
	if err != nil {
		return nil, err
	}
	if err := refuseOverLimit(runs, func() error { return reads.overLimit(ctx, repo.OrgID) }); err != nil {
		return nil, err
	}
	return runs, nil
}

// resolveCommit gives an event without a commit one: events without a ref
// either (issues, issue_comment, label, discussion, ...) run on the default
// branch, as on GitHub, and a ref runs at its head when processed (cron, a
// release, the default branch).
func (s *Server) resolveCommit(ctx context.Context, repo *store.Repo, ev *event.Event) error {
	if ev.SHA == "" && ev.Ref == "" {
		if b := defaultBranch(repo, ev); b != "" {
			ev.Ref = "refs/heads/" + b
		}
	}
	if ev.SHA == "" && ev.Ref != "" {
		key := repoKey(repo)
		if err := s.src.git.Sync(ctx, key, repo.URL, creds(repo)); err != nil {
			return err
		}
		var err error
		if ev.SHA, _, err = s.src.git.Resolve(ctx, key, ev.Ref); err != nil {
			return err
		}
	}
	if ev.SHA == "" {
		return errs.E("event", errs.Invalid, "%s event has no commit and the repository no default branch", ev.Name)
	}
	return nil
}

// workflowFiles reads the workflow files at sha. The commit is usually in
// the mirror already: read first, fetch only when it is missing (a git
// process less per event).
func (s *Server) workflowFiles(ctx context.Context, repo *store.Repo, sha string) (map[string][]byte, error) {
	key := repoKey(repo)
	files, err := s.src.git.ReadFiles(ctx, key, sha, workflowDirs...)
	if errs.Is(err, errs.NotFound) {
		if err := s.src.git.EnsureCommit(ctx, key, repo.URL, creds(repo), sha); err != nil {
			return nil, err
		}
		files, err = s.src.git.ReadFiles(ctx, key, sha, workflowDirs...)
	}
	if err != nil {
		return nil, err
	}
	return files, nil
}

// planFiles plans each workflow file (only the one a workflow_dispatch
// names), in name order; files the event does not trigger make no run.
func (s *Server) planFiles(ctx context.Context, repo *store.Repo, sev *store.Event, ev *event.Event, files map[string][]byte, evJSON []byte) ([]store.NewRun, error) {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var runs []store.NewRun
	for _, name := range names {
		if want := dispatchWorkflow(ev); want != "" && !sameWorkflow(name, want) {
			continue
		}
		nr, err := s.planFile(ctx, repo, sev, ev, name, files[name], evJSON)
		if err != nil {
			return nil, err
		}
		if nr != nil {
			runs = append(runs, *nr)
		}
	}
	return runs, nil
}

// runEventJSON is what the runs of an event keep of it (runEvent). A
// GitHub webhook's payload is kept as delivered (compacted) instead of
// being encoded again from its decoded form: the same JSON to every
// reader, without a re-encoding per event that cost as much as decoding.
func runEventJSON(sev *store.Event, ev *event.Event) ([]byte, error) {
	if sev.Source != "webhook" || ev.Forge != event.GitHub || !utf8.Valid(sev.Body) {
		payload := ev.Body
		if sev.Source == "webhook" {
			payload = forge.GitHubPayload(ev)
		}
		return json.Marshal(runEvent{Event: ev, Payload: payload})
	}
	model, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(model) + len(sev.Body) + 24)
	b.WriteString(`{"event":`)
	b.Write(model)
	b.WriteString(`,"payload":`)
	if err := json.Compact(&b, sev.Body); err != nil {
		return nil, err
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// planFile plans one workflow file for the event; nil when it does not run.
func (s *Server) planFile(ctx context.Context, repo *store.Repo, sev *store.Event, ev *event.Event, name string, data, evJSON []byte) (*store.NewRun, error) {
	// Parse and lint, as conveyor run and lint do: a file GitHub would
	// refuse fails its run with file:line:col instead of failing a step.
	wf, probs := s.src.workflows.lint(data, name)
	run := &store.Run{
		OrgID: repo.OrgID, RepoID: repo.ID, EventID: sev.ID, Workflow: name, Name: name,
		Event: ev.Name, Ref: runRef(ev), SHA: ev.SHA, Trigger: sev.Source, Status: store.StatusQueued,
		Inputs: ev.Inputs, EventJSON: evJSON, WorkflowYAML: data, Attempt: 1,
	}
	if wf != nil && wf.Name != "" {
		run.Name = wf.Name
	}
	if len(probs) > 0 {
		// GitHub shows a failed run for a broken file on push; do the same
		// so the user sees why nothing ran.
		if ev.Name != "push" {
			return nil, nil
		}
		run.Status = store.StatusFailure
		run.Error = "invalid workflow file:\n" + probs.Error()
		return &store.NewRun{Run: run}, nil
	}
	if ok, err := s.triggered(ctx, repo, sev, ev, wf, name); !ok || err != nil {
		return nil, err
	}
	pw, jobs, jc, failure := planRunJobs(wf, ev, run, name)
	if failure != "" {
		run.Status, run.Error = store.StatusFailure, failure
		return &store.NewRun{Run: run}, nil
	}
	if err := s.planDeployments(ctx, repo, run, ev.Sender, pw, jobs, jc); err != nil {
		return nil, err
	}
	if !repo.SkipForkApproval && eventFromFork(ev, run.Event) {
		// A fork's code runs only once a maintainer looked at it.
		run.Status = store.StatusAwaitingApproval
	}
	return &store.NewRun{Run: run, Jobs: jobs}, nil
}

// triggered says whether the event triggers wf (on:, filters, changed
// paths); a filter the user got wrong only logs and does not trigger.
func (s *Server) triggered(ctx context.Context, repo *store.Repo, sev *store.Event, ev *event.Event, wf *workflow.Workflow, name string) (bool, error) {
	dec, err := trigger.Match(ctx, wf, ev, trigger.Options{Filters: s.src.filters, ChangedFiles: func(ctx context.Context, ev *event.Event) ([]string, error) {
		return s.src.git.ChangedFiles(ctx, repoKey(repo), ev.Before, ev.SHA)
	}})
	if err != nil && !dec.Run && errs.KindOf(err) == errs.Invalid {
		s.log.Info("workflow not triggered: invalid filter", "event", sev.ID, "workflow", name, "reason", dec.Reason)
		return false, nil
	} else if err != nil {
		return false, err
	}
	if !dec.Run {
		s.log.Debug("workflow not triggered", "event", sev.ID, "workflow", name, "reason", dec.Reason)
		return false, nil
	}
	return true, nil
}

// planRunJobs plans the triggered workflow's jobs for run, with the run's
// and the jobs' concurrency groups, and returns the expression context of
// job-level evaluation; failure says why the run fails at once instead.
func planRunJobs(wf *workflow.Workflow, ev *event.Event, run *store.Run, name string) (pw *plan.Workflow, jobs []*store.Job, jc *expr.Context, failure string) {
	p, err := plan.Compile([]*workflow.Workflow{wf}, plan.Select{Event: ev.Name})
	if err != nil || len(p.Workflows) == 0 {
		return nil, nil, nil, fmt.Sprintf("cannot plan the workflow: %v", err)
	}
	pw = p.Workflows[0]
	c := concurrencyContext(ev, run, name)
	if wf.Concurrency != nil {
		g, cancel, err := evalConcurrency(wf.Concurrency, c)
		if err != nil {
			return nil, nil, nil, "concurrency.group: " + err.Error()
		}
		run.ConcurrencyGroup, run.CancelInProgress = g, cancel
	}
	jobs = jobsOf(pw, run)
	if err := compileJobs(wf, ev.Name, jobs); err != nil {
		return nil, nil, nil, fmt.Sprintf("cannot compile the workflow: %v", err)
	}
	jc, failure = jobGroups(pw, jobs, c)
	if failure != "" {
		return nil, nil, nil, failure
	}
	return pw, jobs, jc, ""
}

// jobGroups sets the jobs' own concurrency groups and returns the context
// they were evaluated in. They are evaluated now, before any job ran: needs
// and matrix read as empty (all matrix legs of a job share its group).
func jobGroups(pw *plan.Workflow, jobs []*store.Job, c *expr.Context) (jc *expr.Context, failure string) {
	jc = &expr.Context{Values: map[string]any{"matrix": map[string]any{}, "strategy": map[string]any{},
		"needs": map[string]any{}}}
	for k, v := range c.Values {
		jc.Values[k] = v
	}
	for i, pj := range pw.Jobs {
		if pj.Source == nil || pj.Source.Concurrency == nil {
			continue
		}
		g, cancel, err := evalConcurrency(pj.Source.Concurrency, jc)
		if err != nil {
			return nil, fmt.Sprintf("jobs.%s.concurrency.group: %v", pj.ID, err)
		}
		jobs[i].ConcurrencyGroup, jobs[i].CancelInProgress = g, cancel
	}
	return jc, ""
}

// evalConcurrency evaluates a concurrency: group and cancel-in-progress.
func evalConcurrency(cc *workflow.Concurrency, c *expr.Context) (group string, cancel bool, err error) {
	g, err := expr.Interpolate(cc.Group, c)
	if err != nil {
		return "", false, err
	}
	if v := cc.CancelInProgress; v != "" {
		b, err := expr.Interpolate(v, c)
		if str, ok := b.(string); ok {
			cancel = strings.TrimSpace(str) == "true"
		} else {
			cancel = err == nil && expr.Truthy(b)
		}
	}
	return expr.ToString(g), cancel, nil
}

// jobsOf turns a planned workflow into queue entries.
func jobsOf(pw *plan.Workflow, run *store.Run) []*store.Job {
	var jobs []*store.Job
	for _, pj := range pw.Jobs {
		j := &store.Job{OrgID: run.OrgID, RepoID: run.RepoID, Key: pj.ID, Name: pj.Name, Needs: pj.Needs,
			Labels: pj.RunsOn, MaxAttempts: 2, Status: store.StatusQueued}
		if len(pj.Needs) > 0 {
			j.Status = store.StatusWaiting
		}
		jobs = append(jobs, j)
	}
	return jobs
}

// concurrencyContext is what workflow-level concurrency: may read.
func concurrencyContext(ev *event.Event, run *store.Run, file string) *expr.Context {
	inputs := map[string]any{}
	for k, v := range ev.Inputs {
		inputs[k] = v
	}
	gh := map[string]any{
		"event_name": ev.Name, "ref": run.Ref, "sha": ev.SHA, "workflow": run.Name,
		"repository": ev.Repository.FullName, "actor": ev.Sender, "event": ev.Body,
		"head_ref": "", "base_ref": "", "ref_name": refName(run.Ref), "workflow_ref": ev.Repository.FullName + "/" + file + "@" + run.Ref,
	}
	if pr := ev.PullRequest; pr != nil {
		gh["head_ref"], gh["base_ref"] = pr.HeadRef, pr.BaseRef
	}
	return &expr.Context{Values: map[string]any{"github": gh, "inputs": inputs, "vars": map[string]any{}}}
}

func refName(ref string) string {
	for _, p := range []string{"refs/heads/", "refs/tags/"} {
		if s, ok := strings.CutPrefix(ref, p); ok {
			return s
		}
	}
	if n, ok := strings.CutPrefix(ref, "refs/pull/"); ok {
		return n // GitHub's ref_name of a pull request: "7/merge"
	}
	return ref
}

// runRef is github.ref of a run, as GitHub sets it: refs/pull/N/merge for
// pull_request and its review events, the base branch for
// pull_request_target, else the event's ref.
func runRef(ev *event.Event) string {
	pr := ev.PullRequest
	switch {
	case pr == nil || ev.Ref != "":
		return ev.Ref
	case ev.Name == "pull_request_target":
		return "refs/heads/" + pr.BaseRef
	case pr.Number > 0:
		return fmt.Sprintf("refs/pull/%d/merge", pr.Number)
	}
	return ""
}

// defaultBranch is the repository's default branch: as registered, else
// as the event's payload says.
func defaultBranch(repo *store.Repo, ev *event.Event) string {
	if repo.Branch != "" {
		return repo.Branch
	}
	return ev.Repository.DefaultBranch
}

// dispatchWorkflow is the file a workflow_dispatch event names, if any.
func dispatchWorkflow(ev *event.Event) string {
	if ev.Name != "workflow_dispatch" && ev.Name != "schedule" {
		return ""
	}
	if w, ok := ev.Body["workflow"].(string); ok {
		return w
	}
	return ""
}

// sameWorkflow compares a file path with a name given by a user
// ("ci.yml", ".github/workflows/ci.yml").
func sameWorkflow(file, want string) bool {
	return file == want || path.Base(file) == want
}

func repoKey(r *store.Repo) string { return fmt.Sprintf("%d", r.ID) }
