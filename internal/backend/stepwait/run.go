package stepwait

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// RunOptions bound Run's waits.
type RunOptions struct {
	// Take bounds the wait for the step container to take the step (it
	// may still be busy ending a previous step); 0: one minute.
	Take time.Duration
	// Grace is how long, after a cancel, the step container has to end
	// the step (its SIGTERM, grace period, SIGKILL) before Run gives up;
	// 0: 15 s.
	Grace time.Duration
}

// Run hands step n to the step container of dir and follows it: its
// output, as it grows, to out; its exit code is returned. When ctx ends,
// the step is cancelled (its cancel file) and Run waits, within
// opts.Grace, for the step's end. It returns CodeLost with an error when
// the step container is gone or the files cannot be used, CodeNotStart
// with an error when the program could not start.
func Run(ctx context.Context, dir string, n int, s *Spec, out io.Writer, opts RunOptions) (int, error) {
	if opts.Take <= 0 {
		opts.Take = time.Minute
	}
	if opts.Grace <= 0 {
		opts.Grace = 15 * time.Second
	}
	if err := prepare(dir); err != nil {
		return CodeLost, err
	}
	if err := writeJSON(specFile(dir, n), s); err != nil {
		return CodeLost, err
	}
	f := &follower{name: outFile(dir, n), out: out}
	defer f.close()
	w := watchDir(dir)
	defer w.close()
	t := time.NewTicker(Poll)
	defer t.Stop()
	var cancelled time.Time
	taken := time.Now().Add(opts.Take)
	for {
		res, done, err := ReadResult(dir, n)
		if err != nil {
			return CodeLost, err
		}
		if err := f.copy(); err != nil {
			return CodeLost, err
		}
		if done {
			f.close()
			_ = os.Remove(outFile(dir, n)) // followed whole: the volume need not keep it
			if res.Error != "" {
				return res.Code, errors.New(res.Error)
			}
			return res.Code, nil
		}
		if err := checkAlive(dir, f.opened() || !time.Now().After(taken)); err != nil {
			return CodeLost, err
		}
		if ctx.Err() != nil {
			if cancelled.IsZero() {
				cancelled = time.Now()
				if err := writeFile(cancelFile(dir, n), nil); err != nil {
					return CodeLost, err
				}
			} else if time.Since(cancelled) > opts.Grace {
				return CodeLost, fmt.Errorf("the step container did not end the cancelled step within %s", opts.Grace)
			}
		}
		<-t.C // at most one look per Poll, however busy the output
		if w != nil {
			w.wait(idleWake) // until the output grows or the exit file comes
		}
	}
}

// checkAlive fails when the step container's heartbeat is stale, or
// (within false) when it has not taken the step in time.
func checkAlive(dir string, within bool) error {
	if !within {
		return errors.New("the step container did not take the step in time (it is gone or still busy)")
	}
	fi, err := os.Stat(aliveFile(dir))
	if err != nil {
		return nil // not started yet: the take deadline decides
	}
	if age := time.Since(fi.ModTime()); age > deadAfter {
		return fmt.Errorf("the step container stopped answering %s ago (out of memory, or its container ended)", age.Round(time.Second))
	}
	return nil
}

// follower copies a growing file to out.
type follower struct {
	name string
	out  io.Writer
	f    *os.File
	buf  []byte
}

func (f *follower) opened() bool { return f.f != nil }

// copy copies what the file has gained since the last call.
func (f *follower) copy() error {
	if f.f == nil {
		fh, err := os.Open(f.name)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		f.f, f.buf = fh, make([]byte, 32<<10)
	}
	for {
		n, err := f.f.Read(f.buf)
		if n > 0 {
			if _, werr := f.out.Write(f.buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF || n == 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (f *follower) close() {
	if f.f != nil {
		f.f.Close()
		f.f = nil
	}
}

// Await waits, within d, for step n of dir to end (after a cancel whose
// Run gave up or was killed) and returns its result.
func Await(ctx context.Context, dir string, n int, d time.Duration) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	t := time.NewTicker(Poll)
	defer t.Stop()
	for {
		res, done, err := ReadResult(dir, n)
		if err != nil || done {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("step %d has not ended after %s", n, d)
		case <-t.C:
		}
	}
}
