package exec

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend/host"
)

const quotaFlow = `
on: push
jobs:
  long:
    runs-on: ubuntu-latest
    timeout-minutes: 600
    steps:
      - run: sleep 30
  short:
    runs-on: ubuntu-latest
    timeout-minutes: 5
    strategy:
      matrix:
        n: [1, 2]
    steps:
      - run: sleep 0.2
  nowhere:
    runs-on: windows-latest
    steps:
      - run: echo never
`

func quotaExec(t *testing.T, rec *recorder, maxTimeout time.Duration) *Executor {
	h := host.New(host.Options{})
	return New(Options{Backend: h, Host: h, Platforms: map[string]string{"ubuntu-latest": "-self-hosted"},
		Reporter: rec, WorkDir: t.TempDir(), MaxTimeout: maxTimeout,
		Event: Event{Name: "push", Ref: "refs/heads/main", SHA: "abc", Repository: "o/r"}})
}

// TestMaxTimeoutCapsTheJob: a job asking for more than the quota's maximum
// timeout is stopped at the maximum, and its log says so.
func TestMaxTimeoutCapsTheJob(t *testing.T) {
	pw := compile(t, quotaFlow).Workflows[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rec := &recorder{}
	out, err := quotaExec(t, rec, 500*time.Millisecond).RunJob(ctx, pw, "long", nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.Result != Failure {
		t.Fatalf("result %s, want failure after the capped timeout", out.Result)
	}
	var capped, exceeded bool
	for _, ev := range rec.events() {
		capped = capped || strings.Contains(ev.Text, "timeout of 10h0m0s is capped to 500ms")
		exceeded = exceeded || strings.Contains(ev.Text, "exceeded the maximum execution time of 500ms")
	}
	if !capped || !exceeded {
		t.Fatalf("log lacks the cap (%v) or the timeout at the cap (%v): %+v", capped, exceeded, rec.events())
	}
}

// TestMaxTimeoutAboveTheJobs: a job asking for less than the maximum keeps
// its own timeout and nothing is said.
func TestMaxTimeoutAboveTheJobs(t *testing.T) {
	pw := compile(t, quotaFlow).Workflows[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rec := &recorder{}
	out, err := quotaExec(t, rec, time.Hour).RunJob(ctx, pw, "short", nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.Result != Success {
		t.Fatalf("result %s, want success", out.Result)
	}
	for _, ev := range rec.events() {
		if strings.Contains(ev.Text, "capped") {
			t.Fatalf("a job under the maximum says %q", ev.Text)
		}
	}
}

// TestRunJobMetersSandboxTime: the sandboxes of a job's matrix legs add up
// (each slept 0.2 s inside its sandbox); a job that got no sandbox costs
// nothing.
func TestRunJobMetersSandboxTime(t *testing.T) {
	pw := compile(t, quotaFlow).Workflows[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := quotaExec(t, &recorder{}, 0)
	out, err := e.RunJob(ctx, pw, "short", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Instances) != 2 || out.Build < 400*time.Millisecond {
		t.Fatalf("%d instances, build %v; want 2 legs of at least 0.2 s each", len(out.Instances), out.Build)
	}
	if e.SandboxTime() != out.Build {
		t.Errorf("SandboxTime %v, RunJob's build %v: want equal on a fresh executor", e.SandboxTime(), out.Build)
	}
	skipped, err := quotaExec(t, &recorder{}, 0).RunJob(ctx, pw, "nowhere", nil)
	if err != nil {
		t.Fatal(err)
	}
	if skipped.Result != Skipped || skipped.Build != 0 {
		t.Fatalf("job without a runner: %s, build %v; want skipped and 0", skipped.Result, skipped.Build)
	}
}
