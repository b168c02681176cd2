package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/pool"
	"github.com/conveyor-ci/conveyor/internal/store"
)

const twoJobsFlow = `name: Two
on: push
jobs:
  a:
    runs-on: self-hosted
    steps:
      - run: echo a
  b:
    runs-on: self-hosted
    steps:
      - run: echo b
`

// A job worker credential (the in-pod worker's) reaches its own job's
// agent-protocol calls under its lease, and nothing else: not another
// job's, not lease or register, not the REST API; it dies with its job.
// The job's GITHUB_TOKEN is no worker credential.
func TestJobWorkerCredential(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: Config{Workers: -1, LeaseTTL: 30 * time.Second, AgentPoll: 200 * time.Millisecond},
		files: map[string]string{".github/workflows/two.yml": twoJobsFlow}})
	if code, body := h.hook("push", h.push("main"), "d-jw"); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	ctx := context.Background()
	lease := func() *store.Lease {
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			l, err := h.st.Lease(ctx, store.LeaseRequest{Owner: "test", Labels: []string{"self-hosted"}, TTL: 30 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if l != nil {
				return l
			}
		}
		t.Fatal("no job to lease")
		return nil
	}
	mine, other := lease(), lease()
	cred, err := h.srv.newJobWorkerToken(ctx, mine.Job)
	if err != nil || !strings.HasPrefix(cred, api.JobWorkerTokenPrefix) {
		t.Fatalf("credential %q: %v", cred, err)
	}
	leaseHdr := func(l *store.Lease) []string { return []string{api.LeaseHeader, itoa(l.Job.LeaseToken)} }
	jobPath := func(l *store.Lease, verb string) string { return "/api/agent/jobs/" + itoa(l.Job.ID) + "/" + verb }

	code, b, _ := h.agentCall("GET", jobPath(mine, "assignment"), cred, nil, leaseHdr(mine)...)
	var asg api.AgentAssignment
	if code != http.StatusOK || json.Unmarshal(b, &asg) != nil || asg.JobID != mine.Job.ID || asg.Job == nil || asg.Job.ID != mine.Job.Key {
		t.Fatalf("own assignment: %d %s", code, b)
	}
	ghToken := asg.Secrets["GITHUB_TOKEN"]
	if code, b, _ := h.agentCall("POST", jobPath(mine, "heartbeat"), cred, nil, leaseHdr(mine)...); code != http.StatusOK {
		t.Fatalf("own heartbeat: %d %s", code, b)
	}
	refused := []struct {
		what, method, path, token string
		hdr                       []string
		want                      int
	}{
		{"another job's heartbeat", "POST", jobPath(other, "heartbeat"), cred, leaseHdr(other), http.StatusForbidden},
		{"another job's assignment", "GET", jobPath(other, "assignment"), cred, leaseHdr(other), http.StatusForbidden},
		{"another job's source", "GET", jobPath(other, "source"), cred, leaseHdr(other), http.StatusForbidden},
		{"a stale lease token", "POST", jobPath(mine, "heartbeat"), cred, []string{api.LeaseHeader, "999999"}, http.StatusConflict},
		{"lease", "POST", "/api/agent/lease", cred, nil, http.StatusForbidden},
		{"register", "POST", "/api/agent/register", cred, nil, http.StatusForbidden},
		{"the run", "GET", "/api/runs/" + itoa(mine.Run.ID), cred, nil, http.StatusForbidden},
		{"the repositories", "GET", "/api/repos", cred, nil, http.StatusForbidden},
		{"the GITHUB_TOKEN as a worker", "POST", jobPath(mine, "heartbeat"), ghToken, leaseHdr(mine), http.StatusUnauthorized},
		{"the GITHUB_TOKEN's secret as a credential", "POST", jobPath(mine, "heartbeat"),
			api.JobWorkerTokenPrefix + strings.TrimPrefix(ghToken, api.JobTokenPrefix), leaseHdr(mine), http.StatusUnauthorized},
	}
	_, agentTok := h.newAgent("a1", "self-hosted")
	refused = append(refused, struct {
		what, method, path, token string
		hdr                       []string
		want                      int
	}{"an agent's call on a job it does not hold", "GET", jobPath(mine, "assignment"), agentTok, leaseHdr(mine), http.StatusConflict})
	for _, c := range refused {
		if code, b, _ := h.agentCall(c.method, c.path, c.token, map[string]any{}, c.hdr...); code != c.want {
			t.Errorf("%s: %d %s, want %d", c.what, code, b, c.want)
		}
	}
	comp := api.AgentCompletion{Status: store.StatusSuccess}
	if code, b, _ := h.agentCall("POST", jobPath(mine, "complete"), cred, comp, leaseHdr(mine)...); code != http.StatusNoContent {
		t.Fatalf("own completion: %d %s", code, b)
	}
	if code, b, _ := h.agentCall("POST", jobPath(mine, "heartbeat"), cred, nil, leaseHdr(mine)...); code != http.StatusUnauthorized {
		t.Errorf("the credential after its job ended: %d %s, want 401", code, b)
	}
}

// A pool that asks for the worker layout needs the URL pods reach the
// server at: the server refuses to start without it.
func TestPoolWorkerNeedsServerURL(t *testing.T) {
	hb := host.New(host.Options{})
	sched, err := pool.New([]*pool.Pool{{Spec: pool.Spec{Name: "k", Kind: pool.Kubernetes, Capacity: 1, Worker: "pod"},
		Backends: pool.Backends{Main: hb, Host: hb}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkPodWorkers(PodWorkers{}, sched); err == nil || !strings.Contains(err.Error(), "pool k has worker: pod") {
		t.Errorf("no server URL: %v", err)
	}
	if err := checkPodWorkers(PodWorkers{ServerURL: "http://10.0.0.5:8080", PoolsOnly: true}, sched); err != nil {
		t.Errorf("with a server URL: %v", err)
	}
}
