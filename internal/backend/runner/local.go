//go:build unix

package runner

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Local runs requests in this process with Serve's process handling (own
// process group, stdout and stderr merged in order, the group killed on
// cancel, everything killed by Close), without the protocol: for a runner
// that shares the executor's process (the host backend), where encoding
// each request, and passing every frame through pipes and goroutines,
// only adds latency to each step. It behaves as a Client does.
type Local struct {
	s  *server
	mu sync.Mutex // one Run at a time

	// CancelWait is how long Run waits, after its context ends, for the
	// killed process to exit (as Client.CancelWait).
	CancelWait time.Duration
}

// NewLocal returns a Local runner; Close it to kill what it started.
func NewLocal() *Local {
	return &Local{s: &server{groups: map[int]struct{}{}, reap: newReaper()}, CancelWait: 5 * time.Second}
}

// Run runs req to completion, copying its output to out as it comes, and
// returns its exit code; as Client.Run, an error from out kills the process
// and when ctx ends the process group is killed and Run returns ctx.Err()
// within CancelWait. out is never written after Run has returned.
func (l *Local) Run(ctx context.Context, req *Request, out io.Writer) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var (
		omu    sync.Mutex // guards out, gone and outErr
		gone   bool       // Run returned before the output ended
		outErr error
		exitc  = make(chan int, 1)
	)
	output := func(frame []byte) error {
		omu.Lock()
		defer omu.Unlock()
		if gone || out == nil {
			return nil
		}
		if _, err := out.Write(frame[headerLen:]); err != nil {
			outErr = err
			return err
		}
		return nil
	}
	p, m := l.s.spawn(0, req, output, func(code int) { exitc <- code })
	if m != nil {
		kind := errs.Other
		if m.NotFound {
			kind = errs.NotFound
		}
		return -1, errs.E("runner: start", kind, "%s", m.Message)
	}
	select {
	case code := <-exitc:
		if outErr != nil {
			return code, errs.Wrap("runner: write output", errs.Other, outErr)
		}
		return code, nil
	case <-ctx.Done():
	}
	p.kill()
	code := -1
	select {
	case code = <-exitc:
	case <-time.After(l.CancelWait):
	}
	omu.Lock()
	gone = true
	omu.Unlock()
	return code, ctx.Err()
}

// Close kills every process group Run started (background processes of
// earlier requests included) and waits a little for the current one.
// Run must not be called after.
func (l *Local) Close() {
	l.s.killAll()
	l.s.waitCurrent(killGrace)
	l.s.reap.stop()
}
