package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// A job-level concurrency group holds the second run's deploy while the
// first one's runs; the rest of the second run goes on; the API says why
// the job waits; when the first deploy ends the second one runs.
func TestJobConcurrencyGroup(t *testing.T) {
	flow := `on: push
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: echo testing
  deploy:
    runs-on: ubuntu-latest
    concurrency:
      group: deploy-${{ github.ref_name }}
    steps:
      - run: echo deploying; sleep 3
`
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/ci.yml": flow}})
	h.hook("push", h.push("main"), "1")
	var first int64
	waitFor(t, 20*time.Second, "first deploy running", func() bool {
		runs, _ := h.st.ListRuns(context.Background(), 1, store.RunFilter{})
		if len(runs) != 1 {
			return false
		}
		first = runs[0].ID
		j := h.jobs(first)["deploy"]
		return j != nil && j.Status == store.StatusRunning
	})
	h.git.commit("second", map[string]string{"x": "2"})
	h.hook("push", h.push("main"), "2")
	var second int64
	waitFor(t, 20*time.Second, "second run's test done, its deploy waiting", func() bool {
		runs, _ := h.st.ListRuns(context.Background(), 1, store.RunFilter{})
		for _, r := range runs {
			if r.ID != first {
				second = r.ID
			}
		}
		if second == 0 {
			return false
		}
		js := h.jobs(second)
		return js["test"].Status == store.StatusSuccess && js["deploy"].Status == store.StatusQueued
	})
	var detail api.RunDetail
	h.api("GET", "/api/runs/"+itoa(second), nil, http.StatusOK, &detail)
	found := false
	for _, j := range detail.Jobs {
		if j.Key == "deploy" {
			found = true
			if j.ConcurrencyGroup != "deploy-main" || !strings.Contains(j.WaitingReason, "concurrency group deploy-main") {
				t.Errorf("deploy job in the API: group %q, waiting reason %q", j.ConcurrencyGroup, j.WaitingReason)
			}
		}
	}
	if !found {
		t.Fatalf("no deploy job in %+v", detail.Jobs)
	}
	runs := h.waitRuns(2, 40*time.Second)
	for _, r := range runs {
		if r.Status != store.StatusSuccess {
			t.Errorf("run %d: %s (%s)", r.ID, r.Status, r.Error)
		}
	}
	d1, d2 := h.jobs(first)["deploy"], h.jobs(second)["deploy"]
	if d2.Started.Before(d1.Finished) {
		t.Errorf("second deploy started %v, before the first finished %v", d2.Started, d1.Finished)
	}
}
