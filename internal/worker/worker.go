// Package worker runs leased jobs, once for every kind of worker: lease →
// heartbeat → run → complete or release. A server replica's workers lease
// from the store (StoreLease, in package server), agents over HTTP
// (package agent); both hand a Job to Start.
//
// The lease is heartbeated from the moment the job starts until its
// result is recorded or it is handed back: through a run cancel (the
// job's if: always() steps and the sandbox's teardown still run) and
// through retries of the completion. The completion, a release and every
// log chunk are retried across transient errors (a database that drops
// its connections, a server that cannot be reached) for as long as the
// lease can still win: the store takes a completion with the lease's
// token until another attempt took the job, and says so (Conflict).
package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/jobrun"
	"github.com/conveyor-ci/conveyor/internal/jobspec"
)

// Lease is one leased job as its worker sees it. Every call is fenced by
// the lease's token: an error of kind Conflict or NotFound means the
// lease is lost for good (another attempt owns the job, or it ended);
// other errors may be transient (Config.Transient decides). Calls may be
// made concurrently.
type Lease interface {
	// Heartbeat extends the lease; cancel is true when the job's run was
	// cancelled.
	Heartbeat(ctx context.Context) (cancel bool, err error)
	// AppendLog stores the next chunk of the job's output and returns its
	// seq. retryPrev < 0 sends it as new; retryPrev >= 0 sends it again
	// after an attempt whose answer was lost, with the seq of the previous
	// chunk (0: none), so that it is stored once.
	AppendLog(ctx context.Context, data []byte, retryPrev int64) (seq int64, err error)
	// Complete records the job's end.
	Complete(ctx context.Context, r jobspec.Report) error
	// Release hands the job back to the queue.
	Release(ctx context.Context, reason string) error
}

// Job is a leased job to run.
type Job struct {
	ID int64
	// Name is the job's display name (the log prefixes other names:
	// matrix instances).
	Name  string
	Lease Lease
	// Wake, when not nil, makes the next heartbeat come at once (a cancel
	// seen by this process).
	Wake func() <-chan struct{}
	// Run runs the job, writing its output to log, and returns when its
	// sandboxes are gone. When ctx ends with a cause of kind errs.Canceled
	// the run was cancelled: it reports cancelled after its cleanup.
	Run func(ctx context.Context, log *jobrun.Log) jobspec.Report
	// HandBack, when not nil, is asked once Run returned: a reason hands
	// the job back to the queue instead of completing it (its backend
	// pool failed before any step ran: another pool runs it).
	HandBack func() string
}

// Config tunes a Worker; zero fields take defaults.
type Config struct {
	// TTL is the lease's length (default 30 s); Every how often it is
	// heartbeated (default TTL/3).
	TTL, Every time.Duration
	// Persist bounds how long a completion, a release or a log chunk is
	// retried across transient errors (default 10 min). The lease, kept
	// by heartbeats meanwhile, usually decides first.
	Persist time.Duration
	// Attempt bounds one call (default 10 s): a hung connection fails
	// and is retried.
	Attempt time.Duration
	// Transient reports whether a failed call may succeed when made again
	// (default: any error but of kind Conflict, NotFound, Invalid,
	// Unauthorized, Forbidden or TooLarge).
	Transient func(error) bool
	// Log gets the worker's messages (default: none).
	Log *slog.Logger
	// LogGrace is how long log writes go on after Start's context ended
	// (a server's graceful stop: the stopped job's last lines are still
	// stored); 0: they stop with it (an agent's Abort, as a crash).
	LogGrace time.Duration
	// Backoff is the first retry's wait (default 100 ms); waits double up
	// to 5 s or a quarter of the TTL, whichever is less.
	Backoff time.Duration
}

