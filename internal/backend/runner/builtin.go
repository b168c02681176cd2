//go:build unix

package runner

import (
	"context"
	"io"
	"os"
	"sync"
)

// startBuiltin runs fn for req as the current request.
func (s *server) startBuiltin(id uint32, req *Request, fn Builtin, output func(frame []byte) error, exited func(code int)) *ErrorMsg {
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{id: id, done: make(chan struct{}), cancel: cancel}
	var stdin io.ReadCloser = io.NopCloser(eofReader{})
	if req.Stdin {
		r, w, err := os.Pipe()
		if err != nil {
			cancel()
			return &ErrorMsg{Message: err.Error()}
		}
		p.in = make(chan []byte, 4)
		go p.feed(w)
		stdin = r
	}
	s.mu.Lock()
	s.cur = p
	s.mu.Unlock()
	go func() {
		defer cancel()
		out := &frameWriter{output: output}
		code := fn(ctx, req.Argv[2:], stdin, out)
		stdin.Close()
		out.stop()
		s.mu.Lock()
		s.cur = nil
		s.mu.Unlock()
		exited(code)
		close(p.done)
	}()
	return nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// frameWriter hands a builtin's writes to output as frames, in order;
// after stop (the builtin returned) or an error, writes are dropped.
type frameWriter struct {
	mu      sync.Mutex
	output  func(frame []byte) error
	buf     []byte
	stopped bool
}

func (w *frameWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return 0, io.ErrClosedPipe
	}
	if w.buf == nil {
		w.buf = make([]byte, headerLen+outputChunk) // as copyOutput's
	}
	for rest := p; len(rest) > 0; {
		n := copy(w.buf[headerLen:], rest)
		if err := w.output(w.buf[:headerLen+n]); err != nil {
			w.stopped = true
			return len(p) - len(rest), err
		}
		rest = rest[n:]
	}
	return len(p), nil
}

func (w *frameWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
