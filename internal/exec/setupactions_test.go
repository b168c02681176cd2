package exec

import (
	"context"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// The real setup-go and setup-node, the code GitHub runs, used as local
// actions (cloned from the compat material's bare repositories, offline).
var realSetupActions = []struct{ name, tag string }{
	{"setup-go", "v5"}, {"setup-go", "v6"}, // node20, node24
	{"setup-node", "v4"}, {"setup-node", "v5"}, // node20, node24
}

// cloneSetupActions clones every realSetupActions entry into
// repo/.github/actions/NAME-TAG.
func cloneSetupActions(t *testing.T, repo string) {
	t.Helper()
	src := testenv.CompatDir(t, "actions")
	for _, a := range realSetupActions {
		dst := filepath.Join(repo, ".github", "actions", a.name+"-"+a.tag)
		cmd := osexec.Command("git", "clone", "-q", "--depth", "1", "--branch", a.tag,
			"file://"+filepath.Join(src, "actions", a.name+".git"), dst)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("clone %s@%s: %v\n%s", a.name, a.tag, err, out)
		}
		os.RemoveAll(filepath.Join(dst, ".git"))
	}
}

// toolchains are this machine's Go and Node.js, which tests put in a tool
// cache.
type toolchains struct {
	goVersion, goRoot     string // 1.26.8, /usr/local/go
	nodeVersion, nodePath string // 20.11.1, /usr/bin/node (no link)
}

