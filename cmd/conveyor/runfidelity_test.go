package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runIn runs conveyor run on the host backend in dir.
func runIn(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runMain(context.Background(), append([]string{"-C", dir, "--backend", "host"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// gitRepo makes a git repository on branch with the files, committed.
func gitRepo(t *testing.T, branch string, files map[string]string) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := t.TempDir()
	for name, body := range files {
		writeFile(t, dir, name, body)
	}
	git(t, dir, "init", "-q", "-b", branch)
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-qm", "first")
	return dir
}

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// One invalid file does not stop the valid ones: it is a failed entry of
// the summary at its file:line:col, and the exit code is 1.
func TestRunInvalidFileDoesNotStopOthers(t *testing.T) {
	dir := writeWorkflow(t, "on: push\njobs:\n  good:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo good-ran\n")
	writeFile(t, dir, ".github/workflows/bad.yml", "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: nope\n    steps:\n      - run: 'true'\n")
	code, out, errOut := runIn(t, dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "good-ran") {
		t.Errorf("the valid workflow did not run:\n%s", out)
	}
	want := "invalid workflow: .github/workflows/bad.yml:5:12: Job 'a' depends on unknown job 'nope'."
	if !strings.Contains(out, "failure") || !strings.Contains(out, want) {
		t.Errorf("summary lacks the invalid file as failed (%q):\n%s", want, out)
	}
}

// The on: filters apply as on the server: a tag-only workflow does not run
// on a branch push, a branch-filtered one does; a tag push runs the first.
func TestRunAppliesRefFilters(t *testing.T) {
	dir := gitRepo(t, "main", map[string]string{
		".github/workflows/release.yml": "on:\n  push:\n    tags: ['v*']\njobs:\n  rel:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo release-ran\n",
		".github/workflows/ci.yml":      "on:\n  push:\n    branches: [main]\njobs:\n  ci:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ci-ran\n",
	})
	code, out, errOut := runIn(t, dir)
	if code != 0 || strings.Contains(out, "release-ran") || !strings.Contains(out, "ci-ran") {
		t.Fatalf("branch push: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "release.yml does not run: branch main: on.push filters tags only") {
		t.Errorf("stderr does not say why release.yml did not run:\n%s", errOut)
	}
	ev := writeFile(t, t.TempDir(), "ev.json", `{"ref": "refs/tags/v1.2.0"}`)
	code, out, errOut = runIn(t, dir, "-e", ev)
	if code != 0 || !strings.Contains(out, "release-ran") || strings.Contains(out, "ci-ran") {
		t.Fatalf("tag push: exit %d\n%s\n%s", code, out, errOut)
	}
}

// paths filters see the changed files from git: the last commit and the
// working tree.
func TestRunAppliesPathsFilters(t *testing.T) {
	dir := gitRepo(t, "main", map[string]string{
		".github/workflows/docs.yml": "on:\n  push:\n    paths: ['docs/**']\njobs:\n  docs:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo docs-ran\n",
		"src/a.go":                   "package a",
	})
	writeFile(t, dir, "src/a.go", "package a // changed")
	git(t, dir, "commit", "-qam", "code only")
	code, out, errOut := runIn(t, dir)
	if code != 0 || strings.Contains(out, "docs-ran") || !strings.Contains(errOut, "paths: no changed file matches [docs/**]") {
		t.Fatalf("code change: exit %d\n%s\n%s", code, out, errOut)
	}
	writeFile(t, dir, "docs/new.md", "# new") // untracked, in the working tree
	code, out, errOut = runIn(t, dir)
	if code != 0 || !strings.Contains(out, "docs-ran") {
		t.Fatalf("docs change: exit %d\n%s\n%s", code, out, errOut)
	}
}

// GitHub's runtime takes any value under an event: release: {branches}
// runs on a release (types unfiltered without a payload action).
func TestRunLooseEventValues(t *testing.T) {
	dir := writeWorkflow(t, "on:\n  release:\n    types: [published]\n    branches: [main]\n  workflow_dispatch: []\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo loose-ran\n")
	for _, ev := range []string{"release", "workflow_dispatch"} {
		code, out, errOut := runIn(t, dir, ev)
		if code != 0 || !strings.Contains(out, "loose-ran") {
			t.Errorf("%s: exit %d\n%s\n%s", ev, code, out, errOut)
		}
	}
}

// A job for a runner no backend has is skipped, with the reason in the
// summary.
func TestRunForeignRunnerSkipped(t *testing.T) {
	dir := writeWorkflow(t, "on: push\njobs:\n  win:\n    runs-on: windows-latest\n    steps:\n      - run: echo should-not-run\n  mac:\n    runs-on: [macos-14]\n    steps:\n      - run: echo should-not-run\n  lin:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo linux-ran\n")
	code, out, errOut := runIn(t, dir)
	if code != 0 || strings.Contains(out, "should-not-run") || !strings.Contains(out, "linux-ran") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"no runner for windows-latest; use -P windows-latest=IMAGE", "no runner for macos-14; use -P macos-14=IMAGE"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	// Mapped explicitly, it runs.
	code, out, _ = runIn(t, dir, "-P", "windows-latest=-self-hosted", "-j", "win")
	if code != 0 || !strings.Contains(out, "should-not-run") {
		t.Errorf("mapped windows-latest did not run: %d\n%s", code, out)
	}
}

func TestRunListAndDryRun(t *testing.T) {
	dir := writeWorkflow(t, "name: CI\non: [push, pull_request]\njobs:\n  build:\n    runs-on: ubuntu-latest\n    strategy:\n      matrix:\n        go: ['1.22', '1.23']\n    steps:\n      - run: touch marker\n  test:\n    name: Tests\n    needs: build\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n")
	writeFile(t, dir, ".github/workflows/rel.yml", "on: release\njobs:\n  pub:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n")
	code, out, errOut := runIn(t, dir, "-l")
	if code != 0 {
		t.Fatalf("-l: exit %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "Stage  Job ID  Job name  Workflow name") ||
		!strings.Contains(lines[2], "1      test    Tests     CI") || !strings.Contains(lines[1], "push,pull_request") || !strings.Contains(lines[3], "pub") {
		t.Errorf("-l:\n%s", out)
	}
	if _, out, _ = runIn(t, dir, "release", "--list"); strings.Contains(out, "build") || !strings.Contains(out, "pub") {
		t.Errorf("--list for release:\n%s", out)
	}
	code, out, errOut = runIn(t, dir, "-n", "--matrix", "go:1.23")
	if code != 0 {
		t.Fatalf("-n: exit %d %s", code, errOut)
	}
	for _, want := range []string{"dry run: push would run 1 workflow(s)", "job build: runs-on ubuntu-latest", "1 of 2 matrix legs: (1.23)", "1. Run touch marker [run]", "job test (needs build)", "1. actions/checkout@v4 [checkout]"} {
		if !strings.Contains(out, want) {
			t.Errorf("-n output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "marker")); err == nil {
		t.Error("--dryrun ran a step")
	}
}

// --matrix runs only the matching legs.
func TestRunMatrixFilter(t *testing.T) {
	dir := writeWorkflow(t, "on: push\njobs:\n  m:\n    runs-on: ubuntu-latest\n    strategy:\n      matrix:\n        os: [a, b]\n        n: [1, 2]\n    steps:\n      - run: echo leg-${{ matrix.os }}-${{ matrix.n }}\n")
	code, out, errOut := runIn(t, dir, "--matrix", "os:b", "--matrix", "n:2")
	if code != 0 || !strings.Contains(out, "leg-b-2") || strings.Contains(out, "leg-a-") || strings.Contains(out, "leg-b-1") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = runIn(t, dir, "--matrix", "os:zzz")
	if code != 0 || !strings.Contains(out, "no matrix leg matches --matrix os:zzz") {
		t.Errorf("no leg: exit %d\n%s", code, out)
	}
}

// .secrets, .env, .vars and .input are read from the repository when
// present; -s and --input win over them; -e is --eventpath.
func TestRunDefaultFilesAndShortFlags(t *testing.T) {
	dir := writeWorkflow(t, "on:\n  workflow_dispatch:\n    inputs:\n      who:\n        type: string\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo \"s=${{ secrets.TOKEN }} e=$FROM_ENV v=${{ vars.COLOR }} i=${{ inputs.who }} t=${{ github.event.extra }}\"\n")
	writeFile(t, dir, ".secrets", "TOKEN=from-file-secret\n")
	writeFile(t, dir, ".env", "FROM_ENV=dotenv\n")
	writeFile(t, dir, ".vars", "COLOR=blue\n")
	writeFile(t, dir, ".input", "who=file\n")
	ev := writeFile(t, t.TempDir(), "ev.json", `{"extra": "payload"}`)
	code, out, errOut := runIn(t, dir, "workflow_dispatch", "-e", ev)
	if code != 0 || !strings.Contains(out, "s=*** e=dotenv v=blue i=file t=payload") {
		t.Fatalf("defaults: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runIn(t, dir, "workflow_dispatch", "-s", "TOKEN=flag-secret", "--input", "who=flag", "--env-file", writeFile(t, t.TempDir(), "e", "FROM_ENV=explicit\n"))
	if code != 0 || !strings.Contains(out, "s=*** e=explicit v=blue i=flag") || strings.Contains(out, "flag-secret") {
		t.Fatalf("flags: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestRunUsageErrors(t *testing.T) {
	dir := writeWorkflow(t, "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n")
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"--help"}, 0, "usage: conveyor run [EVENT]", ""},
		{[]string{"--version"}, 0, "conveyor ", ""},
		{[]string{"--dryrn"}, 2, "", "did you mean --dryrun?"},
		{[]string{"--secret-fil", "x"}, 2, "", "did you mean --secret-file?"},
		{[]string{"-j", "biuld"}, 2, "", `no job "biuld" in the workflows; did you mean "build"?`},
		{[]string{"psuh"}, 2, "", `unknown event "psuh"; did you mean "push"?` + "\nknown events: branch_protection_rule,"},
	} {
		var out, errOut bytes.Buffer
		code := runMain(context.Background(), append(tc.args, "-C", dir, "--backend", "host"), &out, &errOut)
		if tc.args[0] == "psuh" {
			code = runMain(context.Background(), []string{"psuh", "-C", dir}, &out, &errOut)
		}
		if code != tc.code || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errOut.String(), tc.stderr) {
			t.Errorf("run %v: exit %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, out.String(), errOut.String(), tc.code, tc.stdout, tc.stderr)
		}
	}
}
