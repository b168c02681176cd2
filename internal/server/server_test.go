package server

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/store"
)

const ciFlow = `name: CI
on:
  push:
    branches: [main]
    paths-ignore: ["docs/**"]
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      v: ${{ steps.s.outputs.v }}
    steps:
      - id: s
        run: |
          echo "building ${{ github.sha }} on ${{ github.ref }}"
          echo "v=built-by-build" >> "$GITHUB_OUTPUT"
  test:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: echo "test sees ${{ needs.build.outputs.v }}"
      - uses: actions/checkout@v4
      - run: test -f README.md && echo "workspace has README.md"
  flaky:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: test -f "$HOME/conveyor-flaky-ok-${{ github.run_id }}" || test -f ./PASS
  after:
    needs: [test, flaky]
    if: always()
    runs-on: ubuntu-latest
    steps:
      - run: echo "after test=${{ needs.test.result }} flaky=${{ needs.flaky.result }}"
`

func TestPushWebhookRunsTheWorkflow(t *testing.T) {
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/ci.yml": ciFlow, "README.md": "hi\n"}})
	code, body := h.hook("push", h.push("main", "README.md"), "d-1")
	if code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	runs := h.waitRuns(1, 60*time.Second)
	r := runs[0]
	if r.Status != store.StatusFailure || r.Name != "CI" || r.Number != 1 || r.Event != "push" {
		t.Fatalf("run: %+v", r)
	}
	jobs := h.jobs(r.ID)
	want := map[string]string{"build": "success", "test": "success", "flaky": "failure", "after": "success"}
	for k, st := range want {
		if jobs[k].Status != st {
			t.Errorf("job %s: %s, want %s", k, jobs[k].Status, st)
		}
	}
	sha, _ := h.git.head()
	if l := h.jobLog(r.ID, "build"); !strings.Contains(l, "building "+sha+" on refs/heads/main") {
		t.Errorf("build log:\n%s", l)
	}
	if l := h.jobLog(r.ID, "test"); !strings.Contains(l, "test sees built-by-build") || !strings.Contains(l, "workspace has README.md") {
		t.Errorf("test log:\n%s", l)
	}
	if l := h.jobLog(r.ID, "after"); !strings.Contains(l, "after test=success flaky=failure") {
		t.Errorf("after log:\n%s", l)
	}

	// Re-run only the failed job (and what depends on it): build and test
	// are reused with their outputs, flaky and after run again.
	h.git.commit("unrelated", nil)
	var rerun struct {
		ID int64 `json:"id"`
	}
	h.api("POST", "/api/runs/"+itoa(r.ID)+"/rerun", map[string]bool{"failed": true}, http.StatusCreated, &rerun)
	h.waitRuns(2, 60*time.Second)
	nr, err := h.st.GetRun(context.Background(), 1, rerun.ID)
	if err != nil {
		t.Fatal(err)
	}
	if nr.RerunOf != r.ID || nr.Attempt != 2 || nr.SHA != r.SHA {
		t.Fatalf("rerun: %+v", nr)
	}
	nj := h.jobs(nr.ID)
	if nj["build"].ReusedFrom != jobs["build"].ID || nj["test"].ReusedFrom != jobs["test"].ID {
		t.Errorf("build/test not reused: %+v %+v", nj["build"], nj["test"])
	}
	if nj["flaky"].ReusedFrom != 0 || nj["after"].ReusedFrom != 0 || nj["flaky"].Status != "failure" {
		t.Errorf("flaky/after: %+v %+v", nj["flaky"], nj["after"])
	}
	if l := h.jobLog(nr.ID, "after"); !strings.Contains(l, "after test=success flaky=failure") {
		t.Errorf("rerun after log:\n%s", l)
	}
}

