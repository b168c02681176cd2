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
