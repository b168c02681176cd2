// Package pool spreads a server's jobs over backend pools: Kubernetes
// clusters (or namespaces of one), Docker engines, the host. Each pool has
// a capacity (jobs at once), the runs-on labels it serves, a health probe
// run every interval and a measured load (running / capacity).
//
// The Scheduler picks, for a leased job, a healthy pool that serves its
// labels and has room, least loaded first; a burst pool (an elastic node
// pool, virtual nodes) only when no regular pool can take the job. A pool
// whose probe fails, whose pod stays Pending past its deadline
// (backend.ErrNoRoom), or whose Setup fails with an error its probe then
// confirms, is drained: it gets no new job until its probe passes again
// (and, after a job's fault, a back-off that doubles with every fault).
// The job that met the fault is handed back to the queue (Slot.HandBack)
// so that another pool runs it.
package pool

import (
	"context"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
)

// Backends are the sandboxes of a pool's jobs (see exec.Options): Main
// for container jobs, Host for self-hosted ones, Containers for container
// steps of host jobs (nil: none).
type Backends struct {
	Main, Host, Containers backend.Backend
}

// Pool is one place jobs run. Its exported fields are set before
// New and not changed after.
type Pool struct {
	Spec     Spec
	Backends Backends
	// Platforms, when not nil, maps runs-on labels for this pool's jobs
	// instead of the server's mapping (a host pool runs all on the host).
	Platforms map[string]string
	// Probe checks the pool's health: a cheap authenticated call (nil:
	// always healthy).
	Probe func(ctx context.Context) error

	state // guarded by the Scheduler's mutex
}

// state is a pool's live state.
type state struct {
	running int
	healthy bool
	reason  string
	faults  int       // jobs' faults in a row (the back-off's exponent)
	until   time.Time // drained at least until then after a job's fault
}

// serves reports whether the pool runs jobs with these runs-on labels:
// each plain label is one of the pool's (no pool labels: any).
func (p *Pool) serves(labels []string) bool {
	if len(p.Spec.Labels) == 0 {
		return true
	}
	for _, l := range labels {
		if strings.Contains(l, "${{") {
			continue // known at run time only
		}
		found := false
		for _, have := range p.Spec.Labels {
			found = found || strings.EqualFold(have, l)
		}
		if !found {
			return false
		}
	}
	return true
}

// open: healthy with room.
func (p *Pool) open() bool { return p.healthy && p.running < p.Spec.Capacity }

// before reports whether a job should rather go to p than to q: regular
// before burst, then the lower load (running / capacity).
func (p *Pool) before(q *Pool) bool {
	if p.Spec.Burst != q.Spec.Burst {
		return !p.Spec.Burst
	}
	return p.running*q.Spec.Capacity < q.running*p.Spec.Capacity
}

// Stat is a pool's state for metrics and logs.
type Stat struct {
	Name     string
	Kind     Kind
	Burst    bool
	Healthy  bool
	Reason   string // why it is unhealthy
	Running  int
	Capacity int
}
