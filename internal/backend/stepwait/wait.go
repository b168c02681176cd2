//go:build unix

package stepwait

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend/runner"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Wait is a step container's main loop: it serves steps 1, 2, ... of dir
// until the "end" file appears while it is idle, or ctx ends (the pod is
// deleted: a running step gets SIGTERM, then SIGKILL after grace).
// Diagnostics go to log.
func Wait(ctx context.Context, dir string, grace time.Duration, log io.Writer) error {
	if err := prepare(dir); err != nil {
		return err
	}
	alive := make(chan struct{})
	defer close(alive)
	go keepAlive(dir, alive)
	for n := 1; ; n++ {
		spec, err := nextSpec(ctx, dir, n)
		if err != nil || spec == nil {
			return err // ctx ended or "end": nil
		}
		res := runStep(ctx, dir, n, spec, grace)
		if res.Error != "" {
			fmt.Fprintf(log, "conveyor step-wait: step %d: %s\n", n, res.Error)
		}
		if err := writeJSON(exitFile(dir, n), res); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// keepAlive touches dir's "alive" file every heartbeat until done closes.
func keepAlive(dir string, done <-chan struct{}) {
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		_ = writeFile(aliveFile(dir), nil)
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// idleWake bounds an inotify wait for the next spec, so that ctx is seen
// (and a missed event, on a file system without inotify, costs no more).
const idleWake = 100 * time.Millisecond

// cancelPoll is how often a running step's cancel file is looked for: a
// cancel need not be as quick as a step's start, and a long step should
// not cost a wake-up every few milliseconds.
const cancelPoll = 50 * time.Millisecond

// nextSpec waits for step n's spec; nil without error when "end" came
// first or ctx ended.
func nextSpec(ctx context.Context, dir string, n int) (*Spec, error) {
	w := watchDir(dir)
	defer w.close()
	t := time.NewTicker(Poll)
	defer t.Stop()
	for {
		var s Spec
		err := readJSON(specFile(dir, n), &s)
		switch {
		case err == nil:
			// The step's env (secrets too) stays on the volume no longer
			// than needed.
			_ = os.Remove(specFile(dir, n))
			return &s, nil
		case !os.IsNotExist(err):
			return nil, err
		case exists(endFile(dir)):
			return nil, nil
		}
		if w != nil {
			// The spec arrives by rename: inotify wakes us at once; ctx
			// is looked at between waits.
			if ctx.Err() != nil {
				return nil, nil
			}
			w.wait(idleWake)
			continue
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-t.C:
		}
	}
}

// runStep runs one step to its end: the process exited and, its process
// group killed, nothing of it is left.
func runStep(ctx context.Context, dir string, n int, s *Spec, grace time.Duration) Result {
	if len(s.Argv) == 0 {
		return Result{Code: CodeNotStart, Error: "the step has no program (the image has no ENTRYPOINT or CMD and the step gives none)"}
	}
	out, err := os.OpenFile(outFile(dir, n), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o666)
	if err != nil {
		return Result{Code: CodeLost, Error: err.Error()}
	}
	defer out.Close()
	_ = os.Chmod(out.Name(), 0o666)
	cmd, err := command(s, out)
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		return Result{Code: CodeNotStart, Error: "the container could not start: " + err.Error()}
	}
	pgid := cmd.Process.Pid
	exited := make(chan struct{})
	go watchCancel(ctx, dir, n, pgid, grace, exited)
	err = cmd.Wait()
	close(exited)
	// What the step left running in the background ends with it, as when
	// its container is removed.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return Result{Code: 0}
	case errors.As(err, &ee):
		ws, _ := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return Result{Code: 128 + int(ws.Signal())}
		}
		return Result{Code: ws.ExitStatus()}
	}
	return Result{Code: CodeLost, Error: err.Error()}
}

// command is the step's process: argv[0] found in the PATH of its env,
// in a process group of its own, output to out.
func command(s *Spec, out *os.File) (*exec.Cmd, error) {
	env := runner.BuildEnv(os.Environ(), s.Env, nil)
	path := ""
	for _, kv := range env {
		if len(kv) > 5 && kv[:5] == "PATH=" {
			path = kv[5:]
		}
	}
	prog, err := runner.LookPath(s.Argv[0], path, s.Dir)
	if err != nil {
		return nil, errs.E("start", errs.NotFound, "exec: %q: executable file not found in $PATH", s.Argv[0])
	}
	cmd := exec.Command(prog, s.Argv[1:]...)
	cmd.Args[0] = s.Argv[0]
	cmd.Env, cmd.Dir = env, s.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd, nil
}

// watchCancel ends the step's process group (SIGTERM, SIGKILL after
// grace) when its cancel file appears or ctx ends, until exited closes.
func watchCancel(ctx context.Context, dir string, n, pgid int, grace time.Duration, exited <-chan struct{}) {
	t := time.NewTicker(cancelPoll)
	defer t.Stop()
	for !exists(cancelFile(dir, n)) {
		select {
		case <-exited:
			return
		case <-ctx.Done():
		case <-t.C:
			continue
		}
		break
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}
