package server

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/jobspec"
	"github.com/conveyor-ci/conveyor/internal/store"
	"github.com/conveyor-ci/conveyor/internal/tarball"
)

// agentService is the server side of the agent protocol and of agent
// management (api.AgentProtocol, api.AgentAdmin).
type agentService struct{ s *Server }

var (
	_ api.AgentProtocol = (*agentService)(nil)
	_ api.AgentAdmin    = (*agentService)(nil)
)

// seenEvery bounds how often polls and heartbeats write an agent's
// last-seen time.
const seenEvery = 5 * time.Second

func ms(d time.Duration) int64 { return d.Milliseconds() }

// heartbeatEvery is how often agents heartbeat a job: a third of the
// lease, and often enough that a cancel reaches them within seconds.
func (g *agentService) heartbeatEvery() time.Duration {
	return min(g.s.cfg.LeaseTTL/3, 5*time.Second)
}

// onlineWindow: an agent seen within it is online (it polls at least once
// per poll timeout).
func (g *agentService) onlineWindow() time.Duration { return g.s.cfg.AgentPoll + 10*time.Second }

func (g *agentService) AgentByHash(ctx context.Context, hash []byte) (*store.Agent, error) {
	return g.s.store.AgentByHash(ctx, hash)
}

// Register records what the agent runs. Labels it reports replace those
// it had (the admin's, at first); none reported keeps them.
func (g *agentService) Register(ctx context.Context, a *store.Agent, in api.AgentRegister) (*api.AgentRegistered, error) {
	if err := jobspec.Check(in.Contract); err != nil {
		g.s.log.Warn("agent refused: job contract", "agent", a.ID, "name", a.Name, "version", in.Version, "contract", in.Contract)
		return nil, err
	}
	labels, err := normLabels(in.Labels)
	if err != nil {
		return nil, err
	}
	if len(labels) == 0 {
		labels = a.Labels
	}
	// The token's allowed labels bound what the agent claims: an agent
	// cannot reach jobs meant for other machines by naming their labels.
	labels, refused := allowLabels(labels, a.AllowedLabels)
	if len(refused) > 0 {
		g.s.log.Warn("agent reported labels its token does not allow; they are ignored", "agent", a.ID, "name", a.Name, "refused", refused)
	}
	if in.Capacity < 0 || in.Capacity > 1024 {
		return nil, errs.E("register", errs.Invalid, "capacity %d: want 0 to 1024", in.Capacity)
	}
	if err := g.s.store.AgentSeen(ctx, a.ID, labels, in.Capacity, clip(in.Version, 100), clip(in.Hostname, 255)); err != nil {
		return nil, err
	}
	g.s.log.Info("agent registered", "agent", a.ID, "name", a.Name, "labels", labels, "capacity", in.Capacity,
		"version", in.Version, "host", in.Hostname)
	return &api.AgentRegistered{AgentID: a.ID, Name: a.Name, OrgID: a.OrgID, Labels: nonNil(labels), RefusedLabels: refused, Draining: a.Draining,
		LeaseTTLMS: ms(g.s.cfg.LeaseTTL), HeartbeatMS: ms(g.heartbeatEvery()), PollTimeoutMS: ms(g.s.cfg.AgentPoll),
		Contract: jobspec.Version}, nil
}

// seen refreshes the agent's last-seen time, at most every seenEvery.
func (g *agentService) seen(ctx context.Context, a *store.Agent) {
	if a.Job != 0 || time.Since(a.LastSeen) < seenEvery { // an in-pod worker is no stored agent
		return
	}
	if err := g.s.store.AgentSeen(ctx, a.ID, a.Labels, a.Capacity, a.Version, a.Hostname); err != nil && ctx.Err() == nil {
		g.s.log.Warn("recording an agent's visit", "agent", a.ID, "err", err)
	}
}

