package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// maxBackoff caps how long a job's fault keeps a pool drained.
const maxBackoff = 10 * time.Minute

// Scheduler holds the pools and picks one per job. Safe for concurrent
// use.
type Scheduler struct {
	mu      sync.Mutex
	pools   []*Pool
	changed chan struct{} // closed when room frees or health changes
	log     *slog.Logger
	now     func() time.Time
}

// New returns a Scheduler of pools. They count as unhealthy until their
// first probe (Run) passes.
func New(pools []*Pool, log *slog.Logger) (*Scheduler, error) {
	if len(pools) == 0 {
		return nil, errs.E("pools", errs.Invalid, "no pools")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, p := range pools {
		if p.Backends.Main == nil || p.Spec.Capacity <= 0 {
			return nil, errs.E("pools", errs.Invalid, "pool %q: no backend or no capacity", p.Spec.Name)
		}
		p.reason = "not probed yet"
	}
	return &Scheduler{pools: pools, changed: make(chan struct{}), log: log, now: time.Now}, nil
}

// Changed is closed at the next change of room or health.
func (s *Scheduler) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// notify wakes the waiters of Changed; s.mu is held.
func (s *Scheduler) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Names are the pools' names, comma-separated, in config order.
func (s *Scheduler) Names() string {
	names := make([]string, 0, len(s.pools))
	for _, p := range s.pools {
		names = append(names, p.Spec.Name)
	}
	return strings.Join(names, ", ")
}

// Specs are the pools' settings, in config order.
func (s *Scheduler) Specs() []Spec {
	out := make([]Spec, 0, len(s.pools))
	for _, p := range s.pools {
		out = append(out, p.Spec)
	}
	return out
}

// Capacity is the sum of the pools' capacities.
func (s *Scheduler) Capacity() int {
	n := 0
	for _, p := range s.pools {
		n += p.Spec.Capacity
	}
	return n
}

// LeaseLabels are the runs-on label sets to lease jobs for, best pool
// first: one per healthy pool with room (local stands for a pool that
// serves any label: the labels the replica runs). Empty: no room.
func (s *Scheduler) LeaseLabels(local []string) [][]string {
	s.mu.Lock()
	open := make([]*Pool, 0, len(s.pools))
	for _, p := range s.pools {
		if p.open() {
			open = append(open, p)
		}
	}
	slices.SortStableFunc(open, func(a, b *Pool) int {
		if a.before(b) {
			return -1
		}
		if b.before(a) {
			return 1
		}
		return 0
	})
	var sets [][]string
	for _, p := range open {
		l := p.Spec.Labels
		if len(l) == 0 {
			l = local
		}
		if !slices.ContainsFunc(sets, func(x []string) bool { return slices.Equal(x, l) }) {
			sets = append(sets, l)
		}
	}
	s.mu.Unlock()
	return sets
}

// Pick reserves room for a job with these runs-on labels on the best
// pool: healthy, serving them, with room; regular pools before burst
// ones, the least loaded first (config order on ties). nil: none can
// take the job now.
func (s *Scheduler) Pick(labels []string) *Slot {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *Pool
	for _, p := range s.pools {
		if p.open() && p.serves(labels) && (best == nil || p.before(best)) {
			best = p
		}
	}
	if best == nil {
		return nil
	}
	best.running++
	return &Slot{s: s, p: best}
}

// Stats are the pools' states, in config order.
func (s *Scheduler) Stats() []Stat {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Stat, 0, len(s.pools))
	for _, p := range s.pools {
		out = append(out, Stat{Name: p.Spec.Name, Kind: p.Spec.Kind, Burst: p.Spec.Burst, Healthy: p.healthy,
			Reason: p.reason, Running: p.running, Capacity: p.Spec.Capacity})
	}
	return out
}

