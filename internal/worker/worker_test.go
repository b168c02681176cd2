package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/jobrun"
	"github.com/conveyor-ci/conveyor/internal/jobspec"
)

// fakeLease holds a lease as the store does, with a strict expiry: any
// call after the lease's end (no heartbeat for ttl) fails with Conflict,
// which is stricter than the store (that takes a completion until
// another attempt took the job).
type fakeLease struct {
	mu       sync.Mutex
	ttl      time.Duration
	expires  time.Time
	expired  bool
	cancel   bool
	downTill time.Time
	// loseAnswers makes every other successful AppendLog fail after
	// storing (its answer lost on the way).
	loseAnswers bool
	answers     int
	beats       int
	chunks      [][]byte
	reports     []jobspec.Report
	releases    []string
}

func newFakeLease(ttl time.Duration) *fakeLease {
	return &fakeLease{ttl: ttl, expires: time.Now().Add(ttl)}
}

var errDown = errs.E("fake", errs.Unavailable, "connection refused")

// check is called under mu: Unavailable while down, Conflict once the
// lease ended.
func (f *fakeLease) check() error {
	now := time.Now()
	if now.Before(f.downTill) {
		return errDown
	}
	if f.expired || now.After(f.expires) || len(f.reports) > 0 || len(f.releases) > 0 {
		f.expired = true
		return errs.E("fake", errs.Conflict, "lease lost")
	}
	return nil
}

func (f *fakeLease) down(d time.Duration) {
	f.mu.Lock()
	f.downTill = time.Now().Add(d)
	f.mu.Unlock()
}

func (f *fakeLease) Heartbeat(context.Context) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return false, err
	}
	f.expires = time.Now().Add(f.ttl)
	f.beats++
	return f.cancel, nil
}

func (f *fakeLease) AppendLog(_ context.Context, data []byte, retryPrev int64) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return 0, err
	}
	n := int64(len(f.chunks))
	if retryPrev >= 0 && n > 0 && n-1 == retryPrev && bytes.Equal(f.chunks[n-1], data) {
		return n, nil // stored before: its answer was lost
	}
	f.chunks = append(f.chunks, bytes.Clone(data))
	f.answers++
	if f.loseAnswers && f.answers%2 == 1 {
		return 0, errDown
	}
	return n + 1, nil
}

func (f *fakeLease) Complete(_ context.Context, r jobspec.Report) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	f.reports = append(f.reports, r)
	return nil
}

func (f *fakeLease) Release(_ context.Context, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	f.releases = append(f.releases, reason)
	return nil
}

func (f *fakeLease) text() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(bytes.Join(f.chunks, nil))
}

func testWorker(ttl time.Duration) *Worker {
	return New(Config{TTL: ttl, Every: ttl / 4, Attempt: ttl, Backoff: 10 * time.Millisecond})
}

// A cancel seen by a heartbeat stops the run, whose cleanup (if:
// always() steps, teardown) then takes several leases: heartbeats go on,
// so the lease holds and the job completes as cancelled.
func TestCancelDuringLongCleanupKeepsLease(t *testing.T) {
	ttl := 200 * time.Millisecond
	l := newFakeLease(ttl)
	var beatsAtCancel int
	out := testWorker(ttl).Do(t.Context(), Job{ID: 1, Name: "build", Lease: l,
		Run: func(ctx context.Context, log *jobrun.Log) jobspec.Report {
			log.Line("step 1")
			l.mu.Lock()
			l.cancel = true // the run is cancelled now
			l.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
				t.Error("the cancel did not stop the run")
			}
			if errs.KindOf(context.Cause(ctx)) != errs.Canceled {
				t.Errorf("cause %v, want a cancel", context.Cause(ctx))
			}
			l.mu.Lock()
			beatsAtCancel = l.beats
			l.mu.Unlock()
			time.Sleep(5 * ttl) // the cleanup outlives the lease several times
			log.Line("cleanup done")
			return jobspec.Report{Status: jobspec.Cancelled}
		}})
	if out != Completed {
		t.Fatalf("outcome %v, want completed", out)
	}
	if len(l.reports) != 1 || l.reports[0].Status != jobspec.Cancelled || l.reports[0].Version != jobspec.Version {
		t.Fatalf("reports %+v", l.reports)
	}
	if l.beats-beatsAtCancel < 4 {
		t.Errorf("%d heartbeats during the cleanup, want at least 4", l.beats-beatsAtCancel)
	}
	if !strings.Contains(l.text(), "cleanup done") {
		t.Errorf("log %q lacks the cleanup", l.text())
	}
}

// The store goes away for longer than a lease right when the job ends:
// the last log chunk and the completion are retried until it is back,
// each stored once.
func TestCompletionAndLogRetriedAcrossOutage(t *testing.T) {
	ttl := 300 * time.Millisecond
	l := newFakeLease(ttl)
	l.loseAnswers = true
	out := testWorker(ttl).Do(t.Context(), Job{ID: 1, Name: "build", Lease: l,
		Run: func(ctx context.Context, log *jobrun.Log) jobspec.Report {
			for i := range 5 {
				log.Line(fmt.Sprintf("line %d", i))
				time.Sleep(jobrun.ChunkDelay * 2)
			}
			// Down for less than a lease: the expiry below is the fake's,
			// stricter than the store's, which would wait for Expire.
			l.down(ttl / 2)
			log.Line("last line")
			return jobspec.Report{Status: jobspec.Success, Outputs: map[string]string{"k": "v"}}
		}})
	if out != Completed || len(l.reports) != 1 || l.reports[0].Outputs["k"] != "v" {
		t.Fatalf("outcome %v, reports %+v", out, l.reports)
	}
	want := "line 0\nline 1\nline 2\nline 3\nline 4\nlast line\n"
	if got := l.text(); got != want {
		t.Errorf("log %q, want %q (each line once, in order)", got, want)
	}
}

