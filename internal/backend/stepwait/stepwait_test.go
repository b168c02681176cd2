package stepwait

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend/backendtest"
)

// startWait runs Wait on a fresh folder; the returned func ends it
// through the "end" file and checks it exits cleanly.
func startWait(t *testing.T) (string, func()) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "steps", "img-1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	done := make(chan error, 1)
	var log backendtest.SyncBuffer
	go func() { done <- Wait(ctx, dir, 500*time.Millisecond, &log) }()
	return dir, func() {
		defer cancel()
		if err := End(dir); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Wait: %v (log %q)", err, log.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("Wait did not end after the end file")
		}
	}
}

// Steps run one after the other in the same waiter, with their env,
// folder and exit code; output comes merged in order; a program that
// does not exist fails with CodeNotStart and why.
func TestSteps(t *testing.T) {
	dir, end := startWait(t)
	defer end()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	work := t.TempDir()
	var out backendtest.SyncBuffer
	code, err := Run(ctx, dir, 1, &Spec{Argv: []string{"sh", "-c", `echo "one $A $PWD"; echo err >&2; exit 3`}, Env: map[string]string{"A": "a$(B)"}, Dir: work}, &out, RunOptions{})
	if err != nil || code != 3 {
		t.Fatalf("step 1: code %d, err %v", code, err)
	}
	if want := "one a$(B) " + work + "\nerr\n"; out.String() != want {
		t.Errorf("step 1 output %q, want %q", out.String(), want)
	}
	out = backendtest.SyncBuffer{}
	code, err = Run(ctx, dir, 2, &Spec{Argv: []string{"/no/such/program", "x"}}, &out, RunOptions{})
	if code != CodeNotStart || err == nil || !strings.Contains(err.Error(), "/no/such/program") || !strings.Contains(err.Error(), "could not start") {
		t.Errorf("step 2: code %d, err %v", code, err)
	}
	code, err = Run(ctx, dir, 3, &Spec{Argv: []string{"true"}}, &out, RunOptions{})
	if err != nil || code != 0 {
		t.Errorf("step 3: code %d, err %v", code, err)
	}
	// The spec (the step's env, secrets too) and the output followed
	// whole are not kept on the volume.
	for _, f := range []string{specFile(dir, 1), outFile(dir, 1), specFile(dir, 3), outFile(dir, 3)} {
		if exists(f) {
			t.Errorf("%s is still there", filepath.Base(f))
		}
	}
}

// A cancel reaches the step's process as SIGTERM; one that ignores it is
// killed after the grace period.
func TestCancel(t *testing.T) {
	dir, end := startWait(t)
	defer end()
	for i, script := range []string{
		`trap 'echo got TERM; exit 143' TERM; echo started; while :; do sleep 0.05; done`,
		`trap '' TERM; echo started; while :; do sleep 0.05; done`,
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var out backendtest.SyncBuffer
		done := make(chan int, 1)
		go func() {
			code, _ := Run(ctx, dir, i+1, &Spec{Argv: []string{"sh", "-c", script}}, &out, RunOptions{Grace: 5 * time.Second})
			done <- code
		}()
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "started"); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("step %d did not start: %q", i+1, out.String())
			}
		}
		cancel()
		select {
		case code := <-done:
			want := 143
			if i == 1 {
				want = 137 // SIGKILL
			}
			if code != want {
				t.Errorf("step %d: code %d, want %d (output %q)", i+1, code, want, out.String())
			}
			if i == 0 && !strings.Contains(out.String(), "got TERM") {
				t.Errorf("step 1 did not get TERM: %q", out.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("step %d: Run did not return after the cancel", i+1)
		}
	}
}

// Run gives up on a step container that never takes the step.
func TestNoWaiter(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nobody")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, err := Run(ctx, dir, 1, &Spec{Argv: []string{"true"}}, &backendtest.SyncBuffer{}, RunOptions{Take: 100 * time.Millisecond})
	if code != CodeLost || err == nil || !strings.Contains(err.Error(), "did not take") {
		t.Errorf("code %d, err %v", code, err)
	}
}

func TestParseContainers(t *testing.T) {
	in := []Container{{Image: "a:1", Dir: "/__conveyor-steps/image-1", Entrypoint: []string{"/e"}, Cmd: []string{"c"}}}
	cs, err := ParseContainers(FormatContainers(in))
	if err != nil || len(cs) != 1 || cs[0].Image != "a:1" || cs[0].Dir != in[0].Dir || cs[0].Entrypoint[0] != "/e" || cs[0].Cmd[0] != "c" {
		t.Errorf("%+v %v", cs, err)
	}
	if got := strings.Join(cs[0].Argv(nil, nil), " "); got != "/e c" {
		t.Errorf("default argv %q", got)
	}
	if got := strings.Join(cs[0].Argv(nil, []string{"x"}), " "); got != "/e x" {
		t.Errorf("args argv %q", got)
	}
	if got := strings.Join(cs[0].Argv([]string{"/o"}, nil), " "); got != "/o" {
		t.Errorf("entrypoint argv %q", got)
	}
	if cs, err := ParseContainers(""); err != nil || cs != nil {
		t.Errorf("empty: %v %v", cs, err)
	}
	for _, bad := range []string{`{`, `[{"image":"a"}]`, `[{"image":"","dir":"/x"}]`, `[{"image":"a","dir":"rel"}]`} {
		if _, err := ParseContainers(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
