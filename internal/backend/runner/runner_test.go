package runner

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// pair runs Serve in-process over pipes and returns a client talking to it.
func pair(t *testing.T) (*Client, <-chan error) {
	t.Helper()
	return pairWith(t, ServeOptions{})
}

func pairWith(t *testing.T, opts ServeOptions) (*Client, <-chan error) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		err := ServeWith(ctx, inR, outW, opts)
		outW.CloseWithError(io.EOF)
		served <- err
		close(finished)
	}()
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer hcancel()
	c, err := NewClient(hctx, outR, inW, inW)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		inW.Close()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return c, served
}

// runs is what Client and Local have in common.
type runs interface {
	Run(ctx context.Context, req *Request, out io.Writer) (int, error)
}

func run(t *testing.T, c runs, req *Request) (string, int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b bytes.Buffer
	code, err := c.Run(ctx, req, &b)
	return b.String(), code, err
}

// runCase is a request and what running it must give.
type runCase struct {
	name string
	req  Request
	out  string
	code int
}

// basicCases are what every way of running a step must do alike (through
// Serve and a Client, or Local): exit codes, signals, env, directory,
// PATH, merged output.
func basicCases(t *testing.T) []runCase {
	t.Helper()
	dir := t.TempDir()
	bin := t.TempDir()
	if err := os.WriteFile(bin+"/mytool", []byte("#!/bin/sh\necho tool \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return []runCase{
		{"echo", Request{Argv: []string{"echo", "hi"}}, "hi\n", 0},
		{"exit code", Request{Argv: []string{"sh", "-c", "exit 3"}}, "", 3},
		{"signal", Request{Argv: []string{"sh", "-c", "kill -9 $$"}}, "", 137},
		{"env", Request{Argv: []string{"sh", "-c", "echo $FOO"}, Env: map[string]string{"FOO": "bar baz"}}, "bar baz\n", 0},
		{"dir", Request{Argv: []string{"pwd"}, Dir: dir}, dir + "\n", 0},
		{"path prepend", Request{Argv: []string{"mytool"}, PathPrepend: []string{bin}}, "tool\n", 0},
		{"merged order", Request{Argv: []string{"sh", "-c", "echo 1; echo 2 >&2; echo 3; echo 4 >&2"}}, "1\n2\n3\n4\n", 0},
	}
}

func TestRunBasics(t *testing.T) {
	c, _ := pair(t)
	if c.Hello().Protocol != Protocol || c.Hello().PID != os.Getpid() {
		t.Errorf("hello = %+v", c.Hello())
	}
	for _, tt := range basicCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			out, code, err := run(t, c, &tt.req)
			if err != nil || code != tt.code || out != tt.out {
				t.Errorf("got %q, %d, %v; want %q, %d", out, code, err, tt.out, tt.code)
			}
		})
	}
}

func TestRunNotFound(t *testing.T) {
	c, _ := pair(t)
	_, _, err := run(t, c, &Request{Argv: []string{"no-such-command-xyz"}})
	if !errs.Is(err, errs.NotFound) {
		t.Fatalf("err = %v, want not found", err)
	}
	// The runner is still usable.
	if out, code, err := run(t, c, &Request{Argv: []string{"echo", "ok"}}); out != "ok\n" || code != 0 || err != nil {
		t.Fatalf("after error: %q %d %v", out, code, err)
	}
	if _, _, err := run(t, c, &Request{Argv: []string{"true"}, Dir: "/no/such/dir"}); err == nil {
		t.Fatal("missing dir: no error")
	}
}

// pgidAlive reports whether any process is in group pgid.
func pgidAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) == nil
}

func TestCancelKillsGroup(t *testing.T) {
	c, _ := pair(t)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	pidc := make(chan int, 1)
	go func() {
		b := make([]byte, 64)
		n, _ := pr.Read(b)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:n])))
		pidc <- pid
		_, _ = io.Copy(io.Discard, pr)
	}()
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, &Request{Argv: []string{"sh", "-c", "echo $$; sleep 100 & sleep 100"}}, pw)
		done <- err
	}()
	var pid int
	select {
	case pid = <-pidc:
	case <-time.After(10 * time.Second):
		t.Fatal("no pid")
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cancel took %v", d)
	}
	deadline := time.Now().Add(5 * time.Second)
	for pgidAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still alive", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Next request works.
	if out, _, err := run(t, c, &Request{Argv: []string{"echo", "next"}}); out != "next\n" || err != nil {
		t.Fatalf("after cancel: %q %v", out, err)
	}
}