// A completion refused as stale (another attempt owns the job) is not
// retried.
func TestLostLeaseIsNotCompleted(t *testing.T) {
	ttl := 200 * time.Millisecond
	l := newFakeLease(ttl)
	out := testWorker(ttl).Do(t.Context(), Job{ID: 1, Lease: l,
		Run: func(ctx context.Context, log *jobrun.Log) jobspec.Report {
			l.mu.Lock()
			l.expired = true // Expire handed it to another attempt
			l.mu.Unlock()
			<-ctx.Done() // the next heartbeat sees it and stops the run
			if !errs.Is(context.Cause(ctx), errs.Conflict) {
				t.Errorf("cause %v", context.Cause(ctx))
			}
			return jobspec.Report{Status: jobspec.Failure}
		}})
	if out != Lost || len(l.reports) != 0 {
		t.Fatalf("outcome %v, reports %+v", out, l.reports)
	}
}

// Stop with ErrHandBack stops the run and hands the job back.
func TestHandBack(t *testing.T) {
	ttl := 200 * time.Millisecond
	l := newFakeLease(ttl)
	started := make(chan struct{})
	r := testWorker(ttl).Start(t.Context(), Job{ID: 1, Lease: l,
		Run: func(ctx context.Context, log *jobrun.Log) jobspec.Report {
			close(started)
			<-ctx.Done()
			return jobspec.Report{Status: jobspec.Cancelled}
		}})
	<-started
	r.Stop(ErrHandBack)
	if out := r.Wait(); out != Released || len(l.releases) != 1 || len(l.reports) != 0 {
		t.Fatalf("outcome %v, releases %v, reports %+v", out, l.releases, l.reports)
	}
}

// A store out of reach for a whole lease stops the run: another attempt
// may run the job now. When the lease turns out to still hold, the job
// is handed back rather than completed half-run.
func TestPresumedLostIsHandedBack(t *testing.T) {
	ttl := 200 * time.Millisecond
	l := newFakeLease(ttl)
	l.ttl, l.expires = time.Hour, time.Now().Add(time.Hour) // the fake keeps the lease; the worker cannot know
	out := testWorker(ttl).Do(t.Context(), Job{ID: 1, Lease: l,
		Run: func(ctx context.Context, log *jobrun.Log) jobspec.Report {
			l.down(3 * ttl)
			<-ctx.Done()
			if !errors.Is(context.Cause(ctx), errPresumedLost) {
				t.Errorf("cause %v", context.Cause(ctx))
			}
			return jobspec.Report{Status: jobspec.Cancelled}
		}})
	if out != Released || len(l.releases) != 1 || len(l.reports) != 0 {
		t.Fatalf("outcome %v, releases %v, reports %+v", out, l.releases, l.reports)
	}
}

// When Start's context ends the run stops and nothing is reported.
func TestAbandoned(t *testing.T) {
	ttl := 200 * time.Millisecond
	l := newFakeLease(ttl)
	ctx, cancel := context.WithCancel(t.Context())
	out := testWorker(ttl).Do(ctx, Job{ID: 1, Lease: l,
		Run: func(ctx context.Context, log *jobrun.Log) jobspec.Report {
			cancel()
			<-ctx.Done()
			return jobspec.Report{Status: jobspec.Cancelled}
		}})
	if out != Abandoned || len(l.reports)+len(l.releases) != 0 {
		t.Fatalf("outcome %v, reports %+v, releases %v", out, l.reports, l.releases)
	}
}

// A job whose HandBack gives a reason after its run (its backend pool
// failed before any step) goes back to the queue with that reason; an
// empty reason completes it.
func TestHandBackAfterRun(t *testing.T) {
	ttl := 200 * time.Millisecond
	for _, reason := range []string{"backend pool b is failing", ""} {
		l := newFakeLease(ttl)
		out := testWorker(ttl).Do(t.Context(), Job{ID: 1, Lease: l,
			Run: func(ctx context.Context, log *jobrun.Log) jobspec.Report {
				return jobspec.Report{Status: jobspec.Error, Error: "setup failed"}
			},
			HandBack: func() string { return reason }})
		switch {
		case reason != "" && (out != Released || len(l.releases) != 1 || l.releases[0] != reason || len(l.reports) != 0):
			t.Errorf("hand back: outcome %v, releases %q, reports %+v", out, l.releases, l.reports)
		case reason == "" && (out != Completed || len(l.releases) != 0 || len(l.reports) != 1):
			t.Errorf("no hand back: outcome %v, releases %q, reports %+v", out, l.releases, l.reports)
		}
	}
}
