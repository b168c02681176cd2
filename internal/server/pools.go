package server

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/conveyor-ci/conveyor/internal/pool"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// poolLoop probes the backend pools until ctx ends (no pools: nothing).
func (s *Server) poolLoop(ctx context.Context) {
	if s.pools != nil {
		s.pools.Run(ctx)
	}
}

// leaseOnPools waits for a job that a backend pool has room for, and
// reserves that room; nil when ctx ends. It leases for each pool with
// room, best first, with the runs-on labels that pool serves, so that a
// job no pool can take now stays queued.
func (s *Server) leaseOnPools(ctx context.Context) (*store.Lease, *pool.Slot) {
	for {
		changed := s.pools.Changed()
		for _, labels := range s.pools.LeaseLabels(s.localLabels()) {
			l, err := s.store.Lease(ctx, store.LeaseRequest{Owner: s.cfg.Replica, Labels: labels,
				TTL: s.cfg.LeaseTTL, RepoLimit: s.cfg.RepoLimit})
			if err != nil && ctx.Err() == nil {
				s.log.Error("leasing a job", "err", err)
			}
			if l == nil {
				continue
			}
			if slot := s.pools.Pick(l.Job.Labels); slot != nil {
				return l, slot
			}
			// The pool's room went meanwhile: back to the queue, unharmed.
			if err := s.store.Release(ctx, l.Job.ID, l.Job.LeaseToken, "no backend pool has room for the job now"); err != nil {
				s.log.Warn("handing back a job no pool has room for", "job", l.Job.ID, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-s.wake.dispatch:
		case <-changed:
		case <-time.After(s.cfg.Poll):
		}
	}
}

// handBack is why a job run on slot goes back to the queue (its pool
// failed before any step ran), "" to complete it. A job is moved a
// bounded number of times: one that breaks every pool ends in error.
func (s *Server) handBack(l *store.Lease, slot *pool.Slot) func() string {
	if slot == nil {
		return nil
	}
	return func() string {
		if l.Job.Attempt > len(s.pools.Stats())+2 {
			return ""
		}
		return slot.HandBack()
	}
}

// poolStates is a collector of the pools' health and load at scrape time.
type poolStates struct {
	pools                      *pool.Scheduler
	healthy, running, capacity *prometheus.Desc
}

func newPoolStates(p *pool.Scheduler) *poolStates {
	labels := []string{"pool", "kind", "burst"}
	return &poolStates{pools: p,
		healthy:  prometheus.NewDesc("conveyor_pool_healthy", "1 when the backend pool passes its health probe and takes jobs, 0 when drained.", labels, nil),
		running:  prometheus.NewDesc("conveyor_pool_running_jobs", "Jobs this replica runs on the backend pool.", labels, nil),
		capacity: prometheus.NewDesc("conveyor_pool_capacity_jobs", "Jobs the backend pool runs at once (its configured capacity).", labels, nil)}
}

func (c *poolStates) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.healthy
	ch <- c.running
	ch <- c.capacity
}

func (c *poolStates) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.pools.Stats() {
		lv := []string{st.Name, string(st.Kind), strconv.FormatBool(st.Burst)}
		h := 0.0
		if st.Healthy {
			h = 1
		}
		ch <- prometheus.MustNewConstMetric(c.healthy, prometheus.GaugeValue, h, lv...)
		ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, float64(st.Running), lv...)
		ch <- prometheus.MustNewConstMetric(c.capacity, prometheus.GaugeValue, float64(st.Capacity), lv...)
	}
}
