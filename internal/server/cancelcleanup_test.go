package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/store"
)

const cleanupFlow = `name: Cleanup
on: push
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo "deploying"
          sleep 60
      - name: cleanup
        if: always()
        run: |
          echo "cleanup started"
          sleep 5
          echo "cleanup done"
`

// TestCancelDuringLongCleanupKeepsLease: a run is cancelled while its
// job runs; the job's if: always() step then runs for longer than two
// leases (2 s). The worker heartbeats on until the sandbox is gone: the
// job is not expired and re-run as "worker lost", and ends cancelled on
// its first attempt with the cleanup's whole output.
func TestCancelDuringLongCleanupKeepsLease(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: Config{LeaseTTL: 2 * time.Second},
		files: map[string]string{".github/workflows/cleanup.yml": cleanupFlow}})
	h.hook("push", h.push("main"), "d-cleanup")
	var run *store.Run
	waitFor(t, 30*time.Second, "the job deploying", func() bool {
		runs, _ := h.st.ListRuns(context.Background(), 1, store.RunFilter{})
		if len(runs) == 0 {
			return false
		}
		run = runs[0]
		return strings.Contains(h.jobLog(run.ID, "deploy"), "deploying")
	})
	h.api("POST", "/api/runs/"+itoa(run.ID)+"/cancel", nil, 200, nil)
	var d api.RunDetail
	waitFor(t, 60*time.Second, "the run to end", func() bool {
		h.api("GET", "/api/runs/"+itoa(run.ID), nil, 200, &d)
		return store.Terminal(d.Run.Status)
	})
	j := d.Jobs[0]
	if d.Run.Status != store.StatusCancelled || j.Status != store.StatusCancelled || j.Attempt != 1 || len(j.Interrupted) != 0 {
		t.Fatalf("run %s, job %s attempt %d, interrupted %+v (error %q)", d.Run.Status, j.Status, j.Attempt, j.Interrupted, j.Error)
	}
	log := h.jobLog(run.ID, "deploy")
	if strings.Count(log, "cleanup started\n") != 1 || strings.Count(log, "cleanup done\n") != 1 {
		t.Errorf("the cleanup did not run once to its end:\n%s", log)
	}
}
