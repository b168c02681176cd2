package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/cache"
	"github.com/conveyor-ci/conveyor/internal/client"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/exec"
	"github.com/conveyor-ci/conveyor/internal/jobrun"
	"github.com/conveyor-ci/conveyor/internal/jobspec"
	"github.com/conveyor-ci/conveyor/internal/tarball"
	"github.com/conveyor-ci/conveyor/internal/worker"
)

// runJob runs one leased job with the shared worker: heartbeats until
// the sandbox is gone and the result is in, the result and log chunks
// retried while the server cannot be reached. A job whose lease is lost
// is stopped and dropped; one stopped by the shutdown deadline is handed
// back; after Abort nothing is reported.
func (a *Agent) runJob(asg *api.AgentAssignment) worker.Outcome {
	j := client.Job{ID: asg.JobID, Token: asg.LeaseToken}
	log := a.log.With("job", asg.JobID, "key", asg.Key, "run", asg.Run.ID, "attempt", asg.Attempt)
	log.Info("job leased", "repository", asg.Run.Repository, "workflow", asg.Run.Workflow)
	lease := &httpLease{cl: a.cl, job: j}
	if err := jobspec.CheckAssignment(asg.Version); err != nil {
		a.giveBack(lease, "agent: "+err.Error(), log)
		return worker.Released
	}
	w := worker.New(worker.Config{TTL: time.Duration(a.reg.LeaseTTLMS) * time.Millisecond,
		Every:     max(time.Duration(a.reg.HeartbeatMS)*time.Millisecond, 100*time.Millisecond),
		Transient: transient, Log: log})
	r := w.Start(a.hard, worker.Job{ID: asg.JobID, Name: asg.Name, Lease: lease,
		Run: func(ctx context.Context, sink *jobrun.Log) jobspec.Report {
			return a.execute(ctx, asg, j, sink)
		}})
	a.track(asg.JobID, r.Stop)
	defer a.untrack(asg.JobID)
	return r.Wait()
}

// giveBack hands a job the agent cannot run back at once.
func (a *Agent) giveBack(l *httpLease, reason string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(a.hard, 30*time.Second)
	defer cancel()
	if err := l.Release(ctx, reason); err != nil {
		log.Warn("handing the job back; its lease will expire instead", "err", err)
		return
	}
	log.Warn("job handed back", "reason", reason)
}

// execute downloads the source and runs the job in a fresh directory.
func (a *Agent) execute(ctx context.Context, asg *api.AgentAssignment, j client.Job, sink *jobrun.Log) jobspec.Report {
	dir, err := os.MkdirTemp(a.jobsDir, fmt.Sprintf("job-%d-", asg.JobID))
	if err != nil {
		return jobrun.Fail(sink, "job directory: %v", err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "src")
	if err := a.fetchSource(ctx, j, src); err != nil {
		return jobrun.Fail(sink, "fetching the source of %s at %s: %v", asg.Run.Repository, asg.Run.SHA, err)
	}
	env := a.cfg.Env
	env.Artifacts = &jobArtifacts{cl: a.cl, job: j, server: a.cfg.Server, runID: asg.Run.ID}
	if asg.CacheToken != "" { // the server's cache, for actions/cache and @actions/cache
		env.Cache = exec.Cache{Store: cache.NewRemote(a.cfg.Server, asg.CacheToken, a.cfg.HTTP),
			Runtime: cache.StaticRuntime{URL: a.cfg.Server, Token: asg.CacheToken}}
	}
	return jobrun.Run(ctx, env, asg, src, filepath.Join(dir, "work"), sink)
}

func (a *Agent) fetchSource(ctx context.Context, j client.Job, dir string) error {
	body, err := a.cl.Source(ctx, j)
	if err != nil {
		return err
	}
	defer body.Close()
	return tarball.Extract(body, dir, tarball.DefaultLimits)
}

// httpLease is a job leased from the server over the agent protocol.
type httpLease struct {
	cl  *client.Client
	job client.Job
}

var _ worker.Lease = (*httpLease)(nil)

func (l *httpLease) Heartbeat(ctx context.Context) (bool, error) { return l.cl.Heartbeat(ctx, l.job) }

func (l *httpLease) AppendLog(ctx context.Context, data []byte, retryPrev int64) (int64, error) {
	return l.cl.AppendLog(ctx, l.job, data, retryPrev)
}

func (l *httpLease) Complete(ctx context.Context, r jobspec.Report) error {
	return l.cl.Complete(ctx, l.job, r)
}

func (l *httpLease) Release(ctx context.Context, reason string) error {
	return l.cl.Release(ctx, l.job, reason)
}

// transient reports whether a failed call may succeed when made again:
// the server could not be reached or answered with a server-side error.
func transient(err error) bool {
	if errs.Is(err, errs.Unavailable) || errs.Is(err, errs.Timeout) {
		return true
	}
	var ce *client.Error
	return errors.As(err, &ce) && (ce.Status >= 500 || ce.Status == http.StatusTooManyRequests)
}
