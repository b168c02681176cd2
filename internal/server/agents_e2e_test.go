package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/agent"
	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/jobrun"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// runningAgent is an agent.Agent running in this process.
type runningAgent struct {
	id    int64
	token string
	a     *agent.Agent
	stop  context.CancelFunc // graceful, as SIGTERM
	done  chan struct{}      // closed when Run returned err
	err   error
	// dir is the agent's data folder.
	dir string
}

func (h *harness) startAgent(name string, capacity int, shutdown time.Duration, labels ...string) *runningAgent {
	h.t.Helper()
	return h.startAgentAt(h.url, name, capacity, shutdown, labels...)
}

// startAgentAt starts an agent that reaches the server at url (a proxy).
func (h *harness) startAgentAt(url, name string, capacity int, shutdown time.Duration, labels ...string) *runningAgent {
	h.t.Helper()
	b := host.New(host.Options{})
	return h.startAgentWith(url, name, capacity, shutdown, jobrun.Env{Backend: b, Host: b, Actions: h.actions}, labels...)
}

// startAgentWith starts an agent running jobs with env.
func (h *harness) startAgentWith(url, name string, capacity int, shutdown time.Duration, env jobrun.Env, labels ...string) *runningAgent {
	h.t.Helper()
	id, tok := h.newAgent(name)
	dir := h.t.TempDir()
	logw := io.Discard
	if testing.Verbose() {
		logw = os.Stderr
	}
	a, err := agent.New(agent.Config{Server: url, Token: tok, Labels: labels, Capacity: capacity,
		Env: env, DataDir: dir, ShutdownTimeout: shutdown,
		Version: "test", Hostname: name, Log: slog.New(slog.NewTextHandler(logw, nil)).With("agent", name)})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ra := &runningAgent{id: id, token: tok, a: a, stop: cancel, done: make(chan struct{}), dir: dir}
	go func() { ra.err = a.Run(ctx); close(ra.done) }()
	h.t.Cleanup(func() {
		cancel()
		select {
		case <-ra.done:
		case <-time.After(30 * time.Second):
			h.t.Errorf("agent %s did not stop", name)
		}
	})
	return ra
}

func (ra *runningAgent) owner() string { return (&store.Agent{ID: ra.id}).Owner() }

const labelsFlow = `name: Labels
on: push
jobs:
  on-a:
    runs-on: [self-hosted, only-a]
    steps:
      - run: echo "job on-a ran"
  on-b:
    runs-on: [self-hosted, only-b]
    steps:
      - run: echo "job on-b ran"
  gpu:
    runs-on: [self-hosted, gpu]
    steps:
      - run: echo never
`

const longFlow = `name: Long
on: workflow_dispatch
jobs:
  long:
    runs-on: [self-hosted, linux]
    steps:
      - run: |
          echo "attempt started"
          sleep 3
          echo "attempt finished"
`

