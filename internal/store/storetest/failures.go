package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/ratelimit"
	"github.com/conveyor-ci/conveyor/internal/store"
)

var failureTests = []test{
	{"FailureBuckets", testFailureBuckets},
	{"FailureBucketsConcurrent", testFailureBucketsConcurrent},
}

func buckets(e *env) store.FailureBuckets {
	fb, ok := e.s.(store.FailureBuckets)
	if !ok {
		e.t.Fatalf("%T does not keep failure buckets", e.s)
	}
	return fb
}

// A bucket: full when new, a token per failure, back one per Every, at
// most Burst; Reset empties it; a day-old bucket goes on the next failure.
func testFailureBuckets(t *testing.T, e *env) {
	fb := buckets(e)
	lim := ratelimit.Limit{Burst: 3, Every: time.Minute}
	t0 := time.Unix(2_000_000_000, 0)
	wait := func(key string, at time.Time) time.Duration {
		t.Helper()
		d, err := fb.FailureWait(e.ctx, key, lim, at)
		e.must(err)
		return d
	}
	if d := wait("k", t0); d != 0 {
		t.Fatalf("a new key waits %s", d)
	}
	for i := 0; i < 3; i++ {
		e.must(fb.TakeFailure(e.ctx, "k", lim, t0))
	}
	if d := wait("k", t0); d != time.Minute {
		t.Errorf("after 3 failures: wait %s, want 1m", d)
	}
	if d := wait("k", t0.Add(45*time.Second)); d != 15*time.Second {
		t.Errorf("45 s later: wait %s, want 15s", d)
	}
	if d := wait("other", t0); d != 0 {
		t.Errorf("another key waits %s", d)
	}
	// Tokens come back, one a minute, no more than Burst.
	e.must(fb.TakeFailure(e.ctx, "k", lim, t0.Add(10*time.Minute))) // full again, then one taken
	e.must(fb.TakeFailure(e.ctx, "k", lim, t0.Add(10*time.Minute)))
	if d := wait("k", t0.Add(10*time.Minute)); d != 0 {
		t.Errorf("2 failures after refilling: wait %s, want 0", d)
	}
	e.must(fb.TakeFailure(e.ctx, "k", lim, t0.Add(10*time.Minute)))
	if d := wait("k", t0.Add(10*time.Minute)); d != time.Minute {
		t.Errorf("3 failures after refilling: wait %s, want 1m", d)
	}
	// A clock behind the stored one (another replica's) refills nothing.
	e.must(fb.TakeFailure(e.ctx, "k", lim, t0.Add(9*time.Minute)))
	if d := wait("k", t0.Add(10*time.Minute)); d != time.Minute {
		t.Errorf("a failure from a late clock: wait %s, want 1m", d)
	}
	e.must(fb.ResetFailures(e.ctx, "k"))
	if d := wait("k", t0.Add(10*time.Minute)); d != 0 {
		t.Errorf("after reset: wait %s", d)
	}
	// Old buckets are deleted by later failures.
	hourly := ratelimit.Limit{Burst: 1, Every: time.Hour}
	e.must(fb.TakeFailure(e.ctx, "old", hourly, t0))
	if d, err := fb.FailureWait(e.ctx, "old", hourly, t0); err != nil || d != time.Hour {
		t.Fatalf("old: wait %s, %v", d, err)
	}
	e.must(fb.TakeFailure(e.ctx, "new", lim, t0.Add(25*time.Hour)))
	if d, err := fb.FailureWait(e.ctx, "old", ratelimit.Limit{Burst: 1, Every: 1000 * time.Hour}, t0); err != nil || d != 0 {
		t.Errorf("a bucket a day old is still there: wait %s, %v", d, err)
	}
}

// Failures at once (from several replicas) each take their token: no
// update is lost.
func testFailureBucketsConcurrent(t *testing.T, e *env) {
	fb := buckets(e)
	lim := ratelimit.Limit{Burst: 8, Every: time.Hour}
	now := time.Unix(2_000_000_000, 0)
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- fb.TakeFailure(e.ctx, "shared", lim, now)
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		e.must(err)
	}
	d, err := fb.FailureWait(e.ctx, "shared", lim, now)
	e.must(err)
	if d != time.Hour {
		t.Errorf("8 concurrent failures of a bucket of 8: wait %s, want 1h (an update was lost)", d)
	}
}
