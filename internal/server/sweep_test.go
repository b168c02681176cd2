package server

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// TestSweeperDeletesHistoryPastRetention: the server's sweeper applies the
// retention set through the API: logs of 0 days go at the next sweep, the
// run stays; then the run goes with runs of 0 days.
func TestSweeperDeletesHistoryPastRetention(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: Config{Sweep: Sweep{Every: 50 * time.Millisecond}},
		files: map[string]string{".github/workflows/ci.yml": ciFlow, "README.md": "hi\n"}})
	if code, body := h.hook("push", h.push("main", "README.md"), "d-1"); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	run := h.waitRuns(1, 60*time.Second)[0]
	if h.jobLog(run.ID, "build") == "" {
		t.Fatal("the build job has no log to sweep")
	}
	h.api("PUT", "/api/retention", map[string]any{"logs_days": 0}, http.StatusOK, nil)
	waitFor(t, 10*time.Second, "the logs to be swept", func() bool { return h.jobLog(run.ID, "build") == "" })
	if _, err := h.st.GetRun(context.Background(), 1, run.ID); err != nil {
		t.Fatalf("the run went with its logs: %v", err)
	}
	h.api("PUT", "/api/retention", map[string]any{"runs_days": 0}, http.StatusOK, nil)
	waitFor(t, 10*time.Second, "the run to be swept", func() bool {
		_, err := h.st.GetRun(context.Background(), 1, run.ID)
		return errs.KindOf(err) == errs.NotFound
	})
	if runs, err := h.st.ListRuns(context.Background(), 1, store.RunFilter{}); err != nil || len(runs) != 0 {
		t.Errorf("runs left: %d, %v", len(runs), err)
	}
}
