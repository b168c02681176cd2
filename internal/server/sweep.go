package server

import (
	"context"
	"time"

	"github.com/conveyor-ci/conveyor/internal/cache"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// Sweep tunes the retention sweeper (see store.Retainer).
type Sweep struct {
	// Every is how often it runs (default 10 min; negative: never).
	Every time.Duration
	// OutboxKeep is how long sent commit statuses are kept (default 7 days).
	OutboxKeep time.Duration
	// MoveLogsEvery is how often the logs of finished runs are moved to
	// the object store, when the store has one (default 5 s).
	MoveLogsEvery time.Duration
	// MoveLogsAfter is how long after its run finished a log moves, when
	// late writes (an agent's retried last chunk) are over (default 10 s).
	MoveLogsAfter time.Duration
}

func (c *Sweep) defaults() {
	if c.Every == 0 {
		c.Every = 10 * time.Minute
	}
	if c.OutboxKeep <= 0 {
		c.OutboxKeep = 7 * 24 * time.Hour
	}
	if c.MoveLogsEvery <= 0 {
		c.MoveLogsEvery = 5 * time.Second
	}
	if c.MoveLogsAfter <= 0 {
		c.MoveLogsAfter = 10 * time.Second
	}
}

// moveLogsBatch: a MoveLogs call that moved fewer jobs has caught up.
const moveLogsBatch = 100

// moveLogsLoop moves the logs of finished runs out of the database into
// the object store (a store without one does nothing), a batch at a time.
func (s *Server) moveLogsLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.cfg.Sweep.MoveLogsEvery):
		}
		for ctx.Err() == nil {
			n, err := s.store.MoveLogs(ctx, time.Now().Add(-s.cfg.Sweep.MoveLogsAfter))
			if err != nil {
				if ctx.Err() == nil {
					s.log.Error("moving logs to the object store", "err", err)
				}
				break
			}
			if n > 0 {
				s.log.Debug("moved logs to the object store", "jobs", n)
			}
			if n < moveLogsBatch {
				break
			}
		}
	}
}

// sweepLoop deletes history past retention every Sweep.Every. The store
// works in small transactions, so webhooks and jobs go on meanwhile;
// replicas sweeping at once delete each row once.
func (s *Server) sweepLoop(ctx context.Context) {
	if s.cfg.Sweep.Every < 0 {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.cfg.Sweep.Every):
		}
		s.sweepCaches(ctx)
		t0 := time.Now()
		sw, err := s.store.Sweep(ctx, s.cfg.Now(), s.cfg.Sweep.OutboxKeep)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("retention sweep", "err", err)
			}
			continue
		}
		if sw != (store.Swept{}) {
			s.log.Info("retention sweep", "runs", sw.Runs, "log_chunks", sw.LogChunks, "artifacts", sw.Artifacts,
				"statuses", sw.Statuses, "events", sw.Events, "took", time.Since(t0).Round(time.Millisecond))
		}
	}
}

// cacheEvictor is the cache store's eviction by age (*cache.Store).
type cacheEvictor interface {
	EvictUnused(ctx context.Context, repo string, before time.Time) (int, error)
}

// sweepCaches evicts the caches of each repository with a caches
// retention that were not used within it (the size limit evicts too, by
// least recent use, when a cache is saved).
func (s *Server) sweepCaches(ctx context.Context) {
	ev, ok := s.kit.cache.Store.(cacheEvictor)
	if !ok {
		return
	}
	list, err := s.store.CacheRetentions(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("cache retention", "err", err)
		}
		return
	}
	now := s.cfg.Now()
	for _, r := range list {
		n, err := ev.EvictUnused(ctx, cache.TenantRepo(r.OrgID, r.Repo), now.Add(-time.Duration(r.Days)*24*time.Hour))
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("cache retention", "repo", r.Repo, "err", err)
			}
			continue
		}
		if n > 0 {
			s.log.Info("cache retention", "repo", r.Repo, "evicted", n, "days", r.Days)
		}
	}
}
