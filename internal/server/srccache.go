package server

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// srcCache keeps one checked-out tree per commit, shared by the jobs of
// that commit (the jobs of a run, its matrix legs, re-runs, agents'
// source downloads): only the first runs git. The trees are read-only to
// their users: the executor copies from its RepoDir and never writes
// there.
type srcCache struct {
	dir  string
	idle time.Duration // an unused tree is removed after this
	max  int           // unused trees kept at most
	mu   sync.Mutex
	m    map[string]*srcTree
	seq  int // each tree gets its own folder: one being removed never hides a new one
}

type srcTree struct {
	dir   string
	ready chan struct{} // closed when the checkout ended; err is set then
	err   error
	refs  int
	last  time.Time // when refs last dropped to 0
}

func newSrcCache(dir string, idle time.Duration, max int) *srcCache {
	return &srcCache{dir: dir, idle: idle, max: max, m: map[string]*srcTree{}}
}

// acquire returns the tree of id (repository key and commit), filled by
// fill into an empty folder the first time; release must be called when
// the caller no longer reads it. A failed fill is not kept: the next
// acquire tries again.
func (c *srcCache) acquire(ctx context.Context, id string, fill func(ctx context.Context, dir string) error) (string, func(), error) {
	for {
		c.mu.Lock()
		t, ok := c.m[id]
		if !ok {
			c.seq++
			t = &srcTree{dir: filepath.Join(c.dir, fmt.Sprintf("%s-%d", id, c.seq)), ready: make(chan struct{})}
			c.m[id] = t
		}
		t.refs++
		c.mu.Unlock()
		release := func() { c.release(id, t) }
		if !ok {
			err := c.fill(ctx, t.dir, fill)
			c.mu.Lock()
			if t.err = err; err != nil {
				delete(c.m, id)
			}
			c.mu.Unlock()
			close(t.ready)
		}
		select {
		case <-t.ready:
		case <-ctx.Done():
			release()
			return "", nil, errs.Wrap("source", errs.Canceled, ctx.Err())
		}
		if t.err == nil {
			return t.dir, release, nil
		}
		release()
		// The filler's own end (its job was cancelled) is not ours: try again.
		if k := errs.KindOf(t.err); ok && (k == errs.Canceled || k == errs.Timeout) && ctx.Err() == nil {
			continue
		}
		return "", nil, t.err
	}
}

func (c *srcCache) fill(ctx context.Context, dir string, fill func(ctx context.Context, dir string) error) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return errs.Wrap("source", errs.Unavailable, err)
	}
	if err := fill(ctx, dir); err != nil {
		_ = os.RemoveAll(dir)
		return err
	}
	return nil
}

func (c *srcCache) release(id string, t *srcTree) {
	c.mu.Lock()
	t.refs--
	if t.refs == 0 {
		t.last = time.Now()
	}
	c.mu.Unlock()
	c.sweep(time.Now())
}

// sweep removes the trees unused for c.idle, and the oldest unused ones
// beyond c.max.
func (c *srcCache) sweep(now time.Time) {
	c.mu.Lock()
	var unused []string
	for id, t := range c.m {
		if t.refs == 0 && isClosed(t.ready) {
			unused = append(unused, id)
		}
	}
	var gone []string
	for len(unused) > 0 {
		oldest := 0
		for i, id := range unused {
			if c.m[id].last.Before(c.m[unused[oldest]].last) {
				oldest = i
			}
		}
		id := unused[oldest]
		if now.Sub(c.m[id].last) < c.idle && len(unused) <= c.max {
			break
		}
		gone = append(gone, c.m[id].dir)
		delete(c.m, id)
		unused = append(unused[:oldest], unused[oldest+1:]...)
	}
	c.mu.Unlock()
	for _, dir := range gone {
		_ = os.RemoveAll(dir)
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// checkSHA admits full hexadecimal commit hashes only: the hash names a
// folder of the cache.
func checkSHA(sha string) error {
	if n := len(sha); n != 40 && n != 64 {
		return errs.E("source", errs.Invalid, "%q is not a full commit hash", sha)
	}
	for _, r := range sha {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return errs.E("source", errs.Invalid, "%q is not a full commit hash", sha)
		}
	}
	return nil
}
