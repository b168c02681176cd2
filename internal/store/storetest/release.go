package storetest

import (
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

var releaseTests = []test{
	{"Release", testRelease},
	{"ReleaseKeepsRetries", testReleaseKeepsRetries},
	{"ReleaseStale", testReleaseStale},
	{"ReleaseWhileCancelling", testReleaseWhileCancelling},
}

// testRelease: a released job is queued again at once, its attempt kept.
func testRelease(t *testing.T, e *env) {
	r := e.newRun(e.repo, nil, job("a"), job("b", "a"))
	l := e.lease(store.LeaseRequest{Owner: "agent:7"})
	e.must(e.s.Release(e.ctx, l.Job.ID, l.Job.LeaseToken, "agent shutting down"))
	j := e.jobs(r.ID)["a"]
	if j.Status != store.StatusQueued || j.LeaseOwner != "" || j.MaxAttempts != 3 || !j.Started.IsZero() ||
		!j.LeaseExpires.IsZero() || j.Queued.Before(l.Job.Started) {
		t.Errorf("released job = %+v", j)
	}
	if got := e.getRun(r.ID); got.Status != store.StatusRunning {
		t.Errorf("run is %s after a release, want running", got.Status)
	}
	as, err := e.s.Attempts(e.ctx, e.org.ID, j.ID)
	e.must(err)
	if len(as) != 1 || as[0].Attempt != 1 || as[0].Owner != "agent:7" || as[0].Reason != "agent shutting down" ||
		!as[0].Started.Equal(l.Job.Started) || as[0].Finished.IsZero() {
		t.Errorf("Attempts = %+v", as)
	}
	again := e.leaseKey("a")
	if again.Job.Attempt != 2 || again.Job.LeaseToken <= l.Job.LeaseToken || again.Job.LeaseOwner != "worker" {
		t.Errorf("re-lease after release = %+v", again.Job)
	}
	e.complete(again, store.StatusSuccess)
	e.wantJobs(r.ID, map[string]string{"a": store.StatusSuccess, "b": store.StatusQueued})

	// Without a reason the attempt still says why.
	lb := e.leaseKey("b")
	e.must(e.s.Release(e.ctx, lb.Job.ID, lb.Job.LeaseToken, ""))
	if as, _ := e.s.Attempts(e.ctx, e.org.ID, lb.Job.ID); len(as) != 1 || as[0].Reason == "" {
		t.Errorf("Attempts after a release without reason = %+v", as)
	}
}

// testReleaseKeepsRetries: after a release, a lost lease is retried as
// often as if the release had not happened.
func testReleaseKeepsRetries(t *testing.T, e *env) {
	r := e.newRun(e.repo, nil, job("a"), &store.Job{Key: "once", MaxAttempts: 1})
	later := func() time.Time { return time.Now().Add(2 * time.Minute) }
	for _, l := range []*store.Lease{e.leaseKey("a"), e.leaseKey("once")} {
		e.must(e.s.Release(e.ctx, l.Job.ID, l.Job.LeaseToken, "drain deadline"))
	}
	e.leaseKey("a")
	e.leaseKey("once")
	ex, err := e.s.Expire(e.ctx, later())
	e.must(err)
	requeued := map[int64]bool{}
	for _, x := range ex {
		requeued[x.JobID] = x.Requeue
	}
	js := e.jobs(r.ID)
	if len(ex) != 2 || !requeued[js["a"].ID] || requeued[js["once"].ID] {
		t.Fatalf("Expire after a release = %+v: want a re-queued (one retry left), once failed (none)", ex)
	}
	e.leaseKey("a")
	ex, err = e.s.Expire(e.ctx, later())
	e.must(err)
	if len(ex) != 1 || ex[0].Requeue {
		t.Fatalf("second loss = %+v, want the job to end", ex)
	}
	e.wantJobs(r.ID, map[string]string{"a": store.StatusError, "once": store.StatusError})
	as, err := e.s.Attempts(e.ctx, e.org.ID, js["a"].ID)
	e.must(err)
	if len(as) != 3 || as[0].Reason != "drain deadline" || as[1].Attempt != 2 || as[2].Attempt != 3 {
		t.Errorf("Attempts = %+v", as)
	}
}

func testReleaseStale(t *testing.T, e *env) {
	e.newRun(e.repo, nil, job("a"), job("b"))
	l := e.leaseKey("a")
	id, tok := l.Job.ID, l.Job.LeaseToken
	wantKind(t, e.s.Release(e.ctx, id, tok+1000, "x"), errs.Conflict, "Release with a stale token")
	wantKind(t, e.s.Release(e.ctx, id+1000, tok, "x"), errs.NotFound, "Release of an unknown job")
	e.must(e.s.Release(e.ctx, id, tok, "x"))
	wantKind(t, e.s.Release(e.ctx, id, tok, "x"), errs.Conflict, "Release twice")
	// The old holder is fenced off, also once the job is leased again.
	_, err := e.s.Heartbeat(e.ctx, id, tok, time.Minute)
	wantKind(t, err, errs.Conflict, "Heartbeat after Release")
	again := e.leaseKey("a")
	wantKind(t, e.s.Complete(e.ctx, id, tok, store.Completion{Status: store.StatusSuccess}), errs.Conflict, "Complete after Release")
	wantKind(t, e.s.Release(e.ctx, id, tok, "x"), errs.Conflict, "Release with the previous lease's token")
	e.complete(again, store.StatusSuccess)
	wantKind(t, e.s.Release(e.ctx, id, again.Job.LeaseToken, "x"), errs.Conflict, "Release after Complete")
	lb := e.leaseKey("b")
	if ex, err := e.s.Expire(e.ctx, time.Now().Add(2*time.Minute)); err != nil || len(ex) != 1 {
		t.Fatalf("Expire = %+v, %v", ex, err)
	}
	wantKind(t, e.s.Release(e.ctx, lb.Job.ID, lb.Job.LeaseToken, "x"), errs.Conflict, "Release after expiry")
}

// testReleaseWhileCancelling: a job handed back while its run is being
// cancelled ends cancelled, and so does the run.
func testReleaseWhileCancelling(t *testing.T, e *env) {
	r := e.newRun(e.repo, nil, job("a"), job("b", "a"))
	l := e.leaseKey("a")
	_, err := e.s.CancelRun(e.ctx, e.org.ID, r.ID, "stopped by alice")
	e.must(err)
	e.must(e.s.Release(e.ctx, l.Job.ID, l.Job.LeaseToken, "agent shutting down"))
	e.wantJobs(r.ID, map[string]string{"a": store.StatusCancelled, "b": store.StatusCancelled})
	if got := e.getRun(r.ID); got.Status != store.StatusCancelled || got.Finished.IsZero() {
		t.Errorf("run = %+v, want cancelled", got)
	}
	if as, _ := e.s.Attempts(e.ctx, e.org.ID, l.Job.ID); len(as) != 1 || as[0].Reason != "agent shutting down" {
		t.Errorf("Attempts = %+v", as)
	}
	e.noLease(store.LeaseRequest{})
}