func (c *Config) defaults() {
	if c.TTL <= 0 {
		c.TTL = 30 * time.Second
	}
	if c.Every <= 0 {
		c.Every = c.TTL / 3
	}
	if c.Persist <= 0 {
		c.Persist = 10 * time.Minute
	}
	if c.Attempt <= 0 {
		c.Attempt = 10 * time.Second
	}
	if c.Transient == nil {
		c.Transient = Transient
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Backoff <= 0 {
		c.Backoff = 100 * time.Millisecond
	}
}

// Transient is the default Config.Transient.
func Transient(err error) bool {
	switch errs.KindOf(err) {
	case errs.Conflict, errs.NotFound, errs.Invalid, errs.Unauthorized, errs.Forbidden, errs.TooLarge:
		return false
	}
	return true
}

// Worker runs leased jobs.
type Worker struct{ cfg Config }

// New returns a Worker.
func New(cfg Config) *Worker {
	cfg.defaults()
	return &Worker{cfg: cfg}
}

// Outcome says how a job left its worker.
type Outcome int

const (
	// Completed: its report is recorded.
	Completed Outcome = iota
	// Released: it was handed back to the queue.
	Released
	// Lost: another attempt owns it (or it ended): nothing was recorded.
	Lost
	// Abandoned: Start's context ended (a crash, a server stop): nothing
	// was recorded; the lease expires.
	Abandoned
	// Unrecorded: the store could not be reached for Config.Persist.
	Unrecorded
)

func (o Outcome) String() string {
	return [...]string{"completed", "released", "lost", "abandoned", "unrecorded"}[o]
}

// ErrHandBack, as the cause given to Running.Stop, stops the run and
// hands the job back (a shutdown deadline): see Release.
var ErrHandBack = errs.E("worker", errs.Unavailable, "the worker is shutting down")

// errPresumedLost stops a run whose lease no heartbeat renewed for a
// whole TTL: another attempt may run it now. It is handed back if the
// lease still holds.
var errPresumedLost = errs.E("worker", errs.Unavailable, "no heartbeat got through for a whole lease: the job is stopped")

// errCancelled is the cause of a cancelled run.
var errCancelled = errs.E("worker", errs.Canceled, "the run was cancelled")

// Running is a started job.
type Running struct {
	stop context.CancelCauseFunc
	done chan struct{}
	out  Outcome
}

// Stop stops the job's run with cause (ErrHandBack: hand it back); the
// job still reports or hands back as its cause says.
func (r *Running) Stop(cause error) { r.stop(cause) }

// Wait waits for the job to leave the worker.
func (r *Running) Wait() Outcome { <-r.done; return r.out }

// Start runs j in a goroutine. When ctx ends, the run is stopped and
// nothing is reported (as after a crash: the lease expires).
func (w *Worker) Start(ctx context.Context, j Job) *Running {
	runCtx, stop := context.WithCancelCause(ctx)
	r := &Running{stop: stop, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer stop(nil)
		r.out = w.do(ctx, runCtx, stop, j)
	}()
	return r
}

// Do runs j to its end: Start and Wait.
func (w *Worker) Do(ctx context.Context, j Job) Outcome { return w.Start(ctx, j).Wait() }

func (w *Worker) do(ctx, runCtx context.Context, stop context.CancelCauseFunc, j Job) Outcome {
	log := w.cfg.Log // the caller's names the job
	hbCtx, stopHB := context.WithCancel(ctx)
	var hb sync.WaitGroup
	hb.Go(func() { w.heartbeat(hbCtx, j, stop, log) })
	// The lease lives until the result is in: heartbeats stop last.
	defer func() { stopHB(); hb.Wait() }()

	sink := jobrun.NewLog(&chunks{w: w, lease: j.Lease, base: ctx, stop: stop}, j.ID, j.Name, log)
	sink.PersistFor(w.cfg.Persist)
	rep := j.Run(runCtx, sink)
	// What stopped the run, if anything: not a heartbeat that fails while
	// the last chunks are written.
	cause := context.Cause(runCtx)
	sink.Close()

	switch {
	case ctx.Err() != nil:
		log.Warn("worker stopping: job left to lease expiry")
		return Abandoned
	case LeaseLost(cause):
		log.Warn("lease lost; another attempt owns the job now", "err", cause)
		return Lost
	case errors.Is(cause, ErrHandBack), errors.Is(cause, errPresumedLost):
		return w.persist(ctx, log, "handing the job back", func(ctx context.Context) error {
			return j.Lease.Release(ctx, cause.Error())
		}, Released)
	}
	if j.HandBack != nil {
		if reason := j.HandBack(); reason != "" {
			log.Warn("handing the job back", "reason", reason)
			return w.persist(ctx, log, "handing the job back", func(ctx context.Context) error {
				return j.Lease.Release(ctx, reason)
			}, Released)
		}
	}
	if rep.Version == 0 {
		rep.Version = jobspec.Version
	}
	out := w.persist(ctx, log, "recording the job's result", func(ctx context.Context) error {
		return j.Lease.Complete(ctx, rep)
	}, Completed)
	if out == Completed {
		log.Info("job finished", "status", rep.Status)
	}
	return out
}

// lost reports whether err says the lease is another attempt's.
// LeaseLost says whether err from a lease call means the lease is
// another's now (Conflict) or the job is gone (NotFound): the caller stops
// the job rather than retrying.
func LeaseLost(err error) bool { return errs.Is(err, errs.Conflict) || errs.Is(err, errs.NotFound) }

// persist calls f until it succeeds, the lease is lost, ctx ends or
// Config.Persist passes, retrying transient errors with backoff.
func (w *Worker) persist(ctx context.Context, log *slog.Logger, what string, f func(context.Context) error, ok Outcome) Outcome {
	deadline := time.Now().Add(w.cfg.Persist)
	wait := w.cfg.Backoff
	for {
		actx, cancel := context.WithTimeout(ctx, w.cfg.Attempt)
		err := f(actx)
		cancel()
		switch {
		case err == nil:
			return ok
		case ctx.Err() != nil:
			return Abandoned
		case LeaseLost(err):
			log.Warn(what+": the lease is lost; another attempt owns the job", "err", err)
			return Lost
		case !w.cfg.Transient(err):
			log.Error(what, "err", err)
			return Unrecorded
		case time.Now().After(deadline):
			log.Error(what+": giving up", "err", err, "after", w.cfg.Persist)
			return Unrecorded
		}
		log.Warn(what+"; will retry", "err", err, "in", wait)
		if !Sleep(ctx, wait) {
			return Abandoned
		}
		wait = min(2*wait, w.maxWait())
	}
}

// maxWait caps retry waits: well within a lease, so that a retry gets in
// soon after the store is back, before the lease's expiry is handled.
func (w *Worker) maxWait() time.Duration { return max(min(5*time.Second, w.cfg.TTL/4), w.cfg.Backoff) }

// heartbeat extends the lease until ctx ends. A cancelled run stops the
// job's run (which still runs its cleanup, so heartbeats go on); a lost
// lease stops it for good; none getting through for a whole TTL stops it
// to be handed back.
func (w *Worker) heartbeat(ctx context.Context, j Job, stop context.CancelCauseFunc, log *slog.Logger) {
	lastOK, presumed := time.Now(), false
	t := time.NewTimer(w.cfg.Every)
	defer t.Stop()
	for {
		var wake <-chan struct{}
		if j.Wake != nil {
			wake = j.Wake()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
		t.Reset(w.cfg.Every)
		// Not bounded by the TTL: a slow heartbeat (a busy database) still
		// extends the lease from when it lands.
		actx, cancel := context.WithTimeout(ctx, w.cfg.Attempt)
		c, err := j.Lease.Heartbeat(actx)
		cancel()
		switch {
		case err == nil:
			lastOK, presumed = time.Now(), false
			if c {
				stop(errCancelled)
			}
		case ctx.Err() != nil:
			return
		case LeaseLost(err) || !w.cfg.Transient(err):
			stop(errs.Wrap("worker", errs.Conflict, err))
			return
		case time.Since(lastOK) > w.cfg.TTL && !presumed:
			presumed = true
			stop(errPresumedLost)
			log.Warn("heartbeat failed for a whole lease; the job is stopped", "err", err)
		default:
			log.Warn("heartbeat failed; will retry", "err", err)
		}
	}
}

// Sleep waits d or until ctx ends; false when ctx ended.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
