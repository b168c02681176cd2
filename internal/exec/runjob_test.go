package exec

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend/host"
)

const runJobFlow = `
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      v: ${{ steps.s.outputs.v }}
    steps:
      - id: s
        run: echo "v=built" >> "$GITHUB_OUTPUT"
  test:
    needs: build
    runs-on: ubuntu-latest
    strategy:
      matrix:
        n: [1, 2]
    outputs:
      seen: ${{ steps.s.outputs.seen }}
    steps:
      - id: s
        run: echo "seen=${{ needs.build.outputs.v }}-${{ needs.build.result }}" >> "$GITHUB_OUTPUT"
  report:
    needs: test
    if: always()
    runs-on: ubuntu-latest
    steps:
      - run: echo "test was ${{ needs.test.result }}"
  gated:
    needs: test
    runs-on: ubuntu-latest
    steps:
      - run: echo never
`

func TestRunJobWithNeedsFromElsewhere(t *testing.T) {
	p := compile(t, runJobFlow)
	pw := p.Workflows[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	newExec := func(rec *recorder) *Executor {
		h := host.New(host.Options{})
		return New(Options{Backend: h, Host: h, Platforms: map[string]string{"ubuntu-latest": "-self-hosted"},
			Reporter: rec, WorkDir: t.TempDir(), Event: Event{Name: "push", Ref: "refs/heads/main", SHA: "abc", Repository: "o/r"}})
	}

	rec0 := &recorder{}
	out, err := newExec(rec0).RunJob(ctx, pw, "build", nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.Result != Success || out.Outputs["v"] != "built" || len(out.Instances) != 1 {
		t.Fatalf("build: %+v %+v\n%s", out, out.Instances[0], rec0.dump())
	}

	out, err = newExec(&recorder{}).RunJob(ctx, pw, "test", map[string]Need{"build": {Result: out.Result, Outputs: out.Outputs}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Result != Success || out.Outputs["seen"] != "built-success" || len(out.Instances) != 2 {
		t.Fatalf("test: %+v", out)
	}

	rec := &recorder{}
	out, err = newExec(rec).RunJob(ctx, pw, "report", map[string]Need{"test": {Result: Failure}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Result != Success || !rec.hasOutput("report", "test was failure") {
		t.Fatalf("report: %+v\n%s", out, rec.dump())
	}

	out, err = newExec(&recorder{}).RunJob(ctx, pw, "gated", map[string]Need{"test": {Result: Failure}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Result != Skipped {
		t.Fatalf("gated after a failed need: %s", out.Result)
	}

	if _, err := newExec(&recorder{}).RunJob(ctx, pw, "nope", nil); err == nil {
		t.Fatal("unknown job: no error")
	}
}

const keepFlow = `
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    strategy:
      fail-fast: false
      matrix:
        n: [1, 2, 3]
    outputs:
      last: ${{ steps.s.outputs.v }}
    steps:
      - id: s
        run: |
          echo "ran ${{ matrix.n }}" >> "$MARKS"
          echo "v=from-${{ matrix.n }}" >> "$GITHUB_OUTPUT"
          test "${{ matrix.n }}" != 2 || test -f "$FIXED"
`

// TestRunJobKeepsInstances: a re-run of failed jobs runs only the matrix
// instances that did not succeed; the kept ones count with their earlier
// result and outputs.
func TestRunJobKeepsInstances(t *testing.T) {
	p := compile(t, keepFlow)
	pw := p.Workflows[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	marks, fixed := dir+"/marks", dir+"/fixed"
	newExec := func(rec *recorder, keep []*JobResult) *Executor {
		h := host.New(host.Options{})
		return New(Options{Backend: h, Host: h, Platforms: map[string]string{"ubuntu-latest": "-self-hosted"},
			Reporter: rec, WorkDir: t.TempDir(), Keep: keep, Env: map[string]string{"MARKS": marks, "FIXED": fixed},
			Event: Event{Name: "push", Ref: "refs/heads/main", SHA: "abc", Repository: "o/r"}})
	}
	first, err := newExec(&recorder{}, nil).RunJob(ctx, pw, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if first.Result != Failure || len(first.Instances) != 3 {
		t.Fatalf("first attempt: %+v", first)
	}
	var keep []*JobResult
	for _, in := range first.Instances {
		if in.Result == Success {
			keep = append(keep, in)
		}
	}
	if len(keep) != 2 {
		t.Fatalf("first attempt kept %d successful instances, want 2: %+v", len(keep), first.Instances)
	}
	if err := os.WriteFile(fixed, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(marks, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	again, err := newExec(rec, keep).RunJob(ctx, pw, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Result != Success || len(again.Instances) != 3 {
		t.Fatalf("re-run: %+v\n%s", again, rec.dump())
	}
	b, _ := os.ReadFile(marks)
	if string(b) != "ran 2\n" {
		t.Errorf("re-run ran %q, want only instance 2", b)
	}
	reused := 0
	for _, in := range again.Instances {
		if in.Reused {
			reused++
		}
	}
	if reused != 2 {
		t.Errorf("%d instances marked reused, want 2", reused)
	}
	if v := again.Outputs["last"]; v == "" || !strings.HasPrefix(v, "from-") {
		t.Errorf("outputs after the re-run: %v", again.Outputs)
	}
}
