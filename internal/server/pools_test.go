package server

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/pool"
	"github.com/conveyor-ci/conveyor/internal/store"
)

const twoJobs = `name: Two
on: push
jobs:
  one:
    runs-on: ubuntu-latest
    steps:
      - run: sleep 2
  two:
    runs-on: ubuntu-latest
    steps:
      - run: sleep 2
`

// A host pool of capacity 1 whose probe fails at first: no job is
// leased while it is drained (both stay queued, no attempt used), then
// they run one at a time, the second queued until the first is done.
func TestPoolsNoRoomKeepsJobsQueued(t *testing.T) {
	var down atomic.Bool
	var probes atomic.Int64
	down.Store(true)
	h := host.New(host.Options{})
	p := &pool.Pool{Spec: pool.Spec{Name: "h", Kind: pool.Host, Capacity: 1, ProbeInterval: 50 * time.Millisecond},
		Backends: pool.Backends{Main: h, Host: h},
		Probe: func(context.Context) error {
			probes.Add(1)
			if down.Load() {
				return errs.E("probe", errs.Unavailable, "engine down")
			}
			return nil
		}}
	sched, err := pool.New([]*pool.Pool{p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/two.yml": twoJobs, "README.md": "hi\n"}, pools: sched})
	if code, body := hs.hook("push", hs.push("main", "README.md"), "q-1"); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	var runID int64
	waitFor(t, time.Minute, "the run's jobs queued", func() bool {
		runs, err := hs.st.ListRuns(context.Background(), 1, store.RunFilter{Limit: 1})
		if err != nil || len(runs) == 0 {
			return false
		}
		runID = runs[0].ID
		jobs := hs.jobs(runID)
		return len(jobs) == 2 && jobs["one"].Status == store.StatusQueued && jobs["two"].Status == store.StatusQueued
	})
	seen := probes.Load()
	waitFor(t, time.Minute, "five more failed probes", func() bool { return probes.Load() >= seen+5 })
	for k, j := range hs.jobs(runID) {
		if j.Status != store.StatusQueued || j.Attempt != 0 {
			t.Errorf("job %s with its pool drained: %s, attempt %d", k, j.Status, j.Attempt)
		}
	}
	down.Store(false)
	waitFor(t, time.Minute, "a job running", func() bool {
		jobs := hs.jobs(runID)
		one, two := jobs["one"].Status, jobs["two"].Status
		if one == store.StatusRunning && two == store.StatusRunning {
			t.Fatal("capacity 1, yet both jobs run")
		}
		return one == store.StatusRunning && two == store.StatusQueued || two == store.StatusRunning && one == store.StatusQueued
	})
	r := hs.waitRuns(1, time.Minute)[0]
	for k, j := range hs.jobs(r.ID) {
		if j.Status != store.StatusSuccess || j.Attempt != 1 {
			t.Errorf("job %s: %s, attempt %d", k, j.Status, j.Attempt)
		}
	}
	if st := sched.Stats()[0]; !st.Healthy || st.Running != 0 {
		t.Errorf("pool after the run: %+v", st)
	}
}
