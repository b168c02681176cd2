package server

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/cron"
	"github.com/conveyor-ci/conveyor/internal/forge/forgetest"
	"github.com/conveyor-ci/conveyor/internal/store"
)

func TestCommitStatusesReachTheForge(t *testing.T) {
	rec := forgetest.NewRecorder(t).Fail(1, http.StatusBadGateway) // first call fails: retried
	h := newHarness(t, harnessOpts{cfg: Config{StatusBackoff: 20 * time.Millisecond}, statusURL: rec.URL, files: map[string]string{".github/workflows/ok.yml": "name: OK\non: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: sleep 1\n"}})
	h.hook("push", h.push("main"), "s1")
	runs := h.waitRuns(1, 30*time.Second)
	sha, _ := h.git.head()
	var states []string
	waitFor(t, 30*time.Second, "pending and success statuses", func() bool {
		states = nil
		for _, c := range rec.Calls() {
			if c.Path == "/repos/octo/repo/statuses/"+sha {
				states = append(states, c.JSON["state"].(string))
			}
		}
		return len(states) >= 2 && states[len(states)-1] == "success"
	})
	// pending failed once (502) and was retried, then the result.
	if len(states) != 3 || states[0] != "pending" || states[1] != "pending" {
		t.Errorf("states: %v", states)
	}
	// The failed "pending" must not be retried after the result: the
	// forge would show the run as pending forever.
	time.Sleep(300 * time.Millisecond)
	calls := rec.Calls()
	if last := calls[len(calls)-1]; last.JSON["state"] != "success" {
		t.Errorf("last status sent: %v (all: %d calls)", last.JSON["state"], len(calls))
	}
	for _, c := range rec.Calls() {
		if got := c.Header.Get("Authorization"); got != "Bearer tok-123" {
			t.Errorf("authorization header %q", got)
		}
		if c.JSON["context"] != "conveyor/OK" {
			t.Errorf("context %v", c.JSON["context"])
		}
		// The link lands on the run's page in the web UI.
		if want := h.url + "/runs/" + itoa(runs[0].ID); c.JSON["target_url"] != want {
			t.Errorf("target_url %v, want %s", c.JSON["target_url"], want)
		}
	}
	if runs[0].Status != store.StatusSuccess {
		t.Errorf("run %s", runs[0].Status)
	}
}

func TestDispatchWithInputs(t *testing.T) {
	flow := `on:
  workflow_dispatch:
    inputs:
      who:
        required: true
      loud:
        type: boolean
        default: false
jobs:
  greet:
    runs-on: ubuntu-latest
    steps:
      - run: echo "hello ${{ inputs.who }} loud=${{ inputs.loud }} event=${{ github.event_name }}"
`
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/greet.yml": flow}})
	var out struct {
		EventID int64 `json:"event_id"`
	}
	path := "/api/repos/" + itoa(h.repo.ID) + "/dispatch"
	h.api("POST", path, api.DispatchInput{Workflow: "greet.yml", Inputs: map[string]string{"who": "mona", "loud": "true"}}, http.StatusAccepted, &out)
	h.api("POST", path, api.DispatchInput{Workflow: "greet.yml"}, http.StatusBadRequest, nil)                                                     // required input missing
	h.api("POST", path, api.DispatchInput{Workflow: "greet.yml", Inputs: map[string]string{"who": "x", "nope": "1"}}, http.StatusBadRequest, nil) // unknown input
	h.api("POST", path, api.DispatchInput{Workflow: "missing.yml"}, http.StatusNotFound, nil)
	runs := h.waitRuns(1, 30*time.Second)
	if runs[0].Status != store.StatusSuccess || runs[0].Event != "workflow_dispatch" {
		t.Fatalf("run: %+v", runs[0])
	}
	if l := h.jobLog(runs[0].ID, "greet"); !strings.Contains(l, "hello mona loud=true event=workflow_dispatch") {
		t.Fatalf("log:\n%s", l)
	}
}