// Lease waits for a job the agent may run: of its organisation, with all
// runs-on labels among the agent's. It is woken by new work on this
// replica and polls for work made on others.
func (g *agentService) Lease(ctx context.Context, a *store.Agent) (*api.AgentAssignment, bool, error) {
	g.seen(ctx, a)
	deadline := time.NewTimer(g.s.cfg.AgentPoll)
	defer deadline.Stop()
	recheck := max(g.s.cfg.Poll, time.Second) // work made on other replicas
	for {
		cur, err := g.s.store.GetAgent(ctx, a.OrgID, a.ID) // drained or relabelled meanwhile?
		if err != nil {
			return nil, false, err
		}
		if cur.Revoked {
			return nil, false, errs.E("lease", errs.Unauthorized, "the agent token was revoked")
		}
		if cur.Draining {
			return nil, true, nil
		}
		woken := g.s.wake.work.Wait(0)
		l, err := g.s.store.Lease(ctx, store.LeaseRequest{Owner: a.Owner(), OrgID: a.OrgID, Labels: nonNil(cur.Labels),
			TTL: g.s.cfg.LeaseTTL, RepoLimit: g.s.cfg.RepoLimit})
		if err != nil {
			return nil, false, err
		}
		if l != nil {
			asg, err := g.assign(ctx, cur, l)
			return asg, false, err
		}
		select {
		case <-ctx.Done():
			return nil, false, errs.Wrap("lease", errs.Canceled, ctx.Err())
		case <-g.s.wake.closing:
			return nil, false, nil
		case <-deadline.C:
			return nil, false, nil
		case <-woken:
		case <-time.After(recheck):
		}
	}
}

// assign turns a lease into the agent's assignment. A job the agent will
// not get (it went away, or the assignment cannot be made) is handed back
// at once rather than left to lease expiry.
func (g *agentService) assign(ctx context.Context, a *store.Agent, l *store.Lease) (*api.AgentAssignment, error) {
	job, run := l.Job, l.Run
	giveBack := func(reason string) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := g.s.store.Release(rctx, job.ID, job.LeaseToken, reason); err != nil {
			g.s.log.Warn("handing back a job", "job", job.ID, "err", err)
		}
		g.s.wakeDispatch()
	}
	asg, err := g.s.assignment(ctx, l)
	if err != nil {
		giveBack("the assignment could not be made: " + err.Error())
		return nil, err
	}
	if ctx.Err() != nil {
		giveBack("agent " + a.Name + " went away before it got the job")
		return nil, errs.Wrap("lease", errs.Canceled, ctx.Err())
	}
	asg.CacheToken = g.s.agentCacheToken(asg.OrgID, asg.Run)
	g.s.log.Info("job leased to an agent", "run", run.ID, "job", job.Key, "attempt", job.Attempt, "agent", a.Name)
	return asg, nil
}

// fence returns the job when it is leased to a under token right now, and
// a Conflict that says why otherwise. Tokens are unique across leases, so
// a match proves the lease is a's until the store says otherwise.
func (g *agentService) fence(ctx context.Context, a *store.Agent, jobID, token int64) (*store.Job, error) {
	j, err := g.s.store.GetJob(ctx, a.OrgID, jobID)
	if err != nil {
		return nil, err
	}
	if j.LeaseToken != token || j.Status != store.StatusRunning {
		why := "it was queued again"
		switch {
		case store.Terminal(j.Status):
			why = "it already ended (" + j.Status + ")"
		case j.Status == store.StatusRunning:
			why = "it was leased again"
		}
		return nil, errs.E("agent", errs.Conflict, "lease %d of job %d is stale: %s; drop the job", token, jobID, why)
	}
	switch {
	case a.Job != 0 && a.Job != jobID: // the api refuses it first
		return nil, errs.E("agent", errs.Forbidden, "this credential is job %d's only", a.Job)
	case a.Job == 0 && j.LeaseOwner != a.Owner():
		return nil, errs.E("agent", errs.Conflict, "job %d is not leased to this agent", jobID)
	}
	return j, nil
}

func (g *agentService) Heartbeat(ctx context.Context, a *store.Agent, jobID, token int64) (bool, error) {
	if _, err := g.fence(ctx, a, jobID, token); err != nil {
		return false, err
	}
	g.seen(ctx, a)
	return g.s.store.Heartbeat(ctx, jobID, token, g.s.cfg.LeaseTTL)
}

