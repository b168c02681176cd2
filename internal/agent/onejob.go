package agent

import (
	"context"
	"io"
	"os"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/client"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/worker"
)

// OneJob is the one job an in-pod worker runs (the kubernetes backend's
// worker layout): the server leased it, made the pod and gave the worker
// the job's id, lease token and worker credential (Config.Token, valid
// for this job under this lease only).
type OneJob struct {
	ID, LeaseToken int64
	// LeaseTTL and Heartbeat are the server's lease length and heartbeat
	// interval (0: 30 s and a third of it).
	LeaseTTL, Heartbeat time.Duration
}

// RunOne runs job with the shared worker, as an agent runs a leased job:
// its assignment (compiled job, secrets) and source come over the agent
// protocol, its steps run on Config.Env's backend (the host backend of
// the pod's main container: a process spawn per step, no API call), its
// log is streamed back masked, and it completes or hands the job back.
// Services are the pod's sidecars: the backend given must not start them
// again (see SidecarServices). It reports how the job left the worker.
func (a *Agent) RunOne(ctx context.Context, job OneJob) (worker.Outcome, error) {
	defer a.abort()
	stop := context.AfterFunc(ctx, func() { a.stopAll(errShutdown) })
	defer stop()
	j := client.Job{ID: job.ID, Token: job.LeaseToken}
	var asg *api.AgentAssignment
	err := retry(ctx, a, "fetching the job's assignment", func(ctx context.Context) (err error) {
		asg, err = a.cl.Assignment(ctx, j)
		return err
	})
	if err != nil {
		return worker.Unrecorded, errs.Wrap("agent: one job", errs.KindOf(err), err)
	}
	ttl := job.LeaseTTL
	if ttl <= 0 {
		ttl = time.Duration(asg.LeaseTTLMS) * time.Millisecond
	}
	a.reg = &api.AgentRegistered{LeaseTTLMS: ttl.Milliseconds(), HeartbeatMS: job.Heartbeat.Milliseconds()}
	// Every runs-on label runs here: the pod was made for the job.
	a.cfg.Env.Platforms = platformsFor(nil, asg.Labels)
	dir := a.cfg.DataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "conveyor-job-"); err != nil {
			return worker.Unrecorded, errs.Wrap("agent: one job", errs.Unavailable, err)
		}
		defer os.RemoveAll(dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return worker.Unrecorded, errs.Wrap("agent: one job", errs.Unavailable, err)
	}
	a.jobsDir = dir
	return a.runJob(asg), nil
}

// retry calls f until it succeeds, fails for good or 2 minutes pass.
func retry(ctx context.Context, a *Agent, what string, f func(context.Context) error) error {
	deadline := time.Now().Add(2 * time.Minute)
	for wait := 200 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := f(actx)
		cancel()
		if err == nil || !transient(err) || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		a.log.Warn(what+"; will retry", "err", err, "in", wait)
		if !worker.Sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// SidecarServices is a backend (the host backend of a job pod's main
// container) whose jobs' services already run as the pod's sidecars, and
// whose network policy and runtime the pod enforces: Setup leaves them
// out of what it asks the backend for.
type SidecarServices struct{ backend.Backend }

// Setup implements backend.Backend.
func (b SidecarServices) Setup(ctx context.Context, job *backend.JobSpec, log io.Writer) (backend.Sandbox, error) {
	j := *job
	if len(j.Services) > 0 && log != nil {
		names := make([]string, len(j.Services))
		for i, s := range j.Services {
			names[i] = s.Name
		}
		io.WriteString(log, "Services run as sidecars of this pod: "+strings.Join(names, ", ")+"\n")
	}
	j.Services, j.Network, j.Runtime = nil, "", ""
	return b.Backend.Setup(ctx, &j, log)
}