func TestConcurrencyGroupCancelsInProgress(t *testing.T) {
	flow := `on: push
concurrency:
  group: deploy-${{ github.ref }}
  cancel-in-progress: true
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - run: echo deploying; sleep 30
`
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/deploy.yml": flow}})
	h.hook("push", h.push("main"), "1")
	waitFor(t, 20*time.Second, "first deploy running", func() bool {
		runs, _ := h.st.ListRuns(context.Background(), 1, store.RunFilter{})
		return len(runs) == 1 && runs[0].Status == store.StatusRunning
	})
	h.git.commit("second", map[string]string{"x": "2"})
	h.hook("push", h.push("main"), "2")
	waitFor(t, 20*time.Second, "first run cancelled, second running", func() bool {
		runs, _ := h.st.ListRuns(context.Background(), 1, store.RunFilter{})
		if len(runs) != 2 {
			return false
		}
		byNum := map[int64]string{}
		for _, r := range runs {
			byNum[r.Number] = r.Status
		}
		return byNum[1] == store.StatusCancelled && byNum[2] == store.StatusRunning
	})
	runs, _ := h.st.ListRuns(context.Background(), 1, store.RunFilter{})
	for _, r := range runs {
		if r.Status == store.StatusRunning {
			h.api("POST", "/api/runs/"+itoa(r.ID)+"/cancel", nil, http.StatusOK, nil)
		}
	}
	h.waitRuns(2, 20*time.Second)
}

func TestLogsFollowOverSSE(t *testing.T) {
	flow := "on: push\njobs:\n  talk:\n    runs-on: ubuntu-latest\n    steps:\n      - run: for i in 1 2 3; do echo line-$i; sleep 0.3; done\n"
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/talk.yml": flow}})
	h.hook("push", h.push("main"), "1")
	var runID int64
	waitFor(t, 20*time.Second, "run", func() bool {
		runs, _ := h.st.ListRuns(context.Background(), 1, store.RunFilter{})
		if len(runs) == 1 {
			runID = runs[0].ID
		}
		return runID != 0
	})
	req, _ := http.NewRequest("GET", h.url+"/api/runs/"+itoa(runID)+"/jobs/talk/logs", nil)
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("Accept", "text/event-stream")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var data []string
	ended := ""
	sc := bufio.NewScanner(resp.Body)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "end":
			ended = strings.TrimPrefix(line, "data: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		case line == "":
			event = ""
		}
		if ended != "" {
			break
		}
	}
	all := strings.Join(data, "\n")
	for _, want := range []string{"line-1", "line-2", "line-3"} {
		if !strings.Contains(all, want) {
			t.Errorf("followed log lacks %s:\n%s", want, all)
		}
	}
	if ended != store.StatusSuccess {
		t.Errorf("end event %q", ended)
	}
}

func TestCronFiresOnceAcrossRestarts(t *testing.T) {
	flow := "on:\n  schedule:\n    - cron: '*/5 * * * *'\njobs:\n  tick:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo tick ${{ github.event_name }}\n"
	// The server's own cron loop runs too, on the same clock: it is one
	// more contender for every tick, as another replica would be.
	t0 := time.Date(2026, 11, 22, 10, 1, 0, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	h := newHarness(t, harnessOpts{cfg: Config{Now: now}, files: map[string]string{".github/workflows/tick.yml": flow}})
	ctx := context.Background()
	sc := schedule{repo: h.repo, file: ".github/workflows/tick.yml", spec: "*/5 * * * *", s: cron.MustParse("*/5 * * * *")}
	fire := func(at time.Time) {
		clock.Store(at.UnixNano())
		h.srv.refreshSchedules() // wake the loop: it fires at the same instant
		h.srv.fireDue(ctx, sc, at)
	}
	fire(t0) // first sighting: baseline, no fire
	fire(t0.Add(3 * time.Minute))
	if runs := h.waitRuns(0, time.Second); len(runs) != 0 {
		t.Fatalf("fired before its time: %s", describeRuns(runs))
	}
	fire(t0.Add(4 * time.Minute)) // 10:05 is due
	fire(t0.Add(4 * time.Minute)) // same tick again (restart, other replica): no double fire
	h.waitRuns(1, 30*time.Second)
	time.Sleep(200 * time.Millisecond)
	runs := h.waitRuns(1, time.Second)
	if len(runs) != 1 || runs[0].Event != "schedule" || runs[0].Status != store.StatusSuccess {
		t.Fatalf("runs: %s", describeRuns(runs))
	}
	// Down from 10:05 to 12:02: only the latest missed time (12:00) fires,
	// being within the catch-up window; the rest are skipped.
	fire(time.Date(2026, 11, 22, 12, 2, 0, 0, time.UTC))
	h.waitRuns(2, 30*time.Second)
	time.Sleep(200 * time.Millisecond)
	if runs = h.waitRuns(2, time.Second); len(runs) != 2 {
		t.Fatalf("after downtime: %s", describeRuns(runs))
	}
	last, _ := h.st.CronLast(ctx, sc.key())
	if !last.Equal(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("last fired %v", last)
	}
}