// TestAgentsEndToEnd: a server without workers of its own and two agents
// with different labels. Jobs go only to agents with their labels; a job
// no agent can take waits with a reason; an agent killed mid-job loses its
// lease, the job is re-queued to the other agent and completes once, and
// the dead agent's late report is refused.
func TestAgentsEndToEnd(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: Config{Workers: -1, LeaseTTL: 2 * time.Second, AgentPoll: 2 * time.Second},
		files: map[string]string{".github/workflows/labels.yml": labelsFlow, ".github/workflows/long.yml": longFlow}})
	a := h.startAgent("agent-a", 2, time.Minute, "self-hosted", "linux", "only-a")
	b := h.startAgent("agent-b", 2, time.Minute, "self-hosted", "linux", "only-b")

	h.hook("push", h.push("main"), "d-labels")
	var run *store.Run
	waitFor(t, 30*time.Second, "jobs on-a and on-b done", func() bool {
		runs, _ := h.st.ListRuns(context.Background(), 1, store.RunFilter{})
		if len(runs) == 0 {
			return false
		}
		run = runs[0]
		j := h.jobs(run.ID)
		return j["on-a"].Status == store.StatusSuccess && j["on-b"].Status == store.StatusSuccess
	})
	jobs := h.jobs(run.ID)
	if jobs["on-a"].LeaseOwner != a.owner() || jobs["on-b"].LeaseOwner != b.owner() {
		t.Errorf("on-a ran on %s, on-b on %s; want %s and %s", jobs["on-a"].LeaseOwner, jobs["on-b"].LeaseOwner, a.owner(), b.owner())
	}
	if l := h.jobLog(run.ID, "on-a"); !strings.Contains(l, "job on-a ran") {
		t.Errorf("on-a log:\n%s", l)
	}
	var d api.RunDetail
	h.api("GET", "/api/runs/"+itoa(run.ID), nil, 200, &d)
	for _, j := range d.Jobs {
		if j.Key == "gpu" && (j.Status != store.StatusQueued || j.WaitingReason != "waiting: no agent with labels self-hosted,gpu") {
			t.Errorf("gpu job: %s %q", j.Status, j.WaitingReason)
		}
		if j.Key != "gpu" && j.WaitingReason != "" {
			t.Errorf("job %s has a waiting reason: %q", j.Key, j.WaitingReason)
		}
	}
	var list api.AgentList
	h.api("GET", "/api/agents", nil, 200, &list)
	if len(list.Agents) != 2 || list.Agents[0].State != api.AgentIdle || list.Agents[0].Hostname != "agent-a" {
		t.Errorf("agents: %+v", list.Agents)
	}
	h.api("POST", "/api/runs/"+itoa(run.ID)+"/cancel", nil, 200, nil)

	// kill -9 one agent mid-job.
	h.api("POST", "/api/repos/"+itoa(h.repo.ID)+"/dispatch", api.DispatchInput{Workflow: "long.yml"}, http.StatusAccepted, nil)
	var long *store.Job
	waitFor(t, 30*time.Second, "the long job to start", func() bool {
		runs, _ := h.st.ListRuns(context.Background(), 1, store.RunFilter{})
		if len(runs) < 2 {
			return false
		}
		run = runs[0]
		long = h.jobs(run.ID)["long"]
		return long.Status == store.StatusRunning && strings.Contains(h.jobLog(run.ID, "long"), "attempt started")
	})
	victim, survivor := a, b
	if long.LeaseOwner == b.owner() {
		victim, survivor = b, a
	}
	h.api("GET", "/api/agents", nil, 200, &list)
	for _, ag := range list.Agents {
		if ag.ID == victim.id && (ag.State != api.AgentBusy || len(ag.Jobs) != 1 || ag.Jobs[0].ID != long.ID) {
			t.Errorf("the busy agent: %+v", ag)
		}
	}
	lost := time.Now()
	victim.a.Abort()
	waitFor(t, 60*time.Second, "the job to finish on the other agent", func() bool {
		return store.Terminal(h.jobs(run.ID)["long"].Status)
	})
	t.Logf("re-queued and finished %s after the kill", time.Since(lost).Round(time.Millisecond))
	done := h.jobs(run.ID)["long"]
	if done.Status != store.StatusSuccess || done.LeaseOwner != survivor.owner() || done.Attempt != 2 {
		t.Errorf("long job: status %s owner %s attempt %d", done.Status, done.LeaseOwner, done.Attempt)
	}
	if l := h.jobLog(run.ID, "long"); strings.Count(l, "attempt finished") != 1 {
		t.Errorf("the job did not finish exactly once:\n%s", l)
	}
	h.api("GET", "/api/runs/"+itoa(run.ID), nil, 200, &d)
	if in := d.Jobs[0].Interrupted; len(in) != 1 || !strings.HasPrefix(in[0].Reason, "agent lost") || in[0].Worker != victim.owner() {
		t.Errorf("interrupted attempts: %+v", in)
	}
	// The dead agent comes back and reports its old lease: refused.
	code, body, _ := h.agentCall("POST", "/api/agent/jobs/"+itoa(long.ID)+"/complete", victim.token,
		api.AgentCompletion{Status: "failure"}, tokenHeader(long.LeaseToken)...)
	if code != http.StatusConflict || !strings.Contains(string(body), "stale") {
		t.Errorf("late complete: %d %s", code, body)
	}
	if j := h.jobs(run.ID)["long"]; j.Status != store.StatusSuccess {
		t.Errorf("the late report changed the job: %s", j.Status)
	}
}

