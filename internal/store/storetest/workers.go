package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// leaseWorkers races one worker per entry of labels (owners w0, w1, ...,
// each leasing with its labels) over the queue: a worker leases a job,
// calls held (nil: nothing) and completes it as a success, until total
// jobs are done or within has passed. It returns how many were done.
func (e *env) leaseWorkers(t *testing.T, labels [][]string, total int, within time.Duration, held func(owner string, labels []string, l *store.Lease)) int {
	var mu sync.Mutex
	done := 0
	var wg sync.WaitGroup
	deadline := time.Now().Add(within)
	for w, ls := range labels {
		owner := fmt.Sprintf("w%d", w)
		wg.Go(func() {
			for time.Now().Before(deadline) {
				mu.Lock()
				finished := done == total
				mu.Unlock()
				if finished {
					return
				}
				l, err := e.s.Lease(e.ctx, store.LeaseRequest{Owner: owner, TTL: time.Minute, Labels: ls})
				if err != nil {
					t.Error(err)
					return
				}
				if l == nil {
					time.Sleep(time.Millisecond) // others hold the rest, or none is ours
					continue
				}
				if held != nil {
					held(owner, ls, l)
				}
				if err := e.s.Complete(e.ctx, l.Job.ID, l.Job.LeaseToken, store.Completion{Status: store.StatusSuccess}); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				done++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return done
}
