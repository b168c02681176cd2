package server

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/exec"
	"github.com/conveyor-ci/conveyor/internal/jobrun"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// dispatchLoop leases jobs while this replica has free worker slots and
// runs each in its own goroutine. A replica without workers runs nothing:
// agents do.
func (s *Server) dispatchLoop(ctx context.Context) {
	if s.cfg.Workers < 0 {
		return
	}
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
		l, err := s.store.Lease(ctx, store.LeaseRequest{Owner: s.cfg.Replica, Labels: s.localLabels(),
			TTL: s.cfg.LeaseTTL, RepoLimit: s.cfg.RepoLimit})
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
	sink := jobrun.NewLog(hubLogs{s.store, s.hub}, job.ID, job.Name, s.log)
	defer sink.Close()

	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		s.heartbeat(jobCtx, job, stop)
	}()
	start := time.Now()
	if !job.Queued.IsZero() {
		sink.OnFirstStep(func() { s.metrics.dispatch.Observe(time.Since(job.Queued).Seconds()) })
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

// execute runs the job with the shared executor in a fresh checkout.
func (s *Server) execute(ctx context.Context, l *store.Lease, sink *jobrun.Log) store.Completion {
	job, run := l.Job, l.Run
	needs, err := s.needsOf(ctx, job)
	if err != nil {
		return jobrun.Fail(sink, "reading the results of needed jobs: %v", err)
	}
	dir, err := os.MkdirTemp(s.jobsDir, "job-"+strconv.FormatInt(job.ID, 10)+"-")
	if err != nil {
		return jobrun.Fail(sink, "job directory: %v", err)
	}
	defer os.RemoveAll(dir)
	src, release, err := s.source(ctx, run)
	if err != nil {
		return jobrun.Fail(sink, "%v", err)
	}
	defer release()
	spec := jobrun.SpecOf(l, needs)
	defer s.revokeJobTokens(ctx, job.ID)
	if spec.Secrets, spec.Vars, err = s.jobValues(ctx, run, job); err != nil {
		return jobrun.Fail(sink, "reading the job's secrets and variables: %v", err)
	}
	if spec.MaxTimeoutMinutes, err = s.maxTimeout(ctx, run.OrgID); err != nil {
		return jobrun.Fail(sink, "reading the organisation's quota: %v", err)
	}
	if err := s.sandboxOf(ctx, run, spec); err != nil {
		return jobrun.Fail(sink, "reading the repository's sandbox settings: %v", err)
	}
	env := s.jobEnv()
	env.Artifacts = s.runArtifacts(run)
	return jobrun.Run(ctx, env, spec, src, filepath.Join(dir, "work"), sink)
}

// jobEnv is what this replica runs jobs with.
func (s *Server) jobEnv() jobrun.Env {
	return jobrun.Env{Backend: s.backends.Main, Host: s.backends.Host, Containers: s.backends.Containers,
		Platforms: s.cfg.Platforms, ServerURL: s.cfg.BaseURL, Actions: s.actions, Cache: s.cache}
}

// source returns the shared, read-only tree of run's commit (for local
// jobs, and for the source agents download); release must be called once
// it is no longer read.
func (s *Server) source(ctx context.Context, run *store.Run) (string, func(), error) {
	repo, err := s.store.GetRepo(ctx, run.OrgID, run.RepoID)
	if err != nil {
		return "", nil, errs.Wrap("repository", errs.KindOf(err), err)
	}
	if err := checkSHA(run.SHA); err != nil {
		return "", nil, err
	}
	return s.srcs.acquire(ctx, repoKey(repo)+"-"+run.SHA, func(ctx context.Context, dir string) error {
		return s.checkout(ctx, repo, run, dir)
	})
}

// checkout writes the tree of run's commit into dest.
func (s *Server) checkout(ctx context.Context, repo *store.Repo, run *store.Run, dest string) error {
	// The commit is nearly always in the mirror (processing the event put
	// it there): try the checkout first, fetch only when it is missing.
	err := s.git.Checkout(ctx, repoKey(repo), run.SHA, dest)
	if errs.Is(err, errs.NotFound) {
		if err := s.git.EnsureCommit(ctx, repoKey(repo), repo.URL, creds(repo), run.SHA); err != nil {
			return errs.Wrap("fetching "+run.SHA, errs.KindOf(err), err)
		}
		err = s.git.Checkout(ctx, repoKey(repo), run.SHA, dest)
	}
	if err != nil {
		return errs.Wrap("checking out "+run.SHA, errs.KindOf(err), err)
	}
	return nil
}

// localLabels are the runs-on labels this replica's workers run: those
// its platforms map, and self-hosted. nil when it has no workers.
func (s *Server) localLabels() []string {
	if s.cfg.Workers < 0 {
		return nil
	}
	labels := []string{"self-hosted"}
	for k := range s.cfg.Platforms {
		if k = strings.ToLower(k); !slices.Contains(labels, k) {
			labels = append(labels, k)
		}
	}
	slices.Sort(labels)
	return labels
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
	return jobrun.NeedsOf(job, jobs), nil
}
