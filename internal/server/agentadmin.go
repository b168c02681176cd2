package server

import (
	"context"
	"crypto/sha256"
	"strings"
	"time"
	"unicode"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// CreateAgent stores an agent of the organisation with a new token; only
// the token's SHA-256 is kept.
func (g *agentService) CreateAgent(ctx context.Context, orgID int64, in api.AgentInput) (*api.AgentCreated, error) {
	name := strings.TrimSpace(in.Name)
	if name == "" || len(name) > 100 || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return nil, errs.E("agent", errs.Invalid, "name %q: want 1 to 100 printable characters", in.Name)
	}
	labels, err := normLabels(in.Labels)
	if err != nil {
		return nil, err
	}
	allowed, err := normLabels(in.AllowedLabels)
	if err != nil {
		return nil, err
	}
	if _, refused := allowLabels(labels, allowed); len(refused) > 0 {
		return nil, errs.E("agent", errs.Invalid, "labels %s are not among the allowed labels", strings.Join(refused, ", "))
	}
	tok := "cva_" + randomHex(24)
	sum := sha256.Sum256([]byte(tok))
	a := &store.Agent{OrgID: orgID, Name: name, Hash: sum[:], Labels: labels, AllowedLabels: allowed}
	if err := g.s.store.CreateAgent(ctx, a); err != nil {
		return nil, err
	}
	g.s.log.Info("agent created", "agent", a.ID, "org", orgID, "name", name)
	return &api.AgentCreated{Agent: g.view(a, nil), Token: tok}, nil
}

func (g *agentService) ListAgents(ctx context.Context, orgID int64) ([]api.Agent, error) {
	agents, err := g.s.store.ListAgents(ctx, orgID)
	if err != nil {
		return nil, err
	}
	out := []api.Agent{}
	for _, a := range agents {
		if a.Revoked {
			continue
		}
		jobs, err := g.s.store.RunningJobs(ctx, a.Owner())
		if err != nil {
			return nil, err
		}
		out = append(out, g.view(a, jobs))
	}
	return out, nil
}

func (g *agentService) SetDraining(ctx context.Context, orgID, id int64, draining bool) (*api.Agent, error) {
	if err := g.s.store.SetDraining(ctx, orgID, id, draining); err != nil {
		return nil, err
	}
	g.s.wake.work.Notify(0) // waiting lease requests of the agent answer "draining" now
	a, err := g.s.store.GetAgent(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	jobs, err := g.s.store.RunningJobs(ctx, a.Owner())
	if err != nil {
		return nil, err
	}
	v := g.view(a, jobs)
	return &v, nil
}

func (g *agentService) RevokeAgent(ctx context.Context, orgID, id int64) error {
	if err := g.s.store.RevokeAgent(ctx, orgID, id); err != nil {
		return err
	}
	g.s.wake.work.Notify(0)
	g.s.log.Info("agent revoked", "agent", id, "org", orgID)
	return nil
}

// view is the admin's view of an agent.
func (g *agentService) view(a *store.Agent, jobs []*store.Job) api.Agent {
	v := api.Agent{ID: a.ID, Name: a.Name, Labels: nonNil(a.Labels), AllowedLabels: a.AllowedLabels, Draining: a.Draining, Capacity: a.Capacity,
		Version: a.Version, Hostname: a.Hostname, Jobs: []api.AgentJob{}, Created: a.Created.UTC()}
	if !a.LastSeen.IsZero() {
		t := a.LastSeen.UTC()
		v.LastSeen = &t
	}
	for _, j := range jobs {
		aj := api.AgentJob{ID: j.ID, RunID: j.RunID, Key: j.Key, Name: j.Name, Attempt: j.Attempt}
		if !j.Started.IsZero() {
			t := j.Started.UTC()
			aj.Started = &t
		}
		v.Jobs = append(v.Jobs, aj)
	}
	switch {
	case !g.online(a):
		v.State = api.AgentOffline
	case a.Draining:
		v.State = api.AgentDraining
	case len(jobs) > 0:
		v.State = api.AgentBusy
	default:
		v.State = api.AgentIdle
	}
	return v
}

func (g *agentService) online(a *store.Agent) bool {
	return !a.LastSeen.IsZero() && time.Since(a.LastSeen) <= g.onlineWindow()
}

// WaitingReasons names what queued jobs wait for when no online agent
// that is not draining, and no worker of this replica, has their labels.
// (Other replicas' workers are assumed to run what this one runs.)
func (g *agentService) WaitingReasons(ctx context.Context, orgID int64, jobs []*store.Job) (map[int64]string, error) {
	var queued []*store.Job
	for _, j := range jobs {
		if j.Status == store.StatusQueued {
			queued = append(queued, j)
		}
	}
	if len(queued) == 0 {
		return nil, nil
	}
	agents, err := g.s.store.ListAgents(ctx, orgID)
	if err != nil {
		return nil, err
	}
	local := g.s.localLabels()
	out := map[int64]string{}
	for _, j := range queued {
		if local != nil && labelsMatch(j.Labels, local) {
			continue
		}
		runnable := false
		var unavailable []string
		for _, a := range agents {
			if a.Revoked || !labelsMatch(j.Labels, a.Labels) {
				continue
			}
			switch {
			case !g.online(a):
				unavailable = append(unavailable, a.Name+" is offline")
			case a.Draining:
				unavailable = append(unavailable, a.Name+" is draining")
			default:
				runnable = true
			}
		}
		if runnable {
			continue
		}
		reason := "waiting: no agent with labels " + strings.Join(j.Labels, ",")
		if len(j.Labels) == 0 {
			reason = "waiting: no agent or server worker runs jobs"
		}
		if len(unavailable) > 0 {
			reason += " online (" + strings.Join(unavailable, ", ") + ")"
		}
		out[j.ID] = reason
	}
	return out, nil
}
