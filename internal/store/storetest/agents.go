package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

var agentTests = []test{
	{"Agents", testAgents},
	{"AgentRevoke", testAgentRevoke},
	{"AgentTenantIsolation", testAgentTenantIsolation},
	{"AgentSeen", testAgentSeen},
	{"AgentDraining", testAgentDraining},
	{"AgentRunningJobs", testAgentRunningJobs},
}

func (e *env) newAgent(orgID int64, name, hash string, labels ...string) *store.Agent {
	e.t.Helper()
	a := &store.Agent{OrgID: orgID, Name: name, Hash: []byte(hash), Labels: labels}
	e.must(e.s.CreateAgent(e.ctx, a))
	return a
}

func (e *env) getAgent(id int64) *store.Agent {
	e.t.Helper()
	a, err := e.s.GetAgent(e.ctx, e.org.ID, id)
	e.must(err)
	return a
}

func testAgents(t *testing.T, e *env) {
	other := e.newOrg("other")
	a := &store.Agent{OrgID: e.org.ID, Name: "mac", Hash: []byte("agent-1"), Labels: []string{"macOS", "arm64"}, Capacity: 2,
		AllowedLabels: []string{"macos", "arm64", "self-hosted"}}
	e.must(e.s.CreateAgent(e.ctx, a))
	if a.ID == 0 || !near(a.Created, time.Now(), time.Minute) || a.Owner() == "" {
		t.Fatalf("CreateAgent did not set ID and Created: %+v", a)
	}
	wantKind(t, e.s.CreateAgent(e.ctx, &store.Agent{OrgID: e.org.ID, Name: "mac", Hash: []byte("agent-2")}),
		errs.Conflict, "agent with a taken name")
	wantKind(t, e.s.CreateAgent(e.ctx, &store.Agent{OrgID: other.ID, Name: "x", Hash: []byte("agent-1")}),
		errs.Conflict, "agent with a taken hash")
	wantKind(t, e.s.CreateAgent(e.ctx, &store.Agent{OrgID: e.org.ID, Name: "y"}), errs.Invalid, "agent without a hash")
	wantKind(t, e.s.CreateAgent(e.ctx, &store.Agent{OrgID: e.org.ID, Hash: []byte("h")}), errs.Invalid, "agent without a name")
	b := e.newAgent(e.org.ID, "gpu-box", "agent-3")
	e.newAgent(other.ID, "mac", "agent-4") // names are per organisation

	got, err := e.s.AgentByHash(e.ctx, []byte("agent-1"))
	e.must(err)
	if got.ID != a.ID || got.OrgID != e.org.ID || got.Name != "mac" || !bytes.Equal(got.Hash, a.Hash) ||
		!slices.Equal(got.Labels, a.Labels) || !slices.Equal(got.AllowedLabels, a.AllowedLabels) || got.Capacity != 2 || got.Draining || got.Revoked ||
		!got.Created.Equal(a.Created) || !got.LastSeen.IsZero() {
		t.Errorf("AgentByHash = %+v, want %+v", got, a)
	}
	if g := e.getAgent(b.ID); g.AllowedLabels != nil {
		t.Errorf("an agent made without allowed labels has %q", g.AllowedLabels)
	}
	if g := e.getAgent(a.ID); g.Name != "mac" || g.OrgID != e.org.ID {
		t.Errorf("GetAgent = %+v", g)
	}
	_, err = e.s.AgentByHash(e.ctx, []byte("nope"))
	wantKind(t, err, errs.NotFound, "AgentByHash(unknown)")
	_, err = e.s.GetAgent(e.ctx, e.org.ID, b.ID+1000)
	wantKind(t, err, errs.NotFound, "GetAgent(unknown)")

	list, err := e.s.ListAgents(e.ctx, e.org.ID)
	e.must(err)
	if len(list) != 2 || list[0].ID != b.ID || list[1].ID != a.ID {
		t.Errorf("ListAgents = %+v, want gpu-box and mac", list)
	}
}

// testAgentRevoke: a revoked agent's token finds nothing; the agent stays
// visible to its organisation and its name may be reused.
func testAgentRevoke(t *testing.T, e *env) {
	a := e.newAgent(e.org.ID, "mac", "agent-1")
	e.must(e.s.RevokeAgent(e.ctx, e.org.ID, a.ID))
	_, err := e.s.AgentByHash(e.ctx, []byte("agent-1"))
	wantKind(t, err, errs.NotFound, "AgentByHash of a revoked agent")
	if g := e.getAgent(a.ID); !g.Revoked {
		t.Errorf("GetAgent after revoke = %+v, want Revoked", g)
	}
	list, err := e.s.ListAgents(e.ctx, e.org.ID)
	e.must(err)
	if len(list) != 1 || !list[0].Revoked {
		t.Errorf("ListAgents after revoke = %+v", list)
	}
	wantKind(t, e.s.AgentSeen(e.ctx, a.ID, nil, 1, "v", "h"), errs.NotFound, "AgentSeen of a revoked agent")
	e.must(e.s.RevokeAgent(e.ctx, e.org.ID, a.ID)) // again: nothing changes
	wantKind(t, e.s.RevokeAgent(e.ctx, e.org.ID, a.ID+1000), errs.NotFound, "RevokeAgent(unknown)")

	again := e.newAgent(e.org.ID, "mac", "agent-2")
	if again.ID == a.ID {
		t.Fatal("the new agent reuses the revoked one's id")
	}
	wantKind(t, e.s.CreateAgent(e.ctx, &store.Agent{OrgID: e.org.ID, Name: "other", Hash: []byte("agent-1")}),
		errs.Conflict, "agent with a revoked agent's hash")
	if got, err := e.s.AgentByHash(e.ctx, []byte("agent-2")); err != nil || got.ID != again.ID {
		t.Errorf("AgentByHash of the new agent = %+v, %v", got, err)
	}
}

