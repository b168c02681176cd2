package procgroup

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startTree starts a shell that starts a long sleep in the background,
// says its pid and waits; it returns the command and the sleep's pid.
func startTree(t *testing.T, ctx context.Context, group bool) (*exec.Cmd, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, "sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!; wait")
	if group {
		KillOnCancel(cmd, 5*time.Second)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("child pid %q: %v", line, err)
	}
	return cmd, pid
}

// alive reports whether pid runs (a zombie waiting for its reaper does not).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// gone waits up to 10 s for pid to stop running.
func gone(pid int) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func TestKillOnCancelKillsChildren(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd, child := startTree(t, ctx, true)
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	if !alive(child) {
		t.Fatalf("child %d is not running before the cancel", child)
	}
	cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Wait after cancel: nil error, want the kill")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Wait did not return within 15 s of the cancel")
	}
	if !gone(child) {
		t.Fatalf("child %d still runs after its command was cancelled", child)
	}
}

// The control: without KillOnCancel only the shell dies and its child
// lives on, which is what the test above would catch.
func TestWithoutKillOnCancelChildSurvives(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd, child := startTree(t, ctx, false)
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	cancel()
	_ = cmd.Wait()
	if !alive(child) {
		t.Fatalf("child %d died with its shell; the test above proves nothing here", child)
	}
}
