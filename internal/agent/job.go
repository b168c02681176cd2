package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/cache"
	"github.com/conveyor-ci/conveyor/internal/client"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/exec"
	"github.com/conveyor-ci/conveyor/internal/jobrun"
	"github.com/conveyor-ci/conveyor/internal/store"
	"github.com/conveyor-ci/conveyor/internal/tarball"
)

// maxChunk splits log chunks well under the server's 1 MiB body limit.
const maxChunk = 512 << 10

// errCancelled stops a job whose run was cancelled: it completes as
// cancelled (jobrun maps the kind).
var errCancelled = errs.E("agent", errs.Canceled, "the run was cancelled")

// runJob runs one leased job to its end and reports it, heartbeating
// meanwhile. A job whose lease is lost is stopped and dropped; one
// stopped by the shutdown deadline is handed back; after Abort nothing
// is reported.
func (a *Agent) runJob(asg *api.AgentAssignment) {
	j := client.Job{ID: asg.JobID, Token: asg.LeaseToken}
	log := a.log.With("job", asg.JobID, "key", asg.Key, "run", asg.Run.ID, "attempt", asg.Attempt)
	log.Info("job leased", "repository", asg.Run.Repository, "workflow", asg.Run.Workflow)
	jobCtx, stop := context.WithCancelCause(a.hard)
	defer stop(nil)
	a.track(asg.JobID, stop)
	defer a.untrack(asg.JobID)

	hbCtx, stopHB := context.WithCancel(a.hard)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		a.heartbeat(hbCtx, j, stop, log)
	}()
	defer func() { stopHB(); <-hbDone }() // the lease lives until the result is in

	sink := jobrun.NewLog(&chunkWriter{cl: a.cl, job: j, base: a.hard, stop: stop}, asg.JobID, asg.Name, log)
	c := a.execute(jobCtx, asg, j, stop, sink)
	sink.Close()

	cause := context.Cause(jobCtx)
	switch {
	case a.hard.Err() != nil:
		return // aborted: as after a crash, the lease expires on the server
	case errs.Is(cause, errs.Conflict):
		log.Warn("lease lost: the job was handed to someone else; dropping it", "reason", cause)
		return
	case errors.Is(cause, errShutdown):
		a.release(j, "the agent shut down before the job finished", log)
		return
	}
	a.complete(j, c, log)
}