// testAgentTenantIsolation: another organisation neither sees nor changes
// an agent.
func testAgentTenantIsolation(t *testing.T, e *env) {
	other := e.newOrg("other")
	a := e.newAgent(e.org.ID, "mac", "agent-1")
	_, err := e.s.GetAgent(e.ctx, other.ID, a.ID)
	wantKind(t, err, errs.NotFound, "GetAgent from another organisation")
	wantKind(t, e.s.SetDraining(e.ctx, other.ID, a.ID, true), errs.NotFound, "SetDraining from another organisation")
	wantKind(t, e.s.RevokeAgent(e.ctx, other.ID, a.ID), errs.NotFound, "RevokeAgent from another organisation")
	list, err := e.s.ListAgents(e.ctx, other.ID)
	e.must(err)
	if len(list) != 0 {
		t.Errorf("another organisation lists %d agents, want none", len(list))
	}
	if g := e.getAgent(a.ID); g.Draining || g.Revoked {
		t.Errorf("agent changed by another organisation: %+v", g)
	}
}

func testAgentSeen(t *testing.T, e *env) {
	a := e.newAgent(e.org.ID, "box", "agent-1", "linux")
	e.must(e.s.AgentSeen(e.ctx, a.ID, []string{"linux", "gpu"}, 4, "1.2.3", "box.local"))
	g := e.getAgent(a.ID)
	if !slices.Equal(g.Labels, []string{"linux", "gpu"}) || g.Capacity != 4 || g.Version != "1.2.3" ||
		g.Hostname != "box.local" || !near(g.LastSeen, time.Now(), time.Minute) {
		t.Errorf("agent after AgentSeen = %+v", g)
	}
	e.must(e.s.AgentSeen(e.ctx, a.ID, nil, 1, "1.2.4", "box.local"))
	if g := e.getAgent(a.ID); len(g.Labels) != 0 || g.Capacity != 1 || g.Version != "1.2.4" {
		t.Errorf("agent after a second AgentSeen = %+v", g)
	}
	wantKind(t, e.s.AgentSeen(e.ctx, a.ID+1000, nil, 1, "", ""), errs.NotFound, "AgentSeen(unknown)")
}

func testAgentDraining(t *testing.T, e *env) {
	a := e.newAgent(e.org.ID, "box", "agent-1")
	e.must(e.s.SetDraining(e.ctx, e.org.ID, a.ID, true))
	if got, err := e.s.AgentByHash(e.ctx, []byte("agent-1")); err != nil || !got.Draining {
		t.Errorf("AgentByHash of a draining agent = %+v, %v", got, err)
	}
	e.must(e.s.SetDraining(e.ctx, e.org.ID, a.ID, false))
	if g := e.getAgent(a.ID); g.Draining {
		t.Errorf("agent still draining after SetDraining(false): %+v", g)
	}
	wantKind(t, e.s.SetDraining(e.ctx, e.org.ID, a.ID+1000, true), errs.NotFound, "SetDraining(unknown)")
}

func testAgentRunningJobs(t *testing.T, e *env) {
	a := e.newAgent(e.org.ID, "box", "agent-1")
	b := e.newAgent(e.org.ID, "other-box", "agent-2")
	e.newRun(e.repo, nil, job("a1"), job("b1"), job("a2"), job("a3"))
	lease := func(owner string) *store.Lease { return e.lease(store.LeaseRequest{Owner: owner}) }
	a1, _, a2 := lease(a.Owner()), lease(b.Owner()), lease(a.Owner())
	running := func(owner string) []string {
		js, err := e.s.RunningJobs(e.ctx, owner)
		e.must(err)
		var keys []string
		for _, j := range js {
			if j.Status != store.StatusRunning || j.LeaseOwner != owner {
				t.Errorf("RunningJobs(%s) lists %+v", owner, j)
			}
			keys = append(keys, j.Key)
		}
		return keys
	}
	if got := running(a.Owner()); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Errorf("RunningJobs = %v, want a1 a2", got)
	}
	e.complete(a1, store.StatusSuccess)
	e.must(e.s.Release(e.ctx, a2.Job.ID, a2.Job.LeaseToken, "shutting down"))
	if got := running(a.Owner()); len(got) != 0 {
		t.Errorf("RunningJobs after complete and release = %v, want none", got)
	}
	if got := running(b.Owner()); !slices.Equal(got, []string{"b1"}) {
		t.Errorf("RunningJobs of the other agent = %v, want b1", got)
	}
	if got := running("nobody"); len(got) != 0 {
		t.Errorf("RunningJobs(nobody) = %v", got)
	}
}
