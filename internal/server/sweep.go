package server

import (
	"context"
	"time"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// Sweep tunes the retention sweeper (see store.Retainer).
type Sweep struct {
	// Every is how often it runs (default 10 min; negative: never).
	Every time.Duration
	// OutboxKeep is how long sent commit statuses are kept (default 7 days).
	OutboxKeep time.Duration
}

func (c *Sweep) defaults() {
	if c.Every == 0 {
		c.Every = 10 * time.Minute
	}
	if c.OutboxKeep <= 0 {
		c.OutboxKeep = 7 * 24 * time.Hour
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
