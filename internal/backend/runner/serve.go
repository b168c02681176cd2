//go:build unix

package runner

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

const (
	// killGrace is how long a cancelled process group has between SIGTERM
	// and SIGKILL.
	killGrace = 2 * time.Second
	// drainGrace is how long output is still read after a process has
	// exited, when a background child keeps the pipe open.
	drainGrace = 500 * time.Millisecond
	// DefaultPath is used when the base environment has no PATH.
	DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// Serve is the runner's side: it says hello on out, then runs each request
// read from in, one at a time, each in its own process group with stdout
// and stderr on one pipe, streaming the output back. A cancel frame kills
// the request's process group (SIGTERM, then SIGKILL). When in ends, ctx
// ends or out fails, Serve kills every process group it started and
// returns. When it runs as PID 1 it also reaps orphaned processes.
func Serve(ctx context.Context, in io.Reader, out io.Writer) error {
	return ServeWith(ctx, in, out, ServeOptions{})
}

// ServeWith is Serve with options.
func ServeWith(ctx context.Context, in io.Reader, out io.Writer, opts ServeOptions) error {
	s := &server{
		w:        &lockedWriter{w: out},
		groups:   map[int]struct{}{},
		reap:     newReaper(),
		builtins: opts.Builtins,
	}
	defer s.reap.stop()
	if err := writeJSON(s.w, FrameHello, 0, Hello{Magic: helloMagic, Protocol: Protocol, Version: buildVersion(), PID: os.Getpid(),
		Features: []string{FeatureFallback, FeatureStdin}}); err != nil {
		return errs.Wrap("runner: hello", errs.Unavailable, err)
	}
	frames := make(chan Frame)
	readErr := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		dec := NewDecoder(in)
		for {
			f, err := dec.Read()
			if err != nil {
				readErr <- err
				return
			}
			f.Payload = append([]byte(nil), f.Payload...)
			select {
			case frames <- f:
			case <-stop:
				return
			}
		}
	}()
	var err error
loop:
	for {
		select {
		case f := <-frames:
			s.handle(f)
		case err = <-readErr:
			break loop
		case <-s.w.failed():
			err = errs.E("runner", errs.Unavailable, "output closed")
			break loop
		case <-ctx.Done():
			err = ctx.Err()
			break loop
		}
	}
	s.killAll()
	s.waitCurrent(killGrace)
	if err == io.EOF {
		return nil
	}
	return err
}

type server struct {
	w        *lockedWriter
	reap     *reaper
	builtins map[string]Builtin

	mu     sync.Mutex
	cur    *proc
	groups map[int]struct{} // every process group started, for the final kill
}

type proc struct {
	id       uint32
	pgid     int
	done     chan struct{}
	killOnce sync.Once
	in       chan []byte // FrameInput payloads, nil without Request.Stdin
	// cancel, for a builtin (no process group), ends its context.
	cancel context.CancelFunc
}

func (s *server) handle(f Frame) {
	switch f.Type {
	case FrameRequest:
		var req Request
		if err := json.Unmarshal(f.Payload, &req); err != nil {
			s.sendError(f.ID, ErrorMsg{Message: "malformed request: " + err.Error()})
			return
		}
		s.start(f.ID, &req)
	case FrameInput:
		s.mu.Lock()
		p := s.cur
		s.mu.Unlock()
		if p != nil && p.id == f.ID && p.in != nil {
			// Back pressure: a process that does not read its input holds
			// up the frames after this one until it exits.
			select {
			case p.in <- f.Payload:
			case <-p.done:
			}
		}
	case FrameCancel:
		s.mu.Lock()
		p := s.cur
		s.mu.Unlock()
		if p != nil && p.id == f.ID {
			p.kill()
		}
	default:
		// Frames only a runner sends are ignored rather than fatal, so a
		// newer client can add frames an older runner does not know.
	}
}

func (s *server) sendError(id uint32, m ErrorMsg) {
	_ = writeJSON(s.w, FrameError, id, m)
}

func (s *server) start(id uint32, req *Request) {
	s.mu.Lock()
	busy := s.cur != nil
	s.mu.Unlock()
	if busy {
		s.sendError(id, ErrorMsg{Message: "a process is already running"})
		return
	}
	output := func(frame []byte) error {
		appendHeader(frame[:0], FrameOutput, id, len(frame)-headerLen)
		_, err := s.w.Write(frame)
		return err
	}
	exited := func(code int) { _ = writeFrame(s.w, FrameExit, id, exitPayload(code)) }
	if fn := s.builtins[req.Builtin]; fn != nil && len(req.Argv) >= 2 {
		if m := s.startBuiltin(id, req, fn, output, exited); m != nil {
			s.sendError(id, *m)
		}
		return
	}
	if _, m := s.spawn(id, req, output, exited); m != nil {
		s.sendError(id, *m)
	}
}

