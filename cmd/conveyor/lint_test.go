package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodWorkflow = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n"

func TestLintMain(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yml", goodWorkflow)
	bad := writeFile(t, dir, "bad.yml", "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    needs: nope\n    steps:\n      - run: echo ${{ github.sha\n")
	writeFile(t, dir, "sub/ignored.txt", "not yaml")
	risky := writeFile(t, t.TempDir(), "risky.yml", "on: issues\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo \"${{ github.event.issue.title }}\"\n")
	tests := []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"clean file", []string{good}, 0, nil},
		{"problems", []string{bad}, 1, []string{bad + ":5:12: Job 'build' depends on unknown job 'nope'.", bad + ":7:19: The expression is not closed"}},
		{"dir", []string{dir}, 1, []string{"bad.yml:5:12:"}},
		{"warning only", []string{risky}, 0, []string{risky + ":6:14: warning: github.event.issue.title is untrusted input"}},
		{"missing", []string{filepath.Join(dir, "nope.yml")}, 2, nil},
		{"bad flag", []string{"-x"}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := lintMain(context.Background(), tt.args, &out, &errOut)
			if code != tt.code {
				t.Fatalf("code = %d, want %d; stdout %q stderr %q", code, tt.code, out.String(), errOut.String())
			}
			for _, c := range tt.contains {
				if !strings.Contains(out.String(), c) {
					t.Errorf("stdout %q lacks %q", out.String(), c)
				}
			}
		})
	}
}

func TestLintMainDefaultDirs(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, ".github/workflows/ci.yaml", goodWorkflow)
	writeFile(t, dir, ".conveyor/x.yml", "on: push\njobs:\n  b:\n    steps:\n      - run: x\n")
	t.Chdir(dir)
	var out, errOut bytes.Buffer
	code := lintMain(context.Background(), nil, &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), filepath.Join(".conveyor", "x.yml")+":4:5: Required property is missing: runs-on") {
		t.Fatalf("code %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}

// conveyor lint follows local reusable workflows: a called workflow that
// asks for more permissions than its caller allows is reported at the
// calling job.
func TestLintMainFollowsLocalReusableWorkflows(t *testing.T) {
	dir := t.TempDir()
	caller := writeFile(t, dir, ".github/workflows/ci.yml",
		"on: push\npermissions:\n  issues: read\njobs:\n  call:\n    uses: ./.github/workflows/called.yml\n")
	writeFile(t, dir, ".github/workflows/called.yml",
		"on: workflow_call\npermissions:\n  issues: write\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n")
	var out, errOut bytes.Buffer
	code := lintMain(context.Background(), []string{caller}, &out, &errOut)
	want := caller + ":5:3: Error calling workflow './.github/workflows/called.yml'."
	if code != 1 || !strings.Contains(out.String(), want) {
		t.Fatalf("code %d, stdout %q; want 1 and %q", code, out.String(), want)
	}
	if got := repoRootOf(caller); got != dir {
		t.Errorf("repoRootOf(%s) = %s, want %s", caller, got, dir)
	}
	resolve := localWorkflows(dir)
	for _, uses := range []string{"../outside.yml", "./../../etc/passwd", "o/r/.github/workflows/x.yml@v1", "./.github/workflows/missing.yml"} {
		if _, ok := resolve(uses); ok {
			t.Errorf("resolve(%q) found a file", uses)
		}
	}
}

// A workflow named action.yml is a workflow (GitHub runs it); action.yml
// elsewhere is action metadata. --strict applies the language service's
// schema to on:, which rejects what GitHub's runtime takes.
func TestLintActionYmlWorkflowAndStrict(t *testing.T) {
	dir := t.TempDir()
	wf := writeFile(t, dir, ".github/workflows/action.yml", "on:\n  release:\n    branches: [main]\n"+strings.TrimPrefix(goodWorkflow, "on: push\n"))
	act := writeFile(t, dir, "act/action.yml", "name: a\nruns:\n  using: composite\n  steps:\n    - run: echo\n      shell: bash\n")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{wf}, 0, ""},
		{[]string{act}, 0, ""},
		{[]string{"--strict", wf}, 1, wf + ":3:5: Unexpected value 'branches'"},
	} {
		var out, errOut bytes.Buffer
		if code := lintMain(context.Background(), tc.args, &out, &errOut); code != tc.code || !strings.Contains(out.String(), tc.want) {
			t.Errorf("lint %v: code %d, stdout %q, stderr %q; want %d and %q", tc.args, code, out.String(), errOut.String(), tc.code, tc.want)
		}
	}
}
