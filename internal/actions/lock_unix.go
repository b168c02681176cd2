//go:build unix

package actions

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// lockFile takes an exclusive flock on path, polling so that ctx can end
// the wait; the lock goes with the process if it dies.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, errs.Wrap("lock", errs.Unavailable, err)
	}
	fd := int(f.Fd())
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(fd, syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, errs.Wrap("lock", errs.Unavailable, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, errs.Wrap("lock", errs.Timeout, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