func TestWebhookRejectsAndDeduplicates(t *testing.T) {
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/ci.yml": "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n"}})
	body := []byte(`{"ref":"refs/heads/main"}`)
	if code, b := h.hookRaw("push", body, "x", ""); code != http.StatusUnauthorized || !strings.Contains(b, "X-Hub-Signature-256") {
		t.Errorf("unsigned: %d %s", code, b)
	}
	if code, b := h.hookRaw("push", body, "x", sign("wrong", body)); code != http.StatusUnauthorized {
		t.Errorf("bad signature: %d %s", code, b)
	}
	if code, b := h.hookRaw("ping", []byte(`{"zen":"hi"}`), "p", sign(h.repo.Secret, []byte(`{"zen":"hi"}`))); code != http.StatusOK {
		t.Errorf("ping: %d %s", code, b)
	}
	big := make([]byte, MaxHookBody+10)
	if code, b := h.hookRaw("push", big, "x", sign(h.repo.Secret, big)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("too large: %d %s", code, b)
	}
	ev, err := h.st.ClaimEvents(context.Background(), "probe", 10, time.Millisecond)
	if err != nil || len(ev) != 0 {
		t.Fatalf("rejected requests stored events: %v %v", ev, err)
	}
	// A refused webhook is no longer on its way to the group commit, which
	// would otherwise hold every batch for it.
	if n := h.srv.hooks.intake.Arrivals(); n != 0 {
		t.Errorf("%d webhooks still arriving after every request was answered", n)
	}
	p := h.push("main")
	if code, b := h.hook("push", p, "same"); code != http.StatusAccepted {
		t.Fatalf("first: %d %s", code, b)
	}
	if code, b := h.hook("push", p, "same"); code != http.StatusOK || !strings.Contains(b, "duplicate") {
		t.Errorf("same delivery: %d %s", code, b)
	}
	if code, b := h.hook("push", p, "other-delivery-same-body"); code != http.StatusOK || !strings.Contains(b, "duplicate") {
		t.Errorf("same body: %d %s", code, b)
	}
	if n := h.srv.hooks.intake.Arrivals(); n != 0 {
		t.Errorf("%d webhooks still arriving after every request was answered", n)
	}
	h.waitRuns(1, 30*time.Second)
	time.Sleep(300 * time.Millisecond)
	if runs := h.waitRuns(1, time.Second); len(runs) != 1 {
		t.Fatalf("duplicates made runs: %s", describeRuns(runs))
	}
	resp, err := http.Get(h.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`conveyor_webhooks_total{result="accepted"} 1`, `conveyor_webhooks_total{result="duplicate"} 2`,
		`conveyor_webhooks_total{result="ping"} 1`, `conveyor_webhooks_total{result="rejected_signature"} 2`,
		`conveyor_webhooks_total{result="rejected_too_large"} 1`, `conveyor_jobs{status="running"} 0`,
		`conveyor_queue_depth 0`, `conveyor_dispatch_latency_seconds_count 1`, `conveyor_job_duration_seconds_count{status="success"} 1`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestTriggerFiltersAndSkipCI(t *testing.T) {
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/ci.yml": ciFlow, "README.md": "x"}})
	// Only docs changed: paths-ignore keeps the workflow from running.
	h.git.commit("docs", map[string]string{"docs/a.md": "a"})
	if code, _ := h.hook("push", h.push("main", "docs/a.md"), "1"); code != http.StatusAccepted {
		t.Fatal(code)
	}
	// Another branch: not in branches.
	h.git.commit("feature", map[string]string{"src.txt": "a"})
	h.hook("push", h.push("feature", "src.txt"), "2")
	// [skip ci] in the head commit.
	h.git.commit("wip [skip ci]", map[string]string{"src.txt": "b"})
	h.hook("push", h.push("main", "src.txt"), "3")
	waitFor(t, 20*time.Second, "events processed", func() bool {
		n := 0
		for id := int64(1); id <= 3; id++ {
			if ev, err := h.st.GetEvent(context.Background(), 1, id); err == nil && ev.State == store.EventDone {
				n++
			}
		}
		return n == 3
	})
	if runs := h.waitRuns(0, time.Second); len(runs) != 0 {
		t.Fatalf("filtered events made runs: %s", describeRuns(runs))
	}
}

func TestCancelStopsARunningJob(t *testing.T) {
	flow := "on: push\njobs:\n  long:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo started; sleep 60\n  later:\n    needs: long\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo never\n"
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/long.yml": flow}})
	h.hook("push", h.push("main"), "c")
	var runID int64
	waitFor(t, 20*time.Second, "job started", func() bool {
		runs, _ := h.st.ListRuns(context.Background(), 1, store.RunFilter{})
		if len(runs) == 0 {
			return false
		}
		runID = runs[0].ID
		return strings.Contains(h.jobLog(runID, "long"), "started")
	})
	start := time.Now()
	h.api("POST", "/api/runs/"+itoa(runID)+"/cancel", nil, http.StatusOK, nil)
	runs := h.waitRuns(1, 15*time.Second)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("cancel took %s", took)
	}
	jobs := h.jobs(runID)
	if runs[0].Status != store.StatusCancelled || jobs["long"].Status != store.StatusCancelled || jobs["later"].Status != store.StatusCancelled {
		t.Fatalf("after cancel: run %s long %s later %s", runs[0].Status, jobs["long"].Status, jobs["later"].Status)
	}
}
