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
	"github.com/conveyor-ci/conveyor/internal/jobrun"
	"github.com/conveyor-ci/conveyor/internal/jobspec"
	"github.com/conveyor-ci/conveyor/internal/pool"
	"github.com/conveyor-ci/conveyor/internal/store"
	"github.com/conveyor-ci/conveyor/internal/worker"
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
		var l *store.Lease
		var slot *pool.Slot // the job's room on a backend pool (nil: no pools)
		if s.pools != nil {
			l, slot = s.leaseOnPools(ctx)
		} else {
			l = s.leaseNext(ctx)
		}
		if l == nil {
			return // ctx ended
		}
		s.jobs.Add(1)
		go func() {
			defer s.jobs.Done()
			defer func() { <-slots }()
			s.runLeased(ctx, l, slot)
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
		case <-s.wake.dispatch:
		case <-time.After(s.cfg.Poll):
		}
	}
}

// runLeased runs one leased job with the shared worker: heartbeats until
// the sandbox is gone and the result is recorded, completion and log
// chunks retried across store outages. When the lease is lost the job is
// stopped and not completed: the new holder owns it. When the server
// stops, the job is stopped and left to lease expiry, which re-queues it
// as an interrupted attempt.
//
// With backend pools, slot is the job's room on one: freed when the run
// ends; a job whose pool failed before any step is handed back.
func (s *Server) runLeased(ctx context.Context, l *store.Lease, slot *pool.Slot) {
	job := l.Job
	log := s.log.With("run", job.RunID, "job", job.Key, "attempt", job.Attempt)
	if slot != nil {
		log = log.With("pool", slot.Pool().Spec.Name)
	}
	if kb, spec := s.podWorkerBackend(ctx, l, slot); kb != nil {
		s.runInPod(ctx, l, slot, kb, spec, log.With("layout", "worker"))
		return
	}
	w := worker.New(worker.Config{TTL: s.cfg.LeaseTTL, Every: min(s.cfg.LeaseTTL/3, 3*time.Second), // cancels made on another replica are seen here
		LogGrace: 5 * time.Second, // a stopped job's last lines are kept
		Log:      log})
	w.Do(ctx, worker.Job{ID: job.ID, Name: job.Name, Lease: &storeLease{s: s, job: job},
		Wake:     func() <-chan struct{} { return s.cancelWake(job.RunID) },
		HandBack: s.handBack(l, slot),
		Run: func(ctx context.Context, sink *jobrun.Log) jobspec.Report {
			if slot != nil {
				defer slot.Done()
			}
			start := time.Now()
			if !job.Queued.IsZero() {
				sink.OnFirstStep(func() { s.metrics.dispatch.Observe(time.Since(job.Queued).Seconds()) })
			}
			rep := s.execute(ctx, l, sink, s.jobEnv(slot))
			s.metrics.jobDuration.WithLabelValues(rep.Status).Observe(time.Since(start).Seconds())
			return rep
		}})
}

// storeLease is a job leased from the store by this replica.
type storeLease struct {
	s   *Server
	job *store.Job
}

var _ worker.Lease = (*storeLease)(nil)

func (l *storeLease) Heartbeat(ctx context.Context) (bool, error) {
	return l.s.store.Heartbeat(ctx, l.job.ID, l.job.LeaseToken, l.s.cfg.LeaseTTL)
}

func (l *storeLease) AppendLog(ctx context.Context, data []byte, retryPrev int64) (int64, error) {
	if retryPrev < 0 {
		return hubLogs{l.s.store, l.s.hub}.AppendLog(ctx, l.job.ID, data)
	}
	seq, dup, err := l.s.store.RetryLog(ctx, l.job.ID, retryPrev, data)
	if err == nil && !dup {
		l.s.hub.Notify(l.job.ID)
	}
	return seq, err
}

func (l *storeLease) Complete(ctx context.Context, r jobspec.Report) error {
	if err := l.s.store.Complete(ctx, l.job.ID, l.job.LeaseToken, store.CompletionOf(r)); err != nil {
		return err
	}
	l.s.revokeJobTokens(ctx, l.job.ID) // again: the store may have been away at the job's end
	l.s.hub.Notify(l.job.ID)
	l.s.wakeDispatch()
	l.s.wakeStatuses()
	return nil
}

func (l *storeLease) Release(ctx context.Context, reason string) error {
	if err := l.s.store.Release(ctx, l.job.ID, l.job.LeaseToken, reason); err != nil {
		return err
	}
	l.s.hub.Notify(l.job.ID)
	l.s.wakeDispatch()
	return nil
}

