package host

import (
	"context"
	"io"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/backendtest"
	"github.com/conveyor-ci/conveyor/internal/backend/docker"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/testimage"
)

func setup(t *testing.T) backend.Sandbox {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sb, err := New(Options{}).Setup(ctx, &backend.JobSpec{ID: "j1", Name: "test", JobDir: t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

func TestConformance(t *testing.T) { backendtest.Run(t, setup) }

func TestServicesRefused(t *testing.T) {
	_, err := New(Options{}).Setup(context.Background(), &backend.JobSpec{
		ID: "j", Name: "build (linux)", JobDir: t.TempDir(),
		Services: []backend.Service{{Name: "postgres", Image: "postgres"}},
	}, io.Discard)
	if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "build (linux)") {
		t.Fatalf("err = %v", err)
	}
}

func TestHostEnvironmentAndPgid(t *testing.T) {
	sb := setup(t)
	t.Setenv("CONVEYOR_TEST_HOST_VAR", "from-host")
	out, _ := backendtest.Exec(t, sb, &backend.Process{Argv: []string{"sh", "-c", "echo $CONVEYOR_TEST_HOST_VAR; ps -o pgid= -p $$; echo $$"}})
	f := strings.Fields(out)
	if len(f) != 3 || f[0] != "from-host" || f[1] != f[2] || f[1] == strconv.Itoa(syscall.Getpgrp()) {
		t.Errorf("got %q: want host env and the step leading its own process group", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sb.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
}

// Teardown kills background processes that outlived their step.
func TestTeardownKillsBackground(t *testing.T) {
	sb := setup(t)
	out, _ := backendtest.Exec(t, sb, &backend.Process{Argv: []string{"sh", "-c", "sleep 100 >/dev/null 2>&1 & echo $!"}})
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sb.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sb.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	for syscall.Kill(pid, 0) == nil {
		if ctx.Err() != nil {
			t.Fatalf("pid %d survived teardown", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The docker backend runs host jobs' container actions.
var _ ContainerEngine = (*docker.Backend)(nil)

func TestContainerRunnerAbility(t *testing.T) {
	b := New(Options{Containers: &docker.Backend{}})
	sb, err := b.Setup(context.Background(), &backend.JobSpec{ID: "j", JobDir: t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Teardown(context.Background())
	if _, ok := sb.(backend.ContainerRunner); !ok {
		t.Error("host sandbox with a container engine is no ContainerRunner")
	}
	plain := setup(t)
	defer plain.Teardown(context.Background())
	if _, ok := plain.(backend.ContainerRunner); ok {
		t.Error("host sandbox without a container engine claims to run containers")
	}
}

// With an out-of-process runner, steps still run, and closing the runner's
// input (what the kernel does when this process dies, even by kill -9)
// kills every process the job started.
func TestOutOfProcessRunner(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bin, _, err := testimage.Conveyor(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sb, err := New(Options{Runner: []string{bin, "entrypoint"}}).Setup(ctx, &backend.JobSpec{ID: "j", Name: "j", JobDir: t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	out, code := backendtest.Exec(t, sb, &backend.Process{Argv: []string{"sh", "-c", "sleep 100 >/dev/null 2>&1 & echo $!; exit 3"}})
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || code != 3 {
		t.Fatalf("out %q code %d", out, code)
	}
	if syscall.Kill(pid, 0) != nil {
		t.Fatal("background process not running")
	}
	hs := sb.(*Sandbox)
	hs.once.Do(hs.stop) // close the runner's input, as a dying parent does
	for syscall.Kill(pid, 0) == nil {
		if ctx.Err() != nil {
			t.Fatalf("pid %d survived the runner's input closing", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Jobs after the first get a runner started ahead (warm): steps run in
// their own job's folder, each job has its own runner, and a warm runner
// that died meanwhile is not handed out.
func TestWarmRunner(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bin, _, err := testimage.Conveyor(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := New(Options{Runner: []string{bin, "entrypoint"}})
	job := func(name string) (backend.Sandbox, string) {
		dir := t.TempDir()
		sb, err := b.Setup(ctx, &backend.JobSpec{ID: name, Name: name, JobDir: dir}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return sb, dir
	}
	waitWarm := func() *runnerProc {
		t.Helper()
		for {
			select {
			case p := <-b.warm:
				return p
			case <-ctx.Done():
				t.Fatal("no runner was started ahead")
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	first, dir1 := job("one")
	w := waitWarm() // the one started for the next job
	b.warm <- w
	second, dir2 := job("two")
	if got := second.(*Sandbox).client; got != w.client {
		t.Error("the second job did not get the warm runner")
	}
	for _, c := range []struct {
		sb  backend.Sandbox
		dir string
	}{{first, dir1}, {second, dir2}} {
		out, code := backendtest.Exec(t, c.sb, &backend.Process{Argv: []string{"sh", "-c", "pwd; echo $PPID"}})
		if lines := strings.Fields(out); code != 0 || len(lines) != 2 || lines[0] != c.dir {
			t.Errorf("step in %s: %q (code %d)", c.dir, out, code)
		}
	}
	// Each job's runner is its own: ending the first leaves the second working.
	if err := first.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, code := backendtest.Exec(t, second, &backend.Process{Argv: []string{"true"}}); code != 0 {
		t.Errorf("second job after the first's teardown: code %d", code)
	}
	if err := second.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	dead := waitWarm()
	dead.stop()
	b.warm <- dead
	third, dir3 := job("three")
	if third.(*Sandbox).client == dead.client {
		t.Fatal("a dead warm runner was handed out")
	}
	if out, code := backendtest.Exec(t, third, &backend.Process{Argv: []string{"pwd"}}); code != 0 || strings.TrimSpace(out) != dir3 {
		t.Errorf("third job: %q (code %d)", out, code)
	}
	_ = third.Teardown(ctx)
}
