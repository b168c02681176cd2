package server

import (
	"context"
	"sync"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// batchReads memoises, for one claimed batch of events, the store reads
// every event of a storm repeats: its repository, and whether its
// organisation has used up its monthly build seconds. A batch lives for
// milliseconds; a setting changed meanwhile applies from the next batch,
// as it would had the change come a moment later.
type batchReads struct {
	s      *Server
	repos  memo[[2]int64, *store.Repo]
	limits memo[int64, error]
}

func (s *Server) newBatchReads() *batchReads { return &batchReads{s: s} }

// repo is the event's repository (read once per batch; not to be changed).
func (b *batchReads) repo(ctx context.Context, orgID, repoID int64) (*store.Repo, error) {
	return b.repos.get([2]int64{orgID, repoID}, func() (*store.Repo, error) {
		return b.s.store.GetRepo(ctx, orgID, repoID)
	})
}

// overLimit is overMonthlyLimit read once per batch and organisation.
func (b *batchReads) overLimit(ctx context.Context, orgID int64) error {
	_, err := b.limits.get(orgID, func() (error, error) {
		return nil, b.s.overMonthlyLimit(ctx, orgID)
	})
	return err
}

// memo is a concurrency-safe map of values loaded once per key: callers
// of a key being loaded wait for that load and share its result.
type memo[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]*memoEntry[V]
}

type memoEntry[V any] struct {
	once sync.Once
	v    V
	err  error
}

func (m *memo[K, V]) get(k K, load func() (V, error)) (V, error) {
	m.mu.Lock()
	if m.m == nil {
		m.m = map[K]*memoEntry[V]{}
	}
	e := m.m[k]
	if e == nil {
		e = &memoEntry[V]{}
		m.m[k] = e
	}
	m.mu.Unlock()
	e.once.Do(func() { e.v, e.err = load() })
	return e.v, e.err
}
