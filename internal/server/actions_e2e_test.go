package server

import (
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/actions"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// actionRemotes publishes a composite action (acme/greet@v1) and a
// reusable workflow (acme/flows/.github/workflows/hello.yml@v1) as git
// repositories under a folder served as file://.
func actionRemotes(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	publish := func(repo string, files map[string]string) {
		dir := filepath.Join(root, repo)
		for name, content := range files {
			p := filepath.Join(dir, name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-q", "-m", "v1"}, {"tag", "v1"}} {
			cmd := osexec.Command("git", args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("git %v: %v\n%s", args, err, out)
			}
		}
	}
	publish("acme/greet", map[string]string{"action.yml": "name: greet\ninputs:\n  who:\n    default: you\nruns:\n  using: composite\n  steps:\n    - shell: bash\n      run: echo \"remote hello ${{ inputs.who }} from ${{ github.action_repository }}\"\n"})
	publish("acme/flows", map[string]string{".github/workflows/hello.yml": "on:\n  workflow_call:\njobs:\n  inner:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo \"remote workflow ran\"\n"})
	return "file://" + root
}

const remoteFlow = `name: Remote
on: push
jobs:
  step:
    runs-on: [self-hosted]
    steps:
      - uses: acme/greet@v1
        with:
          who: server
  call:
    uses: acme/flows/.github/workflows/hello.yml@v1
`

// Remote actions and remote reusable workflows run on the server's own
// workers and on agents, each from its own action cache.
func TestRemoteActionsOnServerAndAgents(t *testing.T) {
	base := actionRemotes(t)
	for _, where := range []string{"workers", "agent"} {
		t.Run(where, func(t *testing.T) {
			cache, err := actions.New(actions.Options{Dir: filepath.Join(t.TempDir(), "actions"), BaseURL: base})
			if err != nil {
				t.Fatal(err)
			}
			cfg := Config{}
			if where == "agent" {
				cfg = Config{Workers: -1, LeaseTTL: 2 * time.Second, AgentPoll: 2 * time.Second}
			}
			h := newHarness(t, harnessOpts{cfg: cfg, actions: cache, files: map[string]string{".github/workflows/remote.yml": remoteFlow}})
			if where == "agent" {
				h.startAgent("agent-a", 2, time.Minute, "self-hosted", "linux")
			}
			h.hook("push", h.push("main"), "d-remote")
			runs := h.waitRuns(1, 60*time.Second)
			if runs[0].Status != store.StatusSuccess {
				t.Fatalf("run: %s", describeRuns(runs))
			}
			if l := h.jobLog(runs[0].ID, "step"); !strings.Contains(l, "remote hello server from acme/greet") || !strings.Contains(l, "Download action repository 'acme/greet@v1'") {
				t.Errorf("step log:\n%s", l)
			}
			if l := h.jobLog(runs[0].ID, "call"); !strings.Contains(l, "remote workflow ran") {
				t.Errorf("call log:\n%s", l)
			}
		})
	}
}
