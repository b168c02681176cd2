package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/exec"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// Re-running the failed jobs of a run re-runs only the matrix instances
// that failed: the others keep their earlier result, on the server's own
// workers and on agents alike.
func TestRerunFailedMatrixInstances(t *testing.T) {
	for _, viaAgent := range []bool{false, true} {
		t.Run(map[bool]string{false: "server", true: "agent"}[viaAgent], func(t *testing.T) {
			dir := t.TempDir()
			marks, fixed := filepath.Join(dir, "marks"), filepath.Join(dir, "fixed")
			runsOn := "ubuntu-latest"
			if viaAgent {
				runsOn = "[self-hosted, linux]"
			}
			flow := fmt.Sprintf(`on: push
jobs:
  test:
    runs-on: %s
    strategy:
      fail-fast: false
      matrix:
        n: [1, 2, 3]
    steps:
      - run: |
          echo "ran ${{ matrix.n }}" >> %s
          test "${{ matrix.n }}" != 2 || test -f %s
  after:
    needs: test
    runs-on: %s
    steps:
      - run: echo "after saw ${{ needs.test.result }}"
`, runsOn, marks, fixed, runsOn)
			cfg := Config{}
			if viaAgent {
				cfg = Config{Workers: -1, LeaseTTL: 5 * time.Second, AgentPoll: 2 * time.Second}
			}
			h := newHarness(t, harnessOpts{cfg: cfg, files: map[string]string{".github/workflows/m.yml": flow}})
			if viaAgent {
				h.startAgent("agent-m", 2, time.Minute, "self-hosted", "linux")
			}
			h.hook("push", h.push("main"), "d-m")
			r := h.waitRuns(1, 60*time.Second)[0]
			if r.Status != store.StatusFailure {
				t.Fatalf("first run: %s", r.Status)
			}
			if got := sortedLines(t, marks); got != "ran 1,ran 2,ran 3" {
				t.Fatalf("first run ran %q", got)
			}
			if err := os.WriteFile(fixed, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(marks, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			var rerun struct {
				ID int64 `json:"id"`
			}
			h.api("POST", "/api/runs/"+itoa(r.ID)+"/rerun", map[string]bool{"failed": true}, http.StatusCreated, &rerun)
			h.waitRuns(2, 60*time.Second)
			nr, err := h.st.GetRun(context.Background(), 1, rerun.ID)
			if err != nil {
				t.Fatal(err)
			}
			if nr.Status != store.StatusSuccess {
				t.Fatalf("re-run: %s (%s)", nr.Status, nr.Error)
			}
			if got := sortedLines(t, marks); got != "ran 2" {
				t.Errorf("re-run ran %q, want only instance 2", got)
			}
			var ins []*exec.JobResult
			if err := json.Unmarshal(h.jobs(nr.ID)["test"].Results, &ins); err != nil {
				t.Fatal(err)
			}
			reused := 0
			for _, in := range ins {
				if in.Result != exec.Success {
					t.Errorf("instance %s: %s", in.Name, in.Result)
				}
				if in.Reused {
					reused++
				}
			}
			if len(ins) != 3 || reused != 2 {
				t.Errorf("re-run's test job: %d instances, %d reused; want 3 and 2", len(ins), reused)
			}
			if l := h.jobLog(nr.ID, "after"); !strings.Contains(l, "after saw success") {
				t.Errorf("after's log:\n%s", l)
			}
		})
	}
}

func sortedLines(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), "ran ", "ran_"))
	sort.Strings(lines)
	return strings.ReplaceAll(strings.Join(lines, ","), "ran_", "ran ")
}