// execute runs the job with the shared executor in a fresh checkout.
func (s *Server) execute(ctx context.Context, l *store.Lease, sink *jobrun.Log, env jobrun.Env) jobspec.Report {
	job, run := l.Job, l.Run
	defer s.revokeJobTokens(context.WithoutCancel(ctx), job.ID)
	asg, err := s.assignment(ctx, l)
	if err != nil {
		return jobrun.Fail(sink, "%v", err)
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
	env.Artifacts = s.runArtifacts(run)
	return jobrun.Run(ctx, env, asg, src, filepath.Join(dir, "work"), sink)
}

// assignment is the job contract's form of a lease: what a worker of
// this replica or an agent runs the job with (an agent's CacheToken
// aside).
func (s *Server) assignment(ctx context.Context, l *store.Lease) (*jobspec.Assignment, error) {
	job, run := l.Job, l.Run
	needs, err := s.needsOf(ctx, job)
	if err != nil {
		return nil, errs.Wrap("reading the results of needed jobs", errs.KindOf(err), err)
	}
	repo, err := s.store.GetRepo(ctx, run.OrgID, run.RepoID)
	if err != nil {
		return nil, errs.Wrap("repository", errs.KindOf(err), err)
	}
	asg := &jobspec.Assignment{Version: jobspec.Version, JobID: job.ID, LeaseToken: job.LeaseToken, LeaseTTLMS: ms(s.cfg.LeaseTTL),
		Key: job.Key, Name: job.Name, Attempt: job.Attempt, Labels: job.Labels,
		Run: jobspec.Run{ID: run.ID, Number: run.Number, Attempt: run.Attempt, Repository: repo.Name, Workflow: run.Workflow,
			WorkflowYAML: string(run.WorkflowYAML), Event: run.Event, EventJSON: run.EventJSON, SHA: run.SHA,
			Ref: run.Ref, Inputs: run.Inputs},
		Needs: needs, Keep: jobspec.DecodeInstances(job.Results),
		Sandbox: jobspec.Sandbox{NetworkPolicy: repo.NetworkPolicy, Runtime: repo.Runtime, OrgID: run.OrgID}}
	org, err := s.store.GetOrg(ctx, run.OrgID)
	if err != nil {
		return nil, errs.Wrap("organisation", errs.KindOf(err), err)
	}
	asg.Org = org.Name
	if asg.Job, err = s.compiledJob(l); err != nil {
		return nil, err
	}
	if asg.Secrets, asg.Vars, err = s.jobValues(ctx, run, job, asg.Job); err != nil {
		return nil, errs.Wrap("reading the job's secrets and variables", errs.KindOf(err), err)
	}
	q, err := s.store.Quota(ctx, run.OrgID)
	if err != nil {
		return nil, errs.Wrap("reading the organisation's quota", errs.KindOf(err), err)
	}
	asg.MaxTimeoutMinutes, asg.MaxJobs = q.MaxTimeoutMinutes, q.MaxConcurrentJobs
	return asg, nil
}

// jobEnv is what this replica runs a job with: its backend pool's
// sandboxes (slot), or without pools the server's.
func (s *Server) jobEnv(slot *pool.Slot) jobrun.Env {
	env := jobrun.Env{Backend: s.backends.Main, Host: s.backends.Host, Containers: s.backends.Containers,
		Platforms: s.cfg.Platforms, Profiles: s.cfg.Profiles, ServerURL: s.cfg.BaseURL, Actions: s.kit.actions, Cache: s.kit.cache}
	if slot != nil {
		b := slot.Backends()
		env.Backend, env.Host, env.Containers = b.Main, b.Host, b.Containers
		if p := slot.Pool().Platforms; p != nil {
			env.Platforms = p
		}
	}
	return env
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
	return s.src.trees.acquire(ctx, repoKey(repo)+"-"+run.SHA, func(ctx context.Context, dir string) error {
		return s.checkout(ctx, repo, run, dir)
	})
}

// checkout writes the tree of run's commit into dest.
func (s *Server) checkout(ctx context.Context, repo *store.Repo, run *store.Run, dest string) error {
	// The commit is nearly always in the mirror (processing the event put
	// it there): try the checkout first, fetch only when it is missing.
	err := s.src.git.Checkout(ctx, repoKey(repo), run.SHA, dest)
	if errs.Is(err, errs.NotFound) {
		if err := s.src.git.EnsureCommit(ctx, repoKey(repo), repo.URL, creds(repo), run.SHA); err != nil {
			return errs.Wrap("fetching "+run.SHA, errs.KindOf(err), err)
		}
		err = s.src.git.Checkout(ctx, repoKey(repo), run.SHA, dest)
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

// needsOf reads the results and outputs of the jobs job needs: a job
// that ended in error counts as failed, as GitHub shows it to dependents.
func (s *Server) needsOf(ctx context.Context, job *store.Job) (map[string]jobspec.Need, error) {
	if len(job.Needs) == 0 {
		return nil, nil
	}
	jobs, err := s.store.Jobs(ctx, job.OrgID, job.RunID)
	if err != nil {
		return nil, err
	}
	needs := map[string]jobspec.Need{}
	for _, j := range jobs {
		if !slices.Contains(job.Needs, j.Key) {
			continue
		}
		status := j.Status
		if status == store.StatusError {
			status = jobspec.Failure
		}
		needs[j.Key] = jobspec.Need{Result: status, Outputs: j.Outputs}
	}
	return needs, nil
}
