package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeDemo runs the README's first command (on the host backend) and
// checks what it promises: jobs succeed and the secret is masked.
func TestReadmeDemo(t *testing.T) {
	var out, errOut bytes.Buffer
	code := runMain(context.Background(), []string{"-C", "../../examples/demo", "--backend", "host", "--secret", "DEMO_TOKEN=s3cret-value"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	s := out.String()
	for _, want := range []string{"[build (go)]", "[build (python)]", "testing demo-", "token is ***", "cleanup runs", "JOB", "### go build packed"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "s3cret-value") {
		t.Errorf("secret leaked:\n%s", s)
	}
}

func writeWorkflow(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	wd := filepath.Join(dir, ".github", "workflows")
	if err := os.MkdirAll(wd, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(wd, "ci.yml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		name, body string
		args       []string
		code       int
		stderr     string
	}{
		{"success", "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n", nil, 0, ""},
		{"failure", "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: exit 4\n", nil, 1, ""},
		{"invalid", "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: nope\n    steps:\n      - run: 'true'\n", nil, 1, "ci.yml:5:"},
		{"empty secret", "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n", []string{"--secret", "X="}, 2, "empty"},
		{"bad network policy", "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n", []string{"--network-policy", "closed"}, 2, "unknown network policy"},
		{"network policy on the host", "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n", []string{"--network-policy", "no-private"}, 1, ""},
		{"unknown job", "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n", []string{"-j", "zzz"}, 2, "zzz"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeWorkflow(t, tc.body)
			var out, errOut bytes.Buffer
			args := append([]string{"-C", dir, "--backend", "host"}, tc.args...)
			if code := runMain(context.Background(), args, &out, &errOut); code != tc.code {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, tc.code, out.String(), errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.stderr) {
				t.Fatalf("stderr %q lacks %q", errOut.String(), tc.stderr)
			}
		})
	}
}

func TestRunPlanJSON(t *testing.T) {
	dir := writeWorkflow(t, "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    strategy:\n      matrix:\n        n: [1, 2]\n    steps:\n      - run: echo ${{ matrix.n }}\n  b:\n    needs: a\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n")
	var out, errOut bytes.Buffer
	if code := runMain(context.Background(), []string{"--plan", "-C", dir}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var p struct {
		Workflows []struct {
			Jobs []struct {
				ID     string
				Needs  []string
				Matrix []any
				Steps  []struct{ Kind string }
			}
		}
	}
	if err := json.Unmarshal(out.Bytes(), &p); err != nil {
		t.Fatalf("plan is not JSON: %v\n%s", err, out.String())
	}
	jobs := p.Workflows[0].Jobs
	if len(jobs) != 2 || len(jobs[0].Matrix) != 2 || jobs[1].Needs[0] != "a" || jobs[1].Steps[0].Kind != "checkout" {
		t.Fatalf("unexpected plan: %s", out.String())
	}
}

// TestRunRefusesWorkflowsOutsideTheRepository: conveyor run neither reads
// a workflow file linked out of the repository (to a key, to /dev/zero)
// nor runs a local uses: that climbs out of it; lint reports where.
func TestRunRefusesWorkflowsOutsideTheRepository(t *testing.T) {
	dir := writeWorkflow(t, "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: ./../../etc\n")
	var out, errOut bytes.Buffer
	if code := runMain(context.Background(), []string{"-C", dir, "--backend", "host"}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), "ci.yml:6:15:") || !strings.Contains(errOut.String(), "leaves the repository") {
		t.Errorf("stderr lacks file:line:col of the escape: %s", errOut.String())
	}

	dir = writeWorkflow(t, "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n")
	secret := filepath.Join(t.TempDir(), "id_rsa")
	if err := os.WriteFile(secret, []byte("PRIVATE-KEY-MATERIAL\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"zero.yml": "/dev/zero", "key.yml": secret} {
		link := filepath.Join(dir, ".github", "workflows", name)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		out.Reset()
		errOut.Reset()
		// The unreadable file fails (exit 1); the valid one beside it runs.
		if code := runMain(context.Background(), []string{"-C", dir, "--backend", "host"}, &out, &errOut); code != 1 {
			t.Fatalf("%s: exit %d, want 1\n%s\n%s", name, code, out.String(), errOut.String())
		}
		if strings.Contains(out.String()+errOut.String(), "PRIVATE-KEY") || !strings.Contains(errOut.String(), name) {
			t.Errorf("%s: %s%s", name, out.String(), errOut.String())
		}
		os.Remove(link)
	}
}