func hostToolchains(t *testing.T) toolchains {
	t.Helper()
	var tc toolchains
	out, err := osexec.Command("go", "env", "GOVERSION", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 || !strings.HasPrefix(f[0], "go") {
		t.Fatalf("go env said %q", out)
	}
	tc.goVersion, tc.goRoot = strings.TrimPrefix(f[0], "go"), f[1]
	out, err = osexec.Command("node", "-e", "console.log(process.version, process.execPath)").Output()
	if err != nil {
		t.Fatalf("the tests need node on PATH: %v", err)
	}
	f = strings.Fields(string(out))
	if len(f) != 2 {
		t.Fatalf("node said %q", out)
	}
	tc.nodeVersion, tc.nodePath = strings.TrimPrefix(f[0], "v"), f[1]
	return tc
}

// fillToolCache lays the toolchains out in dir as @actions/tool-cache
// writes them: TOOL/VERSION/x64/ and TOOL/VERSION/x64.complete; files
// are hard links where the file system allows.
func fillToolCache(t *testing.T, dir string, tc toolchains) {
	t.Helper()
	goDir := filepath.Join(dir, "go", tc.goVersion, "x64")
	if err := linkTree(tc.goRoot, goDir); err != nil {
		t.Fatal(err)
	}
	nodeDir := filepath.Join(dir, "node", tc.nodeVersion, "x64")
	if err := linkTree(tc.nodePath, filepath.Join(nodeDir, "bin", "node")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{goDir, nodeDir} {
		if err := os.WriteFile(d+".complete", nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// linkTree hard-links (or copies) the file or folder src to dst.
func linkTree(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case fi.IsDir():
			return os.MkdirAll(target, 0o755)
		case fi.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		case !fi.Mode().IsRegular():
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if os.Link(p, target) == nil {
			return nil
		}
		return copyRegular(p, target, fi.Mode().Perm())
	})
}

// copyRegular copies one file (when a hard link cannot be made).
func copyRegular(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// setupActionsWorkflow runs each pair of setup-go and setup-node (node20:
// v5 and v4; node24: v6 and v5) in a job of its own and prints where go
// and node are and what they say.
func setupActionsWorkflow(tc toolchains, runsOn string) string {
	job := func(id, goTag, nodeTag string) string {
		return `  ` + id + `:
    runs-on: ` + runsOn + `
    steps:
      - id: go
        uses: ./.github/actions/setup-go-` + goTag + `
        with:
          go-version: "` + tc.goVersion + `"
          cache: false
      - run: |
          echo "go at $(command -v go)"
          go version
          echo "output go-version=${{ steps.go.outputs.go-version }}"
      - uses: ./.github/actions/setup-node-` + nodeTag + `
        with:
          node-version: "` + tc.nodeVersion + `"
      - run: |
          echo "node at $(command -v node)"
          echo "node says $(node --version)"
`
	}
	return "on: push\njobs:\n" + job("node20", "v5", "v4") + job("node24", "v6", "v5")
}

// checkSetupActions checks that both jobs put the tool cache's go and node
// first on PATH (toolCache as the sandbox sees it).
func checkSetupActions(t *testing.T, res *Result, rec *recorder, tc toolchains, toolCache string) {
	t.Helper()
	for _, job := range []string{"node20", "node24"} {
		if resultOf(res, job) != Success {
			t.Fatalf("job %s: %s\n%s", job, resultsString(res), rec.dump())
		}
		out := jobOutput(rec, job)
		for _, want := range []string{
			"go at " + toolCache + "/go/" + tc.goVersion + "/x64/bin/go",
			"go version go" + tc.goVersion + " ",
			"output go-version=" + tc.goVersion,
			"node at " + toolCache + "/node/" + tc.nodeVersion + "/x64/bin/node",
			"node says v" + tc.nodeVersion,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("job %s: missing %q in\n%s", job, want, out)
			}
		}
	}
}

// jobOutput is the job's output and annotation lines.
func jobOutput(rec *recorder, job string) string {
	var lines []string
	for _, ev := range rec.events() {
		if ev.Job == job && (ev.Type == Output || ev.Type == Annotation || ev.Type == Notice) {
			lines = append(lines, ev.Level+":"+ev.Text)
		}
	}
	return strings.Join(lines, "\n")
}

// On the host, setup-go and setup-node find the toolchains in the tool
// cache (--tool-cache) and put them first on PATH, without the network;
// node24 actions run on the host's node 20 (within the tolerance).
func TestSetupActionsHost(t *testing.T) {
	tc := hostToolchains(t)
	repo := t.TempDir()
	cloneSetupActions(t, repo)
	toolCache := t.TempDir()
	fillToolCache(t, toolCache, tc)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, rec := run(t, ctx, setupActionsWorkflow(tc, "x"), Options{
		Backend: host.New(host.Options{ToolCache: toolCache}), RepoDir: repo})
	checkSetupActions(t, res, rec, tc, toolCache)
}

// A JavaScript action on a host without a node (here --node names a
// missing program) fails the job before its first step, naming the action
// and the fix; a job without one runs.
func TestNodeMissingHost(t *testing.T) {
	repo := t.TempDir()
	writeFiles(t, repo, map[string]string{
		".github/actions/js/action.yml": "name: js\nruns:\n  using: node20\n  main: main.js\n",
		".github/actions/js/main.js":    `console.log("JS RAN")`,
		".github/actions/co/action.yml": "name: co\nruns:\n  using: composite\n  steps:\n    - uses: ./.github/actions/js\n",
	})
	src := `on: push
jobs:
  direct:
    runs-on: x
    steps:
      - run: echo FIRST STEP RAN
      - uses: ./.github/actions/js
  nested:
    runs-on: x
    steps:
      - run: echo FIRST STEP RAN
      - uses: ./.github/actions/co
  plain:
    runs-on: x
    steps:
      - run: echo plain ran
`
	res, rec := run(t, nil, src, Options{Backend: host.New(host.Options{Node: "/nonexistent/node"}), RepoDir: repo})
	for _, job := range []string{"direct", "nested"} {
		if resultOf(res, job) != Failure {
			t.Fatalf("job %s: %s", job, resultsString(res))
		}
		out := jobOutput(rec, job)
		if strings.Contains(out, "FIRST STEP RAN") || strings.Contains(out, "JS RAN") {
			t.Errorf("job %s: a step ran:\n%s", job, out)
		}
		for _, want := range []string{"./.github/actions/js (runs.using: node20) needs Node.js 20", "/nonexistent/node: not found", "--node PATH"} {
			if !strings.Contains(jobResult(res, job).Error, want) {
				t.Errorf("job %s: error %q lacks %q", job, jobResult(res, job).Error, want)
			}
		}
	}
	if resultOf(res, "plain") != Success {
		t.Errorf("plain: %s", resultsString(res))
	}
}

// nodeNeed's rule: the version asked for, or at most nodeTolerance majors
// older.
func TestNodeNeed(t *testing.T) {
	for _, tc := range []struct {
		using       string
		want, least int
		ok          bool
	}{
		{"node20", 20, 16, true}, {"Node24", 24, 20, true}, {"node12", 12, 8, true},
		{"node", 0, 0, false}, {"nodejs", 0, 0, false}, {"node-1", 0, 0, false},
	} {
		want, least, ok := nodeNeed(tc.using)
		if want != tc.want || least != tc.least || ok != tc.ok {
			t.Errorf("nodeNeed(%q) = %d, %d, %v; want %d, %d, %v", tc.using, want, least, ok, tc.want, tc.least, tc.ok)
		}
	}
}

// A node a step puts first on PATH (as setup-node does, here a fake that
// fails) does not become the one JavaScript actions run on: the node is
// named by its absolute path, found on the sandbox's own PATH.
func TestNodeActionKeepsItsNode(t *testing.T) {
	repo := t.TempDir()
	writeFiles(t, repo, map[string]string{
		".github/actions/js/action.yml": "name: js\nruns:\n  using: node16\n  main: main.js\n",
		".github/actions/js/main.js":    `console.log("real node " + process.version)`,
	})
	src := `on: push
jobs:
  j:
    runs-on: x
    steps:
      - run: |
          mkdir -p "$RUNNER_TEMP/fake"
          printf '#!/bin/sh\necho FAKE NODE\nexit 3\n' > "$RUNNER_TEMP/fake/node"
          chmod +x "$RUNNER_TEMP/fake/node"
          echo "$RUNNER_TEMP/fake" >> "$GITHUB_PATH"
      - run: node --version || true
      - uses: ./.github/actions/js
`
	res, rec := run(t, nil, src, Options{RepoDir: repo}) // host, node from PATH
	out := jobOutput(rec, "j")
	if resultOf(res, "j") != Success || !strings.Contains(out, "FAKE NODE") || !strings.Contains(out, "real node v") {
		t.Fatalf("%s\n%s", resultsString(res), out)
	}
}
