package server

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/event"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// A pushed workflow that GitHub would refuse (here an expression that does
// not parse) gets a failed run that says where, as conveyor run and lint
// say it, and starts no job; the valid workflow next to it runs.
func TestInvalidWorkflowFailsItsRunWithThePosition(t *testing.T) {
	bad := "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ foo( }}\n"
	good := "on: push\njobs:\n  y:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo fine\n"
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/bad.yml": bad, ".github/workflows/good.yml": good}})
	h.hook("push", h.push("main"), "lint-1")
	runs := h.waitRuns(2, 30*time.Second)
	for _, r := range runs {
		jobs, err := h.st.Jobs(context.Background(), r.OrgID, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		switch r.Workflow {
		case ".github/workflows/bad.yml":
			if r.Status != store.StatusFailure || !strings.Contains(r.Error, ".github/workflows/bad.yml:6:26: Unexpected end of expression") || len(jobs) != 0 {
				t.Errorf("bad run: %s %q, %d jobs", r.Status, r.Error, len(jobs))
			}
		case ".github/workflows/good.yml":
			if r.Status != store.StatusSuccess || len(jobs) != 1 {
				t.Errorf("good run: %s %q, %d jobs", r.Status, r.Error, len(jobs))
			}
		default:
			t.Errorf("run of %s", r.Workflow)
		}
	}
}

// A panic while an event is planned fails that event (with the reason)
// instead of the server: here a server without a store, which panics at
// the first store call.
func TestPlanPanicFailsTheEvent(t *testing.T) {
	s := &Server{log: slog.New(slog.DiscardHandler)}
	sev, err := internalEvent(&store.Repo{ID: 1, OrgID: 1}, "api", &event.Event{Name: "push", Ref: "refs/heads/main", SHA: "abc"}, nil, "d")
	if err != nil {
		t.Fatal(err)
	}
	out, ok := s.processEvent(context.Background(), sev, s.newBatchReads())
	if !ok || !strings.Contains(out.Fail, "internal error in Conveyor") || len(out.Runs) != 0 {
		t.Errorf("outcome %+v, %v", out, ok)
	}
}

// A workflow whose local uses: climbs out of the repository fails its run
// at the uses: position, and nothing of the file it names is shown.
func TestLocalUsesOutsideTheRepositoryFailsTheRun(t *testing.T) {
	call := "on: push\njobs:\n  x:\n    uses: ./../../../../etc/passwd\n"
	step := "on: push\njobs:\n  y:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: ./../../../../etc\n"
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/call.yml": call, ".github/workflows/step.yml": step}})
	h.hook("push", h.push("main"), "escape-1")
	want := map[string]string{
		".github/workflows/call.yml": ".github/workflows/call.yml:4:11: \"./../../../../etc/passwd\" leaves the repository",
		".github/workflows/step.yml": ".github/workflows/step.yml:6:15: \"./../../../../etc\" leaves the repository",
	}
	for _, r := range h.waitRuns(2, 30*time.Second) {
		jobs, err := h.st.Jobs(context.Background(), r.OrgID, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != store.StatusFailure || !strings.Contains(r.Error, want[r.Workflow]) || len(jobs) != 0 || strings.Contains(r.Error, "root:") {
			t.Errorf("%s: %s %q, %d jobs", r.Workflow, r.Status, r.Error, len(jobs))
		}
	}
}
