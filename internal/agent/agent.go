// Package agent is the loop of conveyor agent: a machine that registers
// with a server using its agent token, long-polls for jobs whose runs-on
// labels it has, runs each with the shared executor (jobrun) in a fresh
// sandbox and reports back. It only makes outbound HTTP requests, so it
// works behind NAT and firewalls.
package agent

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/client"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/jobrun"
	"github.com/conveyor-ci/conveyor/internal/jobspec"
	"github.com/conveyor-ci/conveyor/internal/worker"
)

// Config is an agent's configuration (flags of conveyor agent).
type Config struct {
	// Server is the server's URL; Token the agent token.
	Server, Token string
	// Labels are the runs-on labels the agent runs (none: those the
	// admin gave it).
	Labels []string
	// Capacity is how many jobs it runs at once (default 1).
	Capacity int
	// Env are the sandboxes and runs-on mapping jobs run with; labels of
	// the agent that Platforms does not map run on the host backend.
	Env jobrun.Env
	// DataDir holds job directories (default: a temporary directory).
	DataDir string
	// ShutdownTimeout is how long running jobs may go on after Run's
	// context ends; then they are stopped and handed back.
	ShutdownTimeout   time.Duration
	Version, Hostname string
	// HTTP is the client for the server (default: one without an overall
	// timeout, as lease requests wait and sources stream).
	HTTP *http.Client
	Log  *slog.Logger
}

// Agent runs jobs for one server.
type Agent struct {
	cfg     Config
	cl      *client.Client
	log     *slog.Logger
	jobsDir string
	reg     *api.AgentRegistered

	// hard is the context of every call and job: Abort ends it.
	hard  context.Context
	abort context.CancelFunc

	mu      sync.Mutex
	running map[int64]context.CancelCauseFunc
}

// errShutdown stops the jobs still running at the shutdown deadline: they
// are handed back to the server.
var errShutdown = worker.ErrHandBack

// New checks cfg and makes an agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	if cfg.Server == "" || cfg.Token == "" {
		return nil, errs.E("agent", errs.Invalid, "a server URL and an agent token are required")
	}
	if cfg.Env.Backend == nil {
		return nil, errs.E("agent", errs.Invalid, "no backend")
	}
	if cfg.Capacity <= 0 {
		cfg.Capacity = 1
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 2 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTP == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = 2 * time.Minute // above any poll timeout: a hung server fails
		cfg.HTTP = &http.Client{Transport: tr}
	}
	if cfg.Env.ServerURL == "" {
		cfg.Env.ServerURL = strings.TrimRight(cfg.Server, "/")
	}
	a := &Agent{cfg: cfg, cl: client.New(cfg.Server, cfg.Token, cfg.HTTP), log: cfg.Log,
		running: map[int64]context.CancelCauseFunc{}}
	a.hard, a.abort = context.WithCancel(context.Background())
	return a, nil
}