// spawn starts req in its own process group with stdout and stderr on one
// pipe. output gets what the process writes, in order, from one goroutine,
// as frame[headerLen:]: the first headerLen bytes are room for a frame
// header; frame is reused after the call. An error from output kills the
// group and ends the reading. exited gets the exit code once the process
// has exited and its output is drained (drainGrace at most after the exit
// when a background child holds the pipe). When the process cannot start,
// spawn returns what to tell the client and calls neither.
func (s *server) spawn(id uint32, req *Request, output func(frame []byte) error, exited func(code int)) (*proc, *ErrorMsg) {
	cmd, m := command(req)
	if m != nil {
		return nil, m
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, &ErrorMsg{Message: err.Error()}
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	var inR, inW *os.File
	if req.Stdin {
		if inR, inW, err = os.Pipe(); err != nil {
			pr.Close()
			pw.Close()
			return nil, &ErrorMsg{Message: err.Error()}
		}
		cmd.Stdin = inR
	}
	status, err := s.reap.start(cmd)
	pw.Close()
	if inR != nil {
		inR.Close()
	}
	if err != nil {
		pr.Close()
		if inW != nil {
			inW.Close()
		}
		var pe *fs.PathError
		return nil, &ErrorMsg{NotFound: errors.As(err, &pe) && errors.Is(err, fs.ErrNotExist) && pe.Op != "chdir", Message: err.Error()}
	}
	p := &proc{id: id, pgid: cmd.Process.Pid, done: make(chan struct{})}
	if inW != nil {
		p.in = make(chan []byte, 4)
		go p.feed(inW)
	}
	s.mu.Lock()
	s.cur = p
	s.groups[p.pgid] = struct{}{}
	s.mu.Unlock()

	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		p.copyOutput(pr, output)
	}()
	go s.reapProc(p, cmd, status, pr, outDone, exited)
	return p, nil
}

// command resolves req's program on the PATH of its environment, trying
// req.Fallback when req.Argv's program is not found, into a command that
// runs in its own process group.
func command(req *Request) (*exec.Cmd, *ErrorMsg) {
	if len(req.Argv) == 0 {
		return nil, &ErrorMsg{Message: "empty argv"}
	}
	env := BuildEnv(os.Environ(), req.Env, req.PathPrepend)
	argv := req.Argv
	path, err := LookPath(argv[0], envValue(env, "PATH"), req.Dir)
	if err != nil && len(req.Fallback) > 0 {
		argv = req.Fallback
		path, err = LookPath(argv[0], envValue(env, "PATH"), req.Dir)
	}
	if err != nil {
		return nil, &ErrorMsg{NotFound: true, Message: err.Error()}
	}
	return &exec.Cmd{
		Path:        path,
		Args:        argv,
		Env:         env,
		Dir:         req.Dir,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}, nil
}

// copyOutput hands what the process writes on pr to output until pr ends;
// an error from output kills the process group.
func (p *proc) copyOutput(pr *os.File, output func(frame []byte) error) {
	buf := make([]byte, headerLen+outputChunk)
	for {
		n, err := pr.Read(buf[headerLen:])
		if n > 0 {
			if werr := output(buf[:headerLen+n]); werr != nil {
				p.kill()
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// reapProc waits for p's exit, then for its output to drain (drainGrace at
// most), clears it as the current process and reports its exit code.
func (s *server) reapProc(p *proc, cmd *exec.Cmd, status <-chan syscall.WaitStatus, pr *os.File, outDone <-chan struct{}, exited func(code int)) {
	ws := <-status
	_ = cmd.Process.Release()
	_ = pr.SetReadDeadline(time.Now().Add(drainGrace))
	<-outDone
	pr.Close()
	s.mu.Lock()
	s.cur = nil
	s.mu.Unlock()
	exited(exitCode(ws))
	close(p.done)
}

// feed writes the input frames to the process's standard input until an
// empty one or the process's end; after a write error (the process closed
// its input) it keeps taking frames so that the serve loop never blocks.
func (p *proc) feed(w *os.File) {
	defer w.Close()
	failed := false
	for {
		select {
		case b := <-p.in:
			if len(b) == 0 {
				return
			}
			if !failed {
				if _, err := w.Write(b); err != nil {
					failed = true
					w.Close()
				}
			}
		case <-p.done:
			return
		}
	}
}

// kill ends the process group: SIGTERM now, SIGKILL after killGrace.
func (p *proc) kill() {
	p.killOnce.Do(func() {
		if p.cancel != nil {
			p.cancel()
			return
		}
		_ = syscall.Kill(-p.pgid, syscall.SIGTERM)
		go func() {
			select {
			case <-p.done:
				// The leader is gone; the group may still have members.
			case <-time.After(killGrace):
			}
			_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
		}()
	})
}

func (s *server) killAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for pgid := range s.groups {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

func (s *server) waitCurrent(d time.Duration) {
	s.mu.Lock()
	p := s.cur
	s.mu.Unlock()
	if p == nil {
		return
	}
	select {
	case <-p.done:
	case <-time.After(d):
	}
}

func exitCode(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return -1
}

// BuildEnv returns base (KEY=VALUE strings) with add set and PATH prefixed
// by prepend, sorted by key.
func BuildEnv(base []string, add map[string]string, prepend []string) []string {
	m := make(map[string]string, len(base)+len(add)+1)
	for _, kv := range base {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			m[k] = v
		}
	}
	for k, v := range add {
		m[k] = v
	}
	if len(prepend) > 0 {
		p := m["PATH"]
		if p == "" {
			p = DefaultPath
		}
		m["PATH"] = strings.Join(prepend, string(os.PathListSeparator)) + string(os.PathListSeparator) + p
	}
	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// LookPath finds file in the directories of path (not the caller's PATH, as
// exec.LookPath would). A name with a slash is used as it is, relative to
// dir.
func LookPath(file, path, dir string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	if path == "" {
		path = DefaultPath
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, file)
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errs.E("runner: start", errs.NotFound, "%s: executable file not found in PATH", file)
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}

// lockedWriter serialises frame writes and remembers the first failure.
type lockedWriter struct {
	mu   sync.Mutex
	w    io.Writer
	err  error
	fail chan struct{}
	once sync.Once
}

func (l *lockedWriter) failed() <-chan struct{} {
	l.once.Do(func() { l.fail = make(chan struct{}) })
	return l.fail
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.failed()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.w.Write(p)
	if err != nil {
		l.err = err
		close(l.fail)
	}
	return n, err
}
