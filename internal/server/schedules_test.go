package server

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
)

func cronFlow(spec string) string {
	return "on:\n  schedule:\n    - cron: '" + spec + "'\njobs:\n  tick:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo tick\n"
}

// specsOf lists the cron lines the loop holds for repository id.
func specsOf(s *Server, id int64) []string {
	var out []string
	for _, sc := range s.crons.all() {
		if sc.repo.ID == id {
			out = append(out, sc.spec)
		}
	}
	return out
}

// A push to the default branch replaces its repository's schedules with
// those at the pushed commit (not the branch head the mirror fetched),
// leaves other repositories' alone (even one that can no longer be
// fetched), and a push processed late does not undo a newer one.
func TestPushRefreshesOnlyItsSchedules(t *testing.T) {
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/tick.yml": cronFlow("0 1 * * *")}})
	other := newGitRepo(t, map[string]string{".conveyor/nightly.yml": cronFlow("0 3 * * *")})
	var out struct {
		Repo struct {
			ID int64 `json:"id"`
		} `json:"repo"`
	}
	h.api("POST", "/api/repos", api.RepoInput{URL: "file://" + other.dir, Forge: "github", Name: "octo/other", Secret: "x"}, http.StatusCreated, &out)
	otherID := out.Repo.ID
	waitFor(t, 30*time.Second, "both repositories' schedules", func() bool {
		return strings.Join(specsOf(h.srv, h.repo.ID), ",") == "0 1 * * *" && strings.Join(specsOf(h.srv, otherID), ",") == "0 3 * * *"
	})
	// The other repository cannot be fetched any more: its schedules stay.
	if err := os.RemoveAll(other.dir); err != nil {
		t.Fatal(err)
	}

	a := h.git.commit("two a day", map[string]string{".github/workflows/tick.yml": cronFlow("0 2 * * *")})
	pushA := h.push("main")
	h.git.commit("three a day", map[string]string{".github/workflows/tick.yml": cronFlow("0 4 * * *")})
	if pushA["after"] != a {
		t.Fatalf("push of %v, want %s", pushA["after"], a)
	}
	if code, body := h.hook("push", pushA, "d-a"); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	// At the pushed commit, although the fetch brought the newer head.
	waitFor(t, 30*time.Second, "the pushed commit's schedule", func() bool {
		return strings.Join(specsOf(h.srv, h.repo.ID), ",") == "0 2 * * *"
	})
	if got := strings.Join(specsOf(h.srv, otherID), ","); got != "0 3 * * *" {
		t.Errorf("other repository's schedules %q after a push elsewhere", got)
	}

	// A push to another branch changes nothing.
	if code, body := h.hook("push", h.push("feature"), "d-f"); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	pushB := h.push("main")
	if code, body := h.hook("push", pushB, "d-b"); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	waitFor(t, 30*time.Second, "the newer push's schedule", func() bool {
		return strings.Join(specsOf(h.srv, h.repo.ID), ",") == "0 4 * * *"
	})
	// An older push (a lower event id) processed now is ignored.
	h.srv.noteSchedules(h.repo, 1, map[string][]byte{".github/workflows/tick.yml": []byte(cronFlow("0 5 * * *"))})
	if got := strings.Join(specsOf(h.srv, h.repo.ID), ","); got != "0 4 * * *" {
		t.Errorf("a late push replaced the schedules: %q", got)
	}

	// A full re-read keeps the unreachable repository's schedules and
	// reads the other at its head.
	h.srv.loadSchedules(t.Context())
	if got := strings.Join(specsOf(h.srv, otherID), ","); got != "0 3 * * *" {
		t.Errorf("other repository's schedules %q after a full re-read", got)
	}
	if got := strings.Join(specsOf(h.srv, h.repo.ID), ","); got != "0 4 * * *" {
		t.Errorf("schedules %q after a full re-read", got)
	}
}

// TestNoteSchedulesSameFiles: pushes of the same workflow files keep the
// schedules without parsing them again; changed files replace them; an
// older push never does.
func TestNoteSchedulesSameFiles(t *testing.T) {
	h := newHarness(t, harnessOpts{files: map[string]string{"README.md": "x"}})
	daily := map[string][]byte{".github/workflows/a.yml": []byte("on:\n  schedule:\n    - cron: '0 3 * * *'\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n")}
	hourly := map[string][]byte{".github/workflows/a.yml": []byte("on:\n  schedule:\n    - cron: '0 * * * *'\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n")}
	specs := func() []string {
		var out []string
		for _, sc := range h.srv.crons.all() {
			out = append(out, sc.spec)
		}
		return out
	}
	h.srv.noteSchedules(h.repo, 10, daily)
	h.srv.noteSchedules(h.repo, 11, daily)
	if got := specs(); len(got) != 1 || got[0] != "0 3 * * *" {
		t.Fatalf("after the same files twice: %v", got)
	}
	h.srv.noteSchedules(h.repo, 12, hourly)
	if got := specs(); len(got) != 1 || got[0] != "0 * * * *" {
		t.Fatalf("after changed files: %v", got)
	}
	h.srv.noteSchedules(h.repo, 9, daily) // an older push
	if got := specs(); len(got) != 1 || got[0] != "0 * * * *" {
		t.Fatalf("an older push replaced the schedules: %v", got)
	}
	h.srv.noteSchedules(h.repo, 13, hourly)
	h.srv.noteSchedules(h.repo, 14, daily)
	if got := specs(); len(got) != 1 || got[0] != "0 3 * * *" {
		t.Fatalf("back to the first files: %v", got)
	}
}