// Run registers and runs jobs until ctx ends, then shuts down gracefully:
// no new jobs; running ones finish within ShutdownTimeout or are stopped
// and handed back. It returns early with an error when the server refuses
// the token.
func (a *Agent) Run(ctx context.Context) error {
	reg, err := a.register(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before the server answered
		}
		return err
	}
	a.reg = reg
	a.cfg.Env.Platforms = platformsFor(a.cfg.Env.Platforms, reg.Labels)
	dir := a.cfg.DataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "conveyor-agent-"); err != nil {
			return errs.Wrap("agent", errs.Unavailable, err)
		}
		defer os.RemoveAll(dir)
	}
	a.jobsDir = dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return errs.Wrap("agent", errs.Unavailable, err)
	}
	a.log.Info("agent registered", "agent", reg.AgentID, "name", reg.Name, "labels", reg.Labels,
		"capacity", a.cfg.Capacity, "draining", reg.Draining)
	if len(reg.RefusedLabels) > 0 {
		a.log.Warn("the server ignores labels this agent's token does not allow; jobs that need them will not come here",
			"refused", strings.Join(reg.RefusedLabels, ","))
	}

	pollCtx, stopPolling := context.WithCancelCause(ctx)
	defer stopPolling(nil)
	defer context.AfterFunc(a.hard, func() { stopPolling(context.Canceled) })()
	var wg sync.WaitGroup
	for range a.cfg.Capacity {
		wg.Go(func() {
			if err := a.slot(pollCtx); err != nil {
				stopPolling(err) // the token was refused: stop the whole agent
			}
		})
	}
	slotsDone := make(chan struct{})
	go func() { wg.Wait(); close(slotsDone) }()
	select {
	case <-slotsDone:
	case <-pollCtx.Done():
		a.log.Info("agent stopping: no new jobs", "running", a.runningCount(), "deadline", a.cfg.ShutdownTimeout)
		select {
		case <-slotsDone:
		case <-time.After(a.cfg.ShutdownTimeout):
			a.stopAll(errShutdown)
			<-slotsDone
		}
	}
	if cause := context.Cause(pollCtx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

// Abort stops everything at once as a crash would (kill -9): jobs are
// stopped, nothing is reported or handed back, and leases expire on the
// server. For tests and emergencies.
func (a *Agent) Abort() { a.abort() }

// register tells the server what the agent runs, retrying while the
// server cannot be reached; a refused token is final.
func (a *Agent) register(ctx context.Context) (*api.AgentRegistered, error) {
	in := api.AgentRegister{Labels: a.cfg.Labels, Capacity: a.cfg.Capacity, Version: a.cfg.Version, Hostname: a.cfg.Hostname,
		Contract: jobspec.Version}
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		reg, err := a.cl.Register(ctx, in)
		if err == nil {
			return reg, nil
		}
		if final(err) || ctx.Err() != nil {
			return nil, errs.Wrap("agent: register", errs.KindOf(err), err)
		}
		a.log.Warn("registering; will retry", "err", err, "in", wait)
		if !worker.Sleep(ctx, wait) {
			return nil, errs.Wrap("agent: register", errs.Canceled, ctx.Err())
		}
	}
}

// final reports whether retrying cannot help: the token or the request is
// refused.
func final(err error) bool {
	switch errs.KindOf(err) {
	case errs.Unauthorized, errs.Forbidden, errs.Invalid:
		return true
	}
	return false
}

// slot leases and runs one job at a time until ctx ends; it returns an
// error when the server refuses the token.
func (a *Agent) slot(ctx context.Context) error {
	wait := time.Second
	drained := false
	for ctx.Err() == nil {
		asg, draining, err := a.cl.Lease(ctx)
		switch {
		case err != nil && final(err):
			a.log.Error("the server refuses this agent", "err", err)
			return err
		case err != nil:
			if ctx.Err() != nil {
				return nil
			}
			a.log.Warn("waiting for a job; will retry", "err", err, "in", wait)
			worker.Sleep(ctx, wait)
			wait = min(2*wait, 30*time.Second)
			continue
		case draining:
			if !drained {
				a.log.Info("agent drained: taking no new jobs")
			}
			drained = true
			worker.Sleep(ctx, min(5*time.Second, time.Duration(a.reg.PollTimeoutMS)*time.Millisecond))
			continue
		}
		wait, drained = time.Second, false
		if asg != nil {
			a.runJob(asg)
		}
	}
	return nil
}

func (a *Agent) track(id int64, stop context.CancelCauseFunc) {
	a.mu.Lock()
	a.running[id] = stop
	a.mu.Unlock()
}

func (a *Agent) untrack(id int64) {
	a.mu.Lock()
	delete(a.running, id)
	a.mu.Unlock()
}

func (a *Agent) runningCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.running)
}

// stopAll stops every running job with cause.
func (a *Agent) stopAll(cause error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, stop := range a.running {
		stop(cause)
	}
}

// platformsFor maps the agent's labels that platforms does not map to the
// host: a self-hosted machine runs its own labels itself.
func platformsFor(platforms map[string]string, labels []string) map[string]string {
	out := map[string]string{"self-hosted": "-self-hosted"}
	for k, v := range platforms {
		out[strings.ToLower(k)] = v
	}
	for _, l := range labels {
		if _, ok := out[strings.ToLower(l)]; !ok {
			out[strings.ToLower(l)] = "-self-hosted"
		}
	}
	return out
}
