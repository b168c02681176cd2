// Package backendtest is a conformance suite every backend.Sandbox must
// pass. The commands it runs need only a POSIX sh with echo, seq, pwd, cat,
// kill and sleep (busybox will do).
package backendtest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
)

// Run runs the suite. setup makes a fresh sandbox for one job whose JobDir
// it creates; the suite tears it down.
func Run(t *testing.T, setup func(t *testing.T) backend.Sandbox) {
	t.Run("Basics", func(t *testing.T) { basics(t, setup(t)) })
	t.Run("Cancel", func(t *testing.T) { cancel(t, setup(t)) })
	t.Run("LargeOutput", func(t *testing.T) { largeOutput(t, setup(t)) })
	t.Run("TeardownTwice", func(t *testing.T) {
		sb := setup(t)
		exec(t, sb, &backend.Process{Argv: []string{"true"}})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := sb.Teardown(ctx); err != nil {
			t.Fatal(err)
		}
		if err := sb.Teardown(ctx); err != nil {
			t.Fatalf("second teardown: %v", err)
		}
	})
}

// Exec runs p with a timeout and returns its output and code; an error
// fails the test.
func Exec(t *testing.T, sb backend.Sandbox, p *backend.Process) (string, int) {
	t.Helper()
	return exec(t, sb, p)
}

func exec(t *testing.T, sb backend.Sandbox, p *backend.Process) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var b SyncBuffer
	code, err := sb.Exec(ctx, p, &b)
	if err != nil {
		t.Fatalf("Exec %q: %v (output %q)", p.Argv, err, b.String())
	}
	return b.String(), code
}

func teardown(t *testing.T, sb backend.Sandbox) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := sb.Teardown(ctx); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
}

func basics(t *testing.T, sb backend.Sandbox) {
	teardown(t, sb)
	d := sb.Dirs()
	if err := os.MkdirAll(filepath.Join(d.Host, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.Host, "bin", "mytool"), []byte("#!/bin/sh\necho tool \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		p    backend.Process
		out  string
		code int
	}{
		{"echo", backend.Process{Argv: []string{"echo", "hello"}}, "hello\n", 0},
		{"exit code", backend.Process{Argv: []string{"sh", "-c", "exit 42"}}, "", 42},
		{"env", backend.Process{Argv: []string{"sh", "-c", `echo "$A-$B"`}, Env: map[string]string{"A": "x y", "B": "ü"}}, "x y-ü\n", 0},
		{"cwd", backend.Process{Argv: []string{"pwd"}, Dir: d.Sandbox + "/bin"}, d.Sandbox + "/bin\n", 0},
		{"path prepend", backend.Process{Argv: []string{"mytool", "a"}, PathPrepend: []string{d.Sandbox + "/bin"}}, "tool a\n", 0},
		{"path kept", backend.Process{Argv: []string{"sh", "-c", "echo ok"}, PathPrepend: []string{"/nonexistent"}}, "ok\n", 0},
		{"merged order", backend.Process{Argv: []string{"sh", "-c", "for i in 1 2 3; do echo out$i; echo err$i >&2; done"}}, "out1\nerr1\nout2\nerr2\nout3\nerr3\n", 0},
		{"files shared", backend.Process{Argv: []string{"sh", "-c", "echo shared > f.txt && cat f.txt"}, Dir: d.Sandbox}, "shared\n", 0},
		{"fallback unused", backend.Process{Argv: []string{"sh", "-c", "echo main"}, Fallback: []string{"sh", "-c", "echo fallback"}}, "main\n", 0},
		{"fallback used", backend.Process{Argv: []string{"no-such-command-xyz", "a"}, Fallback: []string{"sh", "-c", `echo "fallback $0 $1"; exit 3`, "it's", "b c"}}, "fallback it's b c\n", 3},
		{"fallback after path prepend", backend.Process{Argv: []string{"mytool", "a"}, PathPrepend: []string{d.Sandbox + "/bin"}, Fallback: []string{"sh", "-c", "echo fallback"}}, "tool a\n", 0},
		{"fallback after env PATH", backend.Process{Argv: []string{"mytool", "main"}, Env: map[string]string{"PATH": d.Sandbox + "/bin:/usr/local/bin:/usr/bin:/bin"}, Fallback: []string{"sh", "-c", "echo fallback"}}, "tool main\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := exec(t, sb, &tt.p)
			if out != tt.out || code != tt.code {
				t.Errorf("got %q, %d; want %q, %d", out, code, tt.out, tt.code)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(d.Host, "f.txt")); err != nil || string(b) != "shared\n" {
		t.Errorf("file written in the sandbox: %q, %v", b, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A missing command is an error, or exit code 127 as from a shell.
	if code, err := sb.Exec(ctx, &backend.Process{Argv: []string{"no-such-command-xyz"}}, &bytes.Buffer{}); err == nil && code != 127 {
		t.Errorf("missing command: exit code %d, no error", code)
	}
}

func cancel(t *testing.T, sb backend.Sandbox) {
	teardown(t, sb)
	dir := sb.Dirs().Sandbox
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out SyncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := sb.Exec(ctx, &backend.Process{
			Argv: []string{"sh", "-c", "sleep 100 & echo $! > bg.pid; echo $$ > fg.pid; echo started; sleep 100"},
			Dir:  dir,
		}, &out)
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "started") {
		if time.Now().After(deadline) {
			t.Fatalf("step did not start; output %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Exec after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Exec did not return after cancel")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %v", d)
	}
	// Nothing of the step is left (zombies included, once reaped).
	check := &backend.Process{Argv: []string{"sh", "-c", "for p in $(cat fg.pid bg.pid); do kill -0 $p 2>/dev/null && echo alive $p; done; true"}, Dir: dir}
	for {
		got, _ := exec(t, sb, check)
		if got == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after cancel: %s", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func largeOutput(t *testing.T, sb backend.Sandbox) {
	teardown(t, sb)
	var w lineCounter
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code, err := sb.Exec(ctx, &backend.Process{Argv: []string{"seq", "1", "100000"}}, &w)
	if err != nil || code != 0 {
		t.Fatalf("seq: %d, %v", code, err)
	}
	if w.lines != 100000 || w.last != "100000" {
		t.Errorf("got %d lines, last %q", w.lines, w.last)
	}
}

type lineCounter struct {
	lines   int
	partial []byte
	last    string
}

func (l *lineCounter) Write(p []byte) (int, error) {
	for _, c := range p {
		if c == '\n' {
			l.lines++
			l.last = string(l.partial)
			l.partial = l.partial[:0]
		} else {
			l.partial = append(l.partial, c)
		}
	}
	return len(p), nil
}

// SyncBuffer is a bytes.Buffer safe to read while a sandbox writes to it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