// execute downloads the source and runs the job in a fresh directory.
func (a *Agent) execute(ctx context.Context, asg *api.AgentAssignment, j client.Job, stop context.CancelCauseFunc, sink *jobrun.Log) store.Completion {
	dir, err := os.MkdirTemp(a.jobsDir, fmt.Sprintf("job-%d-", asg.JobID))
	if err != nil {
		return jobrun.Fail(sink, "job directory: %v", err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "src")
	if err := a.fetchSource(ctx, j, src); err != nil {
		if errs.Is(err, errs.Conflict) {
			stop(err)
		}
		return jobrun.Fail(sink, "fetching the source of %s at %s: %v", asg.Run.Repository, asg.Run.SHA, err)
	}
	env := a.cfg.Env
	env.Artifacts = &jobArtifacts{cl: a.cl, job: j, server: a.cfg.Server, runID: asg.Run.ID}
	if asg.CacheToken != "" { // the server's cache, for actions/cache and @actions/cache
		env.Cache = exec.Cache{Store: cache.NewRemote(a.cfg.Server, asg.CacheToken, a.cfg.HTTP),
			Runtime: cache.StaticRuntime{URL: a.cfg.Server, Token: asg.CacheToken}}
	}
	return jobrun.Run(ctx, env, specOf(asg), src, filepath.Join(dir, "work"), sink)
}

func (a *Agent) fetchSource(ctx context.Context, j client.Job, dir string) error {
	body, err := a.cl.Source(ctx, j)
	if err != nil {
		return err
	}
	defer body.Close()
	return tarball.Extract(body, dir, tarball.DefaultLimits)
}

// specOf is what jobrun needs of an assignment.
func specOf(asg *api.AgentAssignment) *jobrun.Spec {
	var needs map[string]exec.Need
	if len(asg.Needs) > 0 {
		needs = map[string]exec.Need{}
		for k, n := range asg.Needs {
			needs[k] = exec.Need{Result: n.Result, Outputs: n.Outputs}
		}
	}
	r := asg.Run
	return &jobrun.Spec{JobID: asg.JobID, Key: asg.Key, Name: asg.Name, RunID: r.ID, RunNumber: r.Number, RunAttempt: r.Attempt,
		Workflow: r.Workflow, WorkflowYAML: []byte(r.WorkflowYAML), Event: r.Event, EventJSON: r.EventJSON,
		SHA: r.SHA, Ref: r.Ref, Inputs: r.Inputs, Needs: needs, Keep: jobrun.KeepOf(asg.Keep),
		Secrets: asg.Secrets, Vars: asg.Vars, MaxTimeoutMinutes: asg.MaxTimeoutMinutes,
		Network: backend.NetworkPolicy(asg.NetworkPolicy), Runtime: asg.Runtime}
}

// heartbeat extends the lease until ctx ends. A cancelled run stops the
// job (which still runs its cleanup, so heartbeats go on); a refused
// heartbeat, or none getting through for a whole lease, means the lease
// is lost.
func (a *Agent) heartbeat(ctx context.Context, j client.Job, stop context.CancelCauseFunc, log *slog.Logger) {
	every := max(time.Duration(a.reg.HeartbeatMS)*time.Millisecond, 100*time.Millisecond)
	ttl := time.Duration(a.reg.LeaseTTLMS) * time.Millisecond
	lastOK := time.Now()
	for sleep(ctx, every) {
		cancel, err := a.cl.Heartbeat(ctx, j)
		switch {
		case err == nil:
			lastOK = time.Now()
			if cancel {
				stop(errCancelled)
			}
		case ctx.Err() != nil:
			return
		case final(err) || errs.Is(err, errs.Conflict) || errs.Is(err, errs.NotFound):
			stop(errs.Wrap("agent", errs.Conflict, err))
			return
		case time.Since(lastOK) > ttl:
			stop(errs.E("agent", errs.Conflict, "no heartbeat got through for %s: the lease is lost (%v)", ttl, err))
			return
		default:
			log.Warn("heartbeat failed; will retry", "err", err)
		}
	}
}

// complete reports the result, retrying while the server cannot be
// reached (the heartbeat keeps the lease meanwhile).
func (a *Agent) complete(j client.Job, c store.Completion, log *slog.Logger) {
	in := api.AgentCompletion{Status: c.Status, Outputs: c.Outputs, Results: c.Results, Error: c.Error, BuildMS: c.Build.Milliseconds()}
	wait := time.Second
	for attempt := 1; ; attempt++ {
		err := a.cl.Complete(a.hard, j, in)
		switch {
		case err == nil:
			log.Info("job finished", "status", c.Status)
			return
		case a.hard.Err() != nil:
			return
		case final(err) || errs.Is(err, errs.Conflict) || errs.Is(err, errs.NotFound) || attempt == 6:
			log.Error("the server did not take the job's result", "status", c.Status, "err", err)
			return
		}
		log.Warn("reporting the job's result; will retry", "err", err, "in", wait)
		sleep(a.hard, wait)
		wait *= 2
	}
}

// release hands the job back so that another agent runs it.
func (a *Agent) release(j client.Job, reason string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(a.hard, 30*time.Second)
	defer cancel()
	if err := a.cl.Release(ctx, j, reason); err != nil {
		log.Warn("handing the job back; its lease will expire instead", "err", err)
		return
	}
	log.Info("job handed back", "reason", reason)
}

// chunkWriter sends log chunks to the server as they are produced. It
// stops with the agent (Abort) and stops the job when the lease is lost.
// A chunk whose request failed on the way (network, 5xx) is sent again
// with backoff, marked as a retry so that the server stores it once.
type chunkWriter struct {
	cl   *client.Client
	job  client.Job
	base context.Context
	stop context.CancelCauseFunc
	// prev is the seq of the last chunk the server stored (0: none yet).
	prev int64
	// backoff is the first retry's wait (0: logRetryFirst).
	backoff time.Duration
}

var _ jobrun.ChunkWriter = (*chunkWriter)(nil)

// Log chunk retries: waits double from logRetryFirst up to logRetryMax;
// the caller's context (30 s per flush in jobrun) bounds the whole.
const (
	logRetryFirst = 100 * time.Millisecond
	logRetryMax   = 5 * time.Second
)

func (w *chunkWriter) AppendLog(ctx context.Context, _ int64, data []byte) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(w.base, cancel)()
	for len(data) > 0 {
		n := min(len(data), maxChunk)
		if err := w.send(ctx, data[:n]); err != nil {
			if errs.Is(err, errs.Conflict) {
				w.stop(err)
			}
			return 0, err
		}
		data = data[n:]
	}
	return w.prev, nil
}

func (w *chunkWriter) send(ctx context.Context, chunk []byte) error {
	retryPrev := int64(-1)
	wait := cmp.Or(w.backoff, logRetryFirst)
	for {
		seq, err := w.cl.AppendLog(ctx, w.job, chunk, retryPrev)
		if err == nil {
			if seq > 0 {
				w.prev = seq
			}
			return nil
		}
		if !transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, logRetryMax)
		retryPrev = w.prev
	}
}

// transient reports whether a failed call may succeed when made again:
// the server could not be reached or answered with a server-side error.
func transient(err error) bool {
	if errs.Is(err, errs.Unavailable) {
		return true
	}
	var ce *client.Error
	return errors.As(err, &ce) && (ce.Status >= 500 || ce.Status == http.StatusTooManyRequests)
}