func (g *agentService) AppendLog(ctx context.Context, a *store.Agent, jobID, token int64, data []byte, retryPrev int64) (int64, error) {
	if _, err := g.fence(ctx, a, jobID, token); err != nil {
		return 0, err
	}
	if retryPrev < 0 {
		return hubLogs{g.s.store, g.s.hub}.AppendLog(ctx, jobID, data)
	}
	seq, dup, err := g.s.store.RetryLog(ctx, jobID, retryPrev, data)
	if err == nil && !dup {
		g.s.hub.Notify(jobID)
	}
	return seq, err
}

// Source checks the run's commit out of the server's mirror into a
// temporary directory and streams it: agents need no git credentials.
func (g *agentService) Source(ctx context.Context, a *store.Agent, jobID, token int64, w io.Writer) error {
	j, err := g.fence(ctx, a, jobID, token)
	if err != nil {
		return err
	}
	run, err := g.s.store.GetRun(ctx, a.OrgID, j.RunID)
	if err != nil {
		return err
	}
	dir, release, err := g.s.source(ctx, run)
	if err != nil {
		return err
	}
	defer release()
	return tarball.Write(w, dir)
}

func (g *agentService) Complete(ctx context.Context, a *store.Agent, jobID, token int64, c api.AgentCompletion) error {
	j, err := g.fence(ctx, a, jobID, token)
	if err != nil {
		return err
	}
	comp := store.CompletionOf(c)
	comp.Error, comp.Build = clip(c.Error, 4096), agentBuild(c.BuildMS, j.Started, time.Now())
	err = g.s.store.Complete(ctx, jobID, token, comp)
	if err != nil {
		return err
	}
	g.s.revokeJobTokens(ctx, jobID)
	if !j.Started.IsZero() {
		g.s.metrics.jobDuration.WithLabelValues(c.Status).Observe(time.Since(j.Started).Seconds())
	}
	g.s.log.Info("job finished on an agent", "run", j.RunID, "job", j.Key, "status", c.Status, "agent", a.Name)
	g.s.hub.Notify(jobID)
	g.s.wakeDispatch()
	g.s.wakeStatuses()
	return nil
}

func (g *agentService) Release(ctx context.Context, a *store.Agent, jobID, token int64, reason string) error {
	if _, err := g.fence(ctx, a, jobID, token); err != nil {
		return err
	}
	why := "handed back by agent " + a.Name
	if reason = clip(strings.TrimSpace(reason), 200); reason != "" {
		why += ": " + reason
	}
	if err := g.s.store.Release(ctx, jobID, token, why); err != nil {
		return err
	}
	g.s.revokeJobTokens(ctx, jobID)
	g.s.log.Info("job handed back by an agent", "job", jobID, "agent", a.Name, "reason", reason)
	g.s.hub.Notify(jobID)
	g.s.wakeDispatch()
	return nil
}

// allowLabels splits labels into those allowed (all when allowed is
// empty) and those refused; labels and allowed are normalised.
func allowLabels(labels, allowed []string) (ok, refused []string) {
	if len(allowed) == 0 {
		return labels, nil
	}
	for _, l := range labels {
		if containsLabel(allowed, l) {
			ok = append(ok, l)
		} else {
			refused = append(refused, l)
		}
	}
	return ok, refused
}

// normLabels lower-cases, trims and de-duplicates labels; a label is one
// word of at most 100 characters.
func normLabels(in []string) ([]string, error) {
	if len(in) > 64 {
		return nil, errs.E("labels", errs.Invalid, "%d labels: at most 64", len(in))
	}
	var out []string
	for _, l := range in {
		l = strings.ToLower(strings.TrimSpace(l))
		if l == "" || containsLabel(out, l) {
			continue
		}
		if len(l) > 100 || strings.ContainsAny(l, " \t\r\n,") {
			return nil, errs.E("labels", errs.Invalid, "label %q: one word of at most 100 characters", l)
		}
		out = append(out, l)
	}
	return out, nil
}

func containsLabel(set []string, l string) bool {
	for _, x := range set {
		if strings.EqualFold(x, l) {
			return true
		}
	}
	return false
}

// labelsMatch reports whether a worker with labels can run a job with
// runs-on want, as the store's Lease decides: every label of the job is
// among the worker's; a label with an expression is known only at run
// time and matches.
func labelsMatch(want, have []string) bool {
	for _, l := range want {
		if !strings.Contains(l, "${{") && !containsLabel(have, l) {
			return false
		}
	}
	return true
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