func TestCloseInputKillsProcesses(t *testing.T) {
	c, served := pair(t)
	// A background process survives its step (as on GitHub's runner) ...
	out, _, err := run(t, c, &Request{Argv: []string{"sh", "-c", "sleep 100 >/dev/null 2>&1 & echo $!"}})
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(out))
	if pid == 0 || syscall.Kill(pid, 0) != nil {
		t.Fatalf("background pid %q not alive", out)
	}
	// ... until the runner's input closes.
	c.Close()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if time.Now().After(deadline) {
			t.Fatalf("background process %d still alive", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBackgroundHoldingPipe(t *testing.T) {
	c, _ := pair(t)
	start := time.Now()
	out, code, err := run(t, c, &Request{Argv: []string{"sh", "-c", "sleep 30 & echo done"}})
	if err != nil || code != 0 || out != "done\n" {
		t.Fatalf("%q %d %v", out, code, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

type countWriter struct {
	n     int64
	lines int64
}

func (w *countWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	w.lines += int64(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}

func TestLargeOutput(t *testing.T) {
	c, _ := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var w countWriter
	code, err := c.Run(ctx, &Request{Argv: []string{"seq", "1", "100000"}}, &w)
	if err != nil || code != 0 || w.lines != 100000 {
		t.Fatalf("seq: %d lines, code %d, %v", w.lines, code, err)
	}
	if testing.Short() {
		return
	}
	w = countWriter{}
	const size = 1 << 30
	start := time.Now()
	code, err = c.Run(ctx, &Request{Argv: []string{"head", "-c", strconv.Itoa(size), "/dev/zero"}}, &w)
	if err != nil || code != 0 || w.n != size {
		t.Fatalf("1 GiB: %d bytes, code %d, %v", w.n, code, err)
	}
	t.Logf("1 GiB in %v", time.Since(start))
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("sink full") }

func TestOutputWriterFails(t *testing.T) {
	c, _ := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Run(ctx, &Request{Argv: []string{"sh", "-c", "echo x; sleep 100"}}, failWriter{})
	if err == nil {
		t.Fatal("no error")
	}
}

// A runner that said hello and then died or hung must not hang the client.
func TestRunnerDead(t *testing.T) {
	var hello bytes.Buffer
	if err := writeJSON(&hello, FrameHello, 0, Hello{Magic: helloMagic, Protocol: Protocol}); err != nil {
		t.Fatal(err)
	}
	outR, outW := io.Pipe()
	go func() { _, _ = outW.Write(hello.Bytes()) }() // then silence
	inR, inW := io.Pipe()                            // nobody reads: writes block
	defer inR.Close()
	c, err := NewClient(context.Background(), outR, inW, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.CancelWait = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Run(ctx, &Request{Argv: []string{"true"}}, io.Discard)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	// The runner's stream ends: Run fails at once.
	outW.Close()
	<-c.Done()
	if _, err := c.Run(context.Background(), &Request{Argv: []string{"true"}}, io.Discard); !errs.Is(err, errs.Unavailable) {
		t.Errorf("after close: %v", err)
	}
}

func TestNoHello(t *testing.T) {
	r, w := io.Pipe()
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := NewClient(ctx, r, io.Discard, r); !errs.Is(err, errs.Timeout) {
		t.Fatalf("err = %v", err)
	}
	if _, err := NewClient(context.Background(), strings.NewReader("garbage that is not a frame"), io.Discard, nil); !errs.Is(err, errs.Invalid) {
		t.Fatalf("garbage: err = %v", err)
	}
}

func TestServeGarbage(t *testing.T) {
	for _, in := range []string{
		"garbage that is not a frame at all",
		"R\x00\x00\x00\x01\x00\x00\x00\x05{bad}",
		"R\x00\x00\x00\x01\xff\xff\xff\xff",
		"R\x00\x00",
	} {
		var out syncBuffer
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := Serve(ctx, strings.NewReader(in), &out)
		cancel()
		if len(in) > 9 && in[:9] == "R\x00\x00\x00\x01\x00\x00\x00\x05" {
			// A well-framed bad request gets an error frame, then EOF ends Serve.
			if err != nil || !strings.Contains(out.String(), "malformed request") {
				t.Errorf("%q: err %v, out %q", in, err, out.String())
			}
			continue
		}
		if !errs.Is(err, errs.Invalid) {
			t.Errorf("%q: err = %v, want invalid", in, err)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func FuzzDecoder(f *testing.F) {
	var b bytes.Buffer
	_ = writeJSON(&b, FrameRequest, 1, Request{Argv: []string{"echo"}})
	_ = writeFrame(&b, FrameOutput, 1, []byte("hello"))
	_ = writeFrame(&b, FrameExit, 1, exitPayload(-1))
	f.Add(b.Bytes())
	f.Add([]byte("X\x00\x00\x00\x01\x00\x00\x00\x04\xff\xff\xff\xff"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(bytes.NewReader(data))
		for {
			fr, err := d.Read()
			if err != nil {
				if err != io.EOF && !errs.Is(err, errs.Invalid) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				return
			}
			if !validType(fr.Type) || len(fr.Payload) > MaxPayload {
				t.Fatalf("bad frame accepted: %+v", fr)
			}
			if fr.Type == FrameExit {
				_, _ = parseExit(fr.Payload)
			}
		}
	})
}

func TestFallback(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(bin+"/mytool", []byte("#!/bin/sh\necho tool \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	reqs := []struct {
		name string
		req  Request
		out  string
	}{
		{"found", Request{Argv: []string{"mytool", "main"}, PathPrepend: []string{bin}, Fallback: []string{"echo", "fallback"}}, "tool main\n"},
		{"not found", Request{Argv: []string{"no-such-command-xyz", "x"}, Fallback: []string{"echo", "fallback", "it's", "$HOME"}}, "fallback it's $HOME\n"},
		{"env PATH", Request{Argv: []string{"mytool", "env"}, Env: map[string]string{"PATH": bin + ":" + DefaultPath}, Fallback: []string{"echo", "fallback"}}, "tool env\n"},
	}
	c, _ := pair(t)
	if !c.has(FeatureFallback) {
		t.Fatalf("hello without %q: %+v", FeatureFallback, c.Hello())
	}
	// A runner without the feature (an older binary): the client emulates it.
	old, _ := pair(t)
	old.hello.Features = nil
	for _, cl := range []struct {
		name string
		c    *Client
	}{{"native", c}, {"emulated", old}} {
		for _, tt := range reqs {
			t.Run(cl.name+"/"+tt.name, func(t *testing.T) {
				out, code, err := run(t, cl.c, &tt.req)
				if err != nil || code != 0 || out != tt.out {
					t.Errorf("got %q, %d, %v; want %q", out, code, err, tt.out)
				}
			})
		}
	}
	// Neither found: not found, as without a fallback.
	if _, _, err := run(t, c, &Request{Argv: []string{"no-such-command-xyz"}, Fallback: []string{"no-such-command-abc"}}); !errs.Is(err, errs.NotFound) {
		t.Errorf("neither found: err = %v, want not found", err)
	}
}

// Local is Serve's process handling without the protocol: it must behave
// as a Client talking to Serve does.
func TestLocal(t *testing.T) {
	l := NewLocal()
	closed := false
	t.Cleanup(func() {
		if !closed {
			l.Close()
		}
	})
	bin := t.TempDir()
	if err := os.WriteFile(bin+"/mytool", []byte("#!/bin/sh\necho tool \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range append(basicCases(t), []runCase{
		{"fallback unused", Request{Argv: []string{"mytool", "main"}, PathPrepend: []string{bin}, Fallback: []string{"echo", "fb"}}, "tool main\n", 0},
		{"fallback used", Request{Argv: []string{"no-such-command-xyz"}, Fallback: []string{"echo", "fb"}}, "fb\n", 0},
		{"background holding the pipe", Request{Argv: []string{"sh", "-c", "sleep 30 & echo done"}}, "done\n", 0},
	}...) {
		t.Run(tt.name, func(t *testing.T) {
			out, code, err := run(t, l, &tt.req)
			if err != nil || code != tt.code || out != tt.out {
				t.Errorf("got %q, %d, %v; want %q, %d", out, code, err, tt.out, tt.code)
			}
		})
	}
	if _, _, err := run(t, l, &Request{Argv: []string{"no-such-command-xyz"}}); !errs.Is(err, errs.NotFound) {
		t.Errorf("not found: %v", err)
	}
	if _, _, err := run(t, l, &Request{Argv: []string{"true"}, Dir: "/no/such/dir"}); err == nil {
		t.Errorf("missing dir: %v", err)
	}
	if _, _, err := run(t, l, &Request{}); err == nil {
		t.Error("empty argv: no error")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := l.Run(ctx, &Request{Argv: []string{"sh", "-c", "echo x; sleep 100"}}, failWriter{}); err == nil {
		t.Error("failing output: no error")
	}
	var w countWriter
	if code, err := l.Run(ctx, &Request{Argv: []string{"seq", "1", "100000"}}, &w); err != nil || code != 0 || w.lines != 100000 {
		t.Errorf("seq: %d lines, code %d, %v", w.lines, code, err)
	}

	// Cancel kills the group, and nothing is written after Run returns.
	cctx, ccancel := context.WithCancel(context.Background())
	sink := &afterReturn{}
	done := make(chan error, 1)
	go func() {
		_, err := l.Run(cctx, &Request{Argv: []string{"sh", "-c", "echo $$; trap '' TERM; while :; do echo tick; sleep 0.01; done"}}, sink)
		sink.mu.Lock()
		sink.returned = true
		sink.mu.Unlock()
		done <- err
	}()
	var pid int
	for deadline := time.Now().Add(10 * time.Second); pid == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no pid")
		}
		sink.mu.Lock()
		if first, _, ok := strings.Cut(sink.b.String(), "\n"); ok {
			pid, _ = strconv.Atoi(first)
		}
		sink.mu.Unlock()
	}
	ccancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancel: err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	time.Sleep(50 * time.Millisecond)
	sink.mu.Lock()
	late := sink.late
	sink.mu.Unlock()
	if late {
		t.Error("output written after Run returned")
	}
	for deadline := time.Now().Add(5 * time.Second); pgidAlive(pid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still alive (SIGTERM ignored: SIGKILL expected)", pid)
		}
	}

	// Close kills background processes of earlier requests.
	out, _, err := run(t, l, &Request{Argv: []string{"sh", "-c", "sleep 100 >/dev/null 2>&1 & echo $!"}})
	bg, _ := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || bg == 0 || syscall.Kill(bg, 0) != nil {
		t.Fatalf("background: %q %v", out, err)
	}
	l.Close()
	closed = true
	for deadline := time.Now().Add(5 * time.Second); syscall.Kill(bg, 0) == nil; time.Sleep(20 * time.Millisecond) {
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(bg, &ws, syscall.WNOHANG, nil)
		if time.Now().After(deadline) {
			t.Fatalf("background process %d survived Close", bg)
		}
	}
}

// afterReturn records output and whether any came after Run returned.
type afterReturn struct {
	mu       sync.Mutex
	b        bytes.Buffer
	returned bool
	late     bool
}

func (a *afterReturn) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.returned {
		a.late = true
	}
	return a.b.Write(p)
}

func TestRunInput(t *testing.T) {
	c, _ := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	big := bytes.Repeat([]byte("0123456789abcdef"), 20_000) // several frames
	var out bytes.Buffer
	code, err := c.RunInput(ctx, &Request{Argv: []string{"sh", "-c", "wc -c; exit 3"}}, bytes.NewReader(big), &out)
	if err != nil || code != 3 {
		t.Fatalf("code %d, err %v", code, err)
	}
	if got := strings.TrimSpace(out.String()); got != strconv.Itoa(len(big)) {
		t.Fatalf("wc -c said %q, want %d", got, len(big))
	}
	// A process that does not read its input still ends, and the next
	// request works.
	out.Reset()
	code, err = c.RunInput(ctx, &Request{Argv: []string{"true"}}, bytes.NewReader(big), &out)
	if err != nil || code != 0 {
		t.Fatalf("true: code %d, err %v", code, err)
	}
	// Without input, stdin is /dev/null.
	got, code, err := run(t, c, &Request{Argv: []string{"sh", "-c", "cat; echo end"}})
	if err != nil || code != 0 || got != "end\n" {
		t.Fatalf("cat: %q %d %v", got, code, err)
	}
}
