package main

import (
	"bytes"
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// conveyor run with --actions-url: a remote composite action is fetched
// into ~/.cache/conveyor/actions (XDG_CACHE_HOME here), said so before the
// first step, taken from the cache by the next run, and with --offline
// runs without the remote at all; an uncached action offline exits 1
// naming it.
func TestRunRemoteActionsCachedAndOffline(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("CONVEYOR_ACTIONS_URL", "")
	remotes := t.TempDir()
	repo := filepath.Join(remotes, "acme", "greet")
	os.MkdirAll(repo, 0o755)
	os.WriteFile(filepath.Join(repo, "action.yml"), []byte("name: greet\ninputs:\n  who:\n    default: you\nruns:\n  using: composite\n  steps:\n    - shell: bash\n      run: echo \"remote hello ${{ inputs.who }} from ${{ github.action_repository }}@${{ github.action_ref }}\"\n"), 0o644)
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-q", "-m", "v1"}, {"tag", "v1"}} {
		cmd := osexec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	dir := writeWorkflow(t, "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: acme/greet@v1\n        with:\n          who: Ada\n")
	runIt := func(extra ...string) (int, string) {
		var out, errOut bytes.Buffer
		args := append([]string{"-C", dir, "--backend", "host", "--no-color"}, extra...)
		code := runMain(context.Background(), args, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	code, out := runIt("--actions-url", "file://"+remotes)
	if code != 0 || !strings.Contains(out, "remote hello Ada from acme/greet@v1") || !strings.Contains(out, "Download action repository 'acme/greet@v1' (SHA:") {
		t.Fatalf("first run: exit %d\n%s", code, out)
	}
	code, out = runIt("--actions-url", "file://"+remotes)
	if code != 0 || !strings.Contains(out, "Action repository 'acme/greet@v1'") || strings.Contains(out, "Download action") {
		t.Fatalf("second run: exit %d\n%s", code, out)
	}
	os.RemoveAll(remotes)
	t.Setenv("CONVEYOR_OFFLINE", "1")
	if code, out = runIt("--actions-url", "file://"+remotes); code != 0 || !strings.Contains(out, "remote hello Ada") {
		t.Fatalf("offline run: exit %d\n%s", code, out)
	}
	dir = writeWorkflow(t, "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo must-not-run\n      - uses: acme/other@v2\n")
	code, out = runIt("--offline", "--actions-url", "file://"+remotes)
	if code != 1 || !strings.Contains(out, "acme/other@v2 is not in the action cache") || strings.Contains(out, "must-not-run") {
		t.Fatalf("offline, uncached: exit %d\n%s", code, out)
	}
}
