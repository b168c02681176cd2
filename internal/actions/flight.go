package actions

import (
	"context"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// flights runs one piece of work per key for concurrent callers. Unlike a
// plain singleflight, the work is cancelled when every caller waiting for
// it has gone, and bounded by a timeout otherwise.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

type flight struct {
	done    chan struct{}
	res     *Resolved
	err     error
	waiters int
	cancel  context.CancelFunc
}

func (fs *flights) do(ctx context.Context, key string, timeout time.Duration, fn func(context.Context) (*Resolved, error)) (*Resolved, error) {
	fs.mu.Lock()
	if fs.m == nil {
		fs.m = map[string]*flight{}
	}
	fl := fs.m[key]
	if fl == nil {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		fl = &flight{done: make(chan struct{}), cancel: cancel}
		fs.m[key] = fl
		go func() {
			res, err := fn(wctx)
			cancel()
			fs.mu.Lock()
			if fs.m[key] == fl {
				delete(fs.m, key)
			}
			fs.mu.Unlock()
			fl.res, fl.err = res, err
			close(fl.done)
		}()
	}
	fl.waiters++
	fs.mu.Unlock()
	select {
	case <-fl.done:
		if fl.err != nil {
			return nil, fl.err
		}
		cp := *fl.res
		return &cp, nil
	case <-ctx.Done():
		fs.mu.Lock()
		fl.waiters--
		if fl.waiters == 0 {
			fl.cancel()
			if fs.m[key] == fl {
				delete(fs.m, key) // a new caller starts afresh
			}
		}
		fs.mu.Unlock()
		return nil, errs.Wrap("actions", errs.Canceled, ctx.Err())
	}
}
