package runner

import "sync"

// CloserFunc is a func as an io.Closer (the transport NewClient closes).
type CloserFunc func() error

// Close calls f.
func (f CloserFunc) Close() error { return f() }

// Tail is an io.Writer that keeps the last Max bytes written: a runner's
// standard error, shown when it cannot start. Safe for concurrent use.
type Tail struct {
	mu  sync.Mutex
	Max int
	b   []byte
}

func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.Max {
		t.b = t.b[len(t.b)-t.Max:]
	}
	return len(p), nil
}

func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