// TestAgentShutdownHandsJobsBack: on SIGTERM an agent takes no new jobs,
// lets running ones go on until its deadline, then stops and hands them
// back at once (no wait for lease expiry); a drained agent finishes its
// job and takes no new one.
func TestAgentShutdownHandsJobsBack(t *testing.T) {
	flow := strings.Replace(longFlow, "sleep 3", "sleep 30", 1)
	h := newHarness(t, harnessOpts{cfg: Config{Workers: -1, LeaseTTL: 30 * time.Second, AgentPoll: time.Second},
		files: map[string]string{".github/workflows/long.yml": flow}})
	a := h.startAgent("leaving", 1, 500*time.Millisecond, "self-hosted", "linux")
	h.api("POST", "/api/repos/"+itoa(h.repo.ID)+"/dispatch", api.DispatchInput{Workflow: "long.yml"}, http.StatusAccepted, nil)
	var runID int64
	waitFor(t, 30*time.Second, "the job to start", func() bool {
		runs, _ := h.st.ListRuns(context.Background(), 1, store.RunFilter{})
		if len(runs) == 0 {
			return false
		}
		runID = runs[0].ID
		return strings.Contains(h.jobLog(runID, "long"), "attempt started")
	})
	a.stop()
	select {
	case <-a.done:
		if a.err != nil {
			t.Errorf("agent: %v", a.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the agent did not stop after its shutdown deadline")
	}
	j := h.jobs(runID)["long"]
	att, _ := h.st.Attempts(context.Background(), 1, j.ID)
	if j.Status != store.StatusQueued || len(att) != 1 || !strings.Contains(att[0].Reason, "handed back by agent leaving") {
		t.Fatalf("after shutdown: job %s, attempts %+v", j.Status, att)
	}

	h.api("POST", "/api/runs/"+itoa(runID)+"/cancel", nil, 200, nil)
	h.api("DELETE", "/api/agents/"+itoa(a.id), nil, http.StatusNoContent, nil) // else online until its last visit ages

	// A drained agent finishes what it runs and takes nothing new.
	h.git.commit("faster", map[string]string{".github/workflows/long.yml": strings.Replace(longFlow, "sleep 3", "sleep 1", 1)})
	b := h.startAgent("draining", 1, time.Minute, "self-hosted", "linux")
	dispatch := func() int64 {
		h.api("POST", "/api/repos/"+itoa(h.repo.ID)+"/dispatch", api.DispatchInput{Workflow: "long.yml"}, http.StatusAccepted, nil)
		var id int64
		waitFor(t, 30*time.Second, "a new run", func() bool {
			runs, _ := h.st.ListRuns(context.Background(), 1, store.RunFilter{})
			id = runs[0].ID
			return id != runID
		})
		runID = id
		return id
	}
	second := dispatch()
	waitFor(t, 30*time.Second, "the job to start on the agent", func() bool {
		return h.jobs(second)["long"].LeaseOwner == b.owner()
	})
	h.api("POST", "/api/agents/"+itoa(b.id)+"/drain", nil, 200, nil)
	waitFor(t, 60*time.Second, "the job to finish", func() bool {
		return h.jobs(second)["long"].Status == store.StatusSuccess
	})
	third := dispatch()
	time.Sleep(1500 * time.Millisecond)
	var d api.RunDetail
	h.api("GET", "/api/runs/"+itoa(third), nil, 200, &d)
	if j := d.Jobs[0]; j.Status != store.StatusQueued || !strings.Contains(j.WaitingReason, "draining is draining") {
		t.Errorf("job while the only agent drains: %s %q", j.Status, j.WaitingReason)
	}
}