// Run probes every pool at once and then every ProbeInterval until ctx
// ends, and waits for the probes to stop.
func (s *Scheduler) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range s.pools {
		wg.Go(func() {
			t := time.NewTicker(p.Spec.ProbeInterval)
			defer t.Stop()
			for {
				s.probe(ctx, p)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	wg.Wait()
}

// probe runs p's probe and records the outcome.
func (s *Scheduler) probe(ctx context.Context, p *Pool) error {
	var err error
	if p.Probe != nil {
		pctx, cancel := context.WithTimeout(ctx, min(p.Spec.ProbeInterval, 10*time.Second))
		err = p.Probe(pctx)
		cancel()
	}
	if ctx.Err() != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil:
		s.setHealth(p, false, "probe failed: "+err.Error())
	case s.now().Before(p.until):
		// drained after a job's fault: the back-off decides
	default:
		s.setHealth(p, true, "")
	}
	return err
}

// setHealth records p's health, logging changes; s.mu is held.
func (s *Scheduler) setHealth(p *Pool, healthy bool, reason string) {
	was := p.healthy
	p.healthy, p.reason = healthy, reason
	switch {
	case healthy && !was:
		s.log.Info("backend pool healthy", "pool", p.Spec.Name, "running", p.running, "capacity", p.Spec.Capacity)
	case !healthy && was:
		s.log.Warn("backend pool unhealthy: drained", "pool", p.Spec.Name, "reason", reason)
	}
	if healthy != was {
		s.notify()
	}
}

// fault drains p after a job met err on it, for a back-off that doubles
// with each fault in a row.
func (s *Scheduler) fault(p *Pool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.faults++
	wait := min(p.Spec.ProbeInterval<<min(p.faults-1, 10), maxBackoff)
	p.until = s.now().Add(wait)
	s.setHealth(p, false, fmt.Sprintf("a job's sandbox failed (%v); drained for %s at least", err, wait))
}

// isFault says whether a Setup error on p is the pool's rather than
// the job's: a pod Pending past its deadline, or an error of a kind a
// broken pool gives that the pool's probe then confirms.
func (s *Scheduler) isFault(ctx context.Context, p *Pool, err error) bool {
	if errors.Is(err, backend.ErrNoRoom) {
		return true
	}
	switch errs.KindOf(err) {
	case errs.Unavailable, errs.Unauthorized, errs.Forbidden, errs.Timeout:
	default:
		return false
	}
	return s.probe(context.WithoutCancel(ctx), p) != nil
}

// Slot is a job's room on a pool, from Pick until Done.
type Slot struct {
	s    *Scheduler
	p    *Pool
	mu   sync.Mutex
	done bool
	made bool  // a sandbox was set up: steps may have run
	err  error // the pool's fault the job met
}

// Pool is the slot's pool.
func (sl *Slot) Pool() *Pool { return sl.p }

// Backends are the pool's backends, Main watched for the pool's faults.
func (sl *Slot) Backends() Backends {
	b := sl.p.Backends
	b.Main = &watched{Backend: b.Main, sl: sl}
	return b
}

// Done frees the room. Safe to call twice.
func (sl *Slot) Done() {
	sl.mu.Lock()
	done := sl.done
	sl.done = true
	sl.mu.Unlock()
	if done {
		return
	}
	sl.s.mu.Lock()
	sl.p.running--
	sl.s.notify()
	sl.s.mu.Unlock()
}

// HandBack is why the job should go back to the queue rather than
// complete: the pool failed before any of its sandboxes was made, so
// no step ran. "": complete it.
func (sl *Slot) HandBack() string {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.err == nil || sl.made {
		return ""
	}
	return fmt.Sprintf("backend pool %s is failing (%v): the job goes to another pool", sl.p.Spec.Name, sl.err)
}

// watched is a pool's backend that tells the scheduler about its faults.
type watched struct {
	backend.Backend
	sl *Slot
}

func (w *watched) Setup(ctx context.Context, job *backend.JobSpec, log io.Writer) (backend.Sandbox, error) {
	sb, err := w.Backend.Setup(ctx, job, log)
	sl := w.sl
	if err == nil {
		sl.mu.Lock()
		sl.made = true
		sl.mu.Unlock()
		sl.s.mu.Lock()
		sl.p.faults = 0
		sl.s.mu.Unlock()
		return sb, nil
	}
	if ctx.Err() == nil && sl.s.isFault(ctx, sl.p, err) {
		sl.mu.Lock()
		sl.err = err
		sl.mu.Unlock()
		sl.s.fault(sl.p, err)
		if log != nil {
			fmt.Fprintf(log, "Backend pool %s is failing: %v\n", sl.p.Spec.Name, err)
		}
	}
	return nil, err
}
