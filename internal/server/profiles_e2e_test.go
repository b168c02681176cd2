package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/jobrun"
	"github.com/conveyor-ci/conveyor/internal/profiles"
	"github.com/conveyor-ci/conveyor/internal/store"
)

const profileFlow = `name: Profiles
on: push
jobs:
  probe:
    runs-on: [self-hosted, sandboxed]
    steps:
      - run: echo probing
  plain:
    runs-on: self-hosted
    steps:
      - run: echo plain
`

// TestLabelProfilesOnServer: the label config of whoever runs the job
// (the server's workers: Config.Profiles; an agent: its own) gives a job
// its labels' profile, and the repository's runtime must agree with a
// label's. The host backend refuses a runtime, which shows that the
// profile reached it.
func TestLabelProfilesOnServer(t *testing.T) {
	cfg, err := profiles.Parse([]byte("labels:\n  sandboxed: {runtime: runsc}\n"), "labels.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, where := range []string{"worker", "agent"} {
		t.Run(where, func(t *testing.T) {
			sc := Config{Profiles: cfg, Platforms: map[string]string{"self-hosted": "-self-hosted", "sandboxed": "-self-hosted"}}
			if where == "agent" {
				sc = Config{Workers: -1, AgentPoll: 200 * time.Millisecond}
			}
			h := newHarness(t, harnessOpts{cfg: sc, files: map[string]string{".github/workflows/profiles.yml": profileFlow}})
			if where == "agent" {
				b := host.New(host.Options{})
				h.startAgentWith(h.url, "profiled", 2, time.Minute, jobrun.Env{Backend: b, Host: b, Actions: h.actions, Profiles: cfg},
					"self-hosted", "sandboxed")
			}
			repo := fmt.Sprintf("/api/repos/%d", h.repo.ID)
			kata, runsc := "kata-runtime", "runsc"
			for i, c := range []struct {
				set              *string
				errPart, logPart string
			}{
				{nil, `asks for runtime "runsc"`, "label profile: runtime runsc (label sandboxed)"},
				{&runsc, `asks for runtime "runsc"`, "label profile: runtime runsc (label sandboxed)"},
				{&kata, `the job's runtime "kata-runtime" (the repository's setting, or --runtime) and runtime "runsc" of its runs-on label "sandboxed" differ`, ""},
			} {
				if c.set != nil {
					h.api("PATCH", repo, api.RepoUpdate{Runtime: c.set}, 200, nil)
				}
				run := h.pushRun("main", i+1)
				h.waitRun(run.ID)
				jobs := h.jobs(run.ID)
				j := jobs["probe"]
				log := h.jobLog(run.ID, "probe")
				if j.Status != store.StatusFailure || !strings.Contains(j.Error+log, c.errPart) || !strings.Contains(log, c.logPart) {
					t.Errorf("case %d: probe %s %q\n%s", i, j.Status, j.Error, log)
				}
				if c.set == nil && jobs["plain"].Status != store.StatusSuccess {
					t.Errorf("case %d: plain %s %q", i, jobs["plain"].Status, jobs["plain"].Error)
				}
			}
		})
	}
}
