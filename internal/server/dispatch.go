package server

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/exec"
	"github.com/conveyor-ci/conveyor/internal/logs"
	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/store"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// dispatchLoop leases jobs while this replica has free worker slots and
// runs each in its own goroutine.
func (s *Server) dispatchLoop(ctx context.Context) {
	slots := make(chan struct{}, s.cfg.Workers)
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		l := s.leaseNext(ctx)
		if l == nil {
			return // ctx ended
		}
		s.jobs.Add(1)
		go func() {
			defer s.jobs.Done()
			defer func() { <-slots }()
			s.runLeased(ctx, l)
		}()
	}
}

// leaseNext waits for a job to lease; nil when ctx ends.
func (s *Server) leaseNext(ctx context.Context) *store.Lease {
	for {
		l, err := s.store.Lease(ctx, store.LeaseRequest{Owner: s.cfg.Replica, TTL: s.cfg.LeaseTTL, RepoLimit: s.cfg.RepoLimit})
		if err != nil && ctx.Err() == nil {
			s.log.Error("leasing a job", "err", err)
		}
		if l != nil {
			return l
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.dispatchWake:
		case <-time.After(s.cfg.Poll):
		}
	}
}

// runLeased runs one leased job to its end and completes it, keeping the
// lease alive meanwhile. When the lease is lost (another replica expired
// it) the job is stopped and not completed: the new holder owns it. When
// the server stops, the job is stopped and left to lease expiry, which
// re-queues it as an interrupted attempt.
func (s *Server) runLeased(ctx context.Context, l *store.Lease) {
	job, run := l.Job, l.Run
	log := s.log.With("run", run.ID, "job", job.Key, "attempt", job.Attempt)
	jobCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	sink := newJobLog(s.store, s.hub, job.ID, job.Name, s.log)
	defer sink.Close()

	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		s.heartbeat(jobCtx, job, stop)
	}()
	start := time.Now()
	if !job.Queued.IsZero() {
		sink.onFirstStep = func() { s.metrics.dispatch.Observe(time.Since(job.Queued).Seconds()) }
	}
	c := s.execute(jobCtx, l, sink)
	sink.Close()
	stop(nil)
	<-hbDone
	s.metrics.jobDuration.WithLabelValues(c.Status).Observe(time.Since(start).Seconds())

	if ctx.Err() != nil {
		log.Warn("server stopping: job left to lease expiry")
		return
	}
	if cause := context.Cause(jobCtx); errs.KindOf(cause) == errs.Conflict {
		log.Warn("lease lost; another holder owns the job now", "err", cause)
		return
	}
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.store.Complete(cctx, job.ID, job.LeaseToken, c); err != nil {
		log.Error("completing job", "err", err)
		return
	}
	s.hub.Notify(job.ID)
	log.Info("job finished", "status", c.Status)
	s.wakeDispatch()
	s.wakeStatuses()
}

// heartbeat extends the lease until ctx ends; it stops the job on cancel
// (the run was cancelled) or when the lease was lost.
func (s *Server) heartbeat(ctx context.Context, job *store.Job, stop context.CancelCauseFunc) {
	// Cancels made on another replica are seen here: keep it short.
	every := min(s.cfg.LeaseTTL/3, 3*time.Second)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		case <-s.cancelWake(job.RunID):
		}
		cancel, err := s.store.Heartbeat(ctx, job.ID, job.LeaseToken, s.cfg.LeaseTTL)
		switch {
		case err != nil && errs.KindOf(err) == errs.Conflict:
			stop(err)
			return
		case err != nil:
			if ctx.Err() == nil {
				s.log.Warn("heartbeat failed", "job", job.ID, "err", err)
			}
		case cancel:
			stop(errs.E("job", errs.Canceled, "the run was cancelled"))
			return
		}
	}
}

// execute runs the job with the shared executor.
func (s *Server) execute(ctx context.Context, l *store.Lease, sink *jobLog) store.Completion {
	job, run := l.Job, l.Run
	fail := func(format string, args ...any) store.Completion {
		err := errs.E("job", errs.Other, format, args...)
		sink.line("Error: " + err.Error())
		return store.Completion{Status: store.StatusError, Error: err.Error()}
	}
	var re runEvent
	if err := json.Unmarshal(run.EventJSON, &re); err != nil || re.Event == nil {
		return fail("the run's event is not readable: %v", err)
	}
	wf, probs := workflow.Parse(run.WorkflowYAML, run.Workflow)
	if len(probs) > 0 {
		return fail("invalid workflow: %v", probs)
	}
	p, err := plan.Compile([]*workflow.Workflow{wf}, plan.Select{Event: run.Event, AnyEvent: true})
	if err != nil || len(p.Workflows) == 0 {
		return fail("cannot plan the workflow: %v", err)
	}
	needs, err := s.needsOf(ctx, job)
	if err != nil {
		return fail("reading the results of needed jobs: %v", err)
	}
	repo, err := s.store.GetRepo(ctx, run.OrgID, run.RepoID)
	if err != nil {
		return fail("repository: %v", err)
	}
	dir, err := os.MkdirTemp(s.jobsDir, "job-"+strconv.FormatInt(job.ID, 10)+"-")
	if err != nil {
		return fail("job directory: %v", err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "src")
	if err := s.git.EnsureCommit(ctx, repoKey(repo), repo.URL, creds(repo), run.SHA); err != nil {
		return fail("fetching %s: %v", run.SHA, err)
	}
	if err := s.git.Checkout(ctx, repoKey(repo), run.SHA, src); err != nil {
		return fail("checking out %s: %v", run.SHA, err)
	}
	ev := re.Event
	opts := exec.Options{
		Backend: s.backends.Main, Host: s.backends.Host, Containers: s.backends.Containers,
		Platforms: s.cfg.Platforms, RepoDir: src, WorkDir: filepath.Join(dir, "work"),
		Event: exec.Event{
			Name: run.Event, Payload: re.Payload, SHA: run.SHA, Ref: run.Ref, Repository: ev.Repository.FullName,
			Actor: ev.Sender, RunID: strconv.FormatInt(run.ID, 10), RunNumber: int(run.Number), ServerURL: s.cfg.BaseURL,
		},
		Inputs: run.Inputs, Reporter: sink, Masker: logs.NewMasker(),
	}
	if pr := ev.PullRequest; pr != nil {
		opts.Event.HeadRef, opts.Event.BaseRef = pr.HeadRef, pr.BaseRef
	}
	if err := os.MkdirAll(opts.WorkDir, 0o755); err != nil {
		return fail("job directory: %v", err)
	}
	out, err := exec.New(opts).RunJob(ctx, p.Workflows[0], job.Key, needs)
	if err != nil {
		return fail("%v", err)
	}
	results, _ := json.Marshal(out.Instances)
	c := store.Completion{Status: out.Result, Outputs: out.Outputs, Results: results}
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

// needsOf reads the results and outputs of the jobs job needs.
func (s *Server) needsOf(ctx context.Context, job *store.Job) (map[string]exec.Need, error) {
	if len(job.Needs) == 0 {
		return nil, nil
	}
	jobs, err := s.store.Jobs(ctx, job.OrgID, job.RunID)
	if err != nil {
		return nil, err
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
	return needs, nil
}
