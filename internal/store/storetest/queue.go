package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

var queueTests = []test{
	{"LeaseOrder", testLeaseOrder},
	{"LeaseFields", testLeaseFields},
	{"LeaseBackends", testLeaseBackends},
	{"LeaseRepoLimit", testLeaseRepoLimit},
	{"LeaseConcurrent", testLeaseConcurrent},
	{"HeartbeatAndFencing", testHeartbeatAndFencing},
	{"DAG", testDAG},
	{"RunConclusion", testRunConclusion},
	{"Expire", testExpire},
	{"LateCompletion", testLateCompletion},
}

func prio(key string, p int) *store.Job { return &store.Job{Key: key, Priority: p} }

func testLeaseOrder(t *testing.T, e *env) {
	e.newRun(e.repo, nil, prio("low1", 0), prio("high1", 5), prio("low2", 0))
	e.newRun(e.repo, nil, prio("high2", 5), prio("neg", -1))
	for _, k := range []string{"high1", "high2", "low1", "low2", "neg"} {
		e.leaseKey(k)
	}
	e.noLease(store.LeaseRequest{})
	_, err := e.s.Lease(e.ctx, store.LeaseRequest{TTL: time.Minute})
	wantKind(t, err, errs.Invalid, "Lease without an owner")
}

func testLeaseFields(t *testing.T, e *env) {
	r := e.newRun(e.repo, nil, job("a"), job("b"))
	l := e.lease(store.LeaseRequest{Owner: "agent-7", TTL: time.Hour})
	j := l.Job
	if j.Key != "a" || j.Status != store.StatusRunning || j.Attempt != 1 || j.LeaseOwner != "agent-7" || j.LeaseToken <= 0 ||
		!near(j.LeaseExpires, time.Now().Add(time.Hour), time.Minute) || !near(j.Started, time.Now(), time.Minute) {
		t.Errorf("leased job = %+v", j)
	}
	if l.Run.ID != r.ID || l.Run.Status != store.StatusRunning || l.Run.Started.IsZero() {
		t.Errorf("lease's run = %+v", l.Run)
	}
	stored, err := e.s.GetJob(e.ctx, e.org.ID, j.ID)
	e.must(err)
	if stored.LeaseToken != j.LeaseToken || stored.Status != store.StatusRunning || !stored.LeaseExpires.Equal(j.LeaseExpires) {
		t.Errorf("stored job = %+v", stored)
	}
	l2 := e.leaseKey("b")
	if l2.Job.LeaseToken <= j.LeaseToken {
		t.Errorf("fencing tokens do not grow: %d then %d", j.LeaseToken, l2.Job.LeaseToken)
	}
}

func testLeaseBackends(t *testing.T, e *env) {
	e.newRun(e.repo, nil, &store.Job{Key: "docker", Backend: "docker"}, &store.Job{Key: "k8s", Backend: "kubernetes"},
		&store.Job{Key: "any"})
	cases := []struct {
		backends []string
		want     string
	}{
		{[]string{"kubernetes"}, "k8s"},
		{[]string{""}, "any"},
		{[]string{"kubernetes", ""}, ""},
		{[]string{"docker", ""}, "docker"},
	}
	for _, c := range cases {
		l := e.lease(store.LeaseRequest{Backends: c.backends})
		switch {
		case c.want == "" && l != nil:
			t.Errorf("backends %q leased %s, want none", c.backends, l.Job.Key)
		case c.want != "" && (l == nil || l.Job.Key != c.want):
			t.Errorf("backends %q leased %+v, want %s", c.backends, l, c.want)
		}
	}
}

func testLeaseRepoLimit(t *testing.T, e *env) {
	lib := e.newRepo(e.org.ID, "acme/lib")
	e.newRun(e.repo, nil, job("a1"), job("a2"), job("a3"))
	e.newRun(lib, nil, job("b1"))
	limit := store.LeaseRequest{RepoLimit: 1}
	first := e.lease(limit)
	second := e.lease(limit)
	if first == nil || second == nil || first.Job.Key != "a1" || second.Job.Key != "b1" {
		t.Fatalf("leases under RepoLimit 1: %v, %v; want a1 then b1", first, second)
	}
	e.noLease(limit)
	e.complete(first, store.StatusSuccess)
	if l := e.lease(limit); l == nil || l.Job.Key != "a2" {
		t.Fatalf("after a1 ended: %v, want a2", l)
	}
	if l := e.lease(store.LeaseRequest{}); l == nil || l.Job.Key != "a3" {
		t.Fatalf("without a limit: %v, want a3", l)
	}
}

// testLeaseConcurrent: workers racing over many jobs lease each exactly once.
func testLeaseConcurrent(t *testing.T, e *env) {
	const runs, perRun, workers = 4, 25, 8
	total := runs * perRun
	for range runs {
		var jobs []*store.Job
		for i := range perRun {
			jobs = append(jobs, &store.Job{Key: fmt.Sprintf("j%d", i), Priority: i % 3})
		}
		e.newRun(e.repo, nil, jobs...)
	}
	var mu sync.Mutex
	leased := map[int64]string{}
	done := e.leaseWorkers(t, make([][]string, workers), total, time.Minute, func(owner string, _ []string, l *store.Lease) {
		mu.Lock()
		defer mu.Unlock()
		if prev, ok := leased[l.Job.ID]; ok {
			t.Errorf("job %d leased by %s and %s", l.Job.ID, prev, owner)
		}
		leased[l.Job.ID] = owner
	})
	if len(leased) != total || done != total {
		t.Fatalf("leased %d and completed %d of %d jobs", len(leased), done, total)
	}
	all, err := e.s.ListRuns(e.ctx, e.org.ID, store.RunFilter{})
	e.must(err)
	for _, r := range all {
		if r.Status != store.StatusSuccess {
			t.Errorf("run %d is %s, want success", r.ID, r.Status)
		}
	}
}

func testHeartbeatAndFencing(t *testing.T, e *env) {
	e.newRun(e.repo, nil, job("a"))
	l := e.leaseKey("a")
	id, tok := l.Job.ID, l.Job.LeaseToken
	cancel, err := e.s.Heartbeat(e.ctx, id, tok, 2*time.Hour)
	e.must(err)
	if cancel {
		t.Error("Heartbeat reports a cancel nobody asked for")
	}
	if j, _ := e.s.GetJob(e.ctx, e.org.ID, id); !near(j.LeaseExpires, time.Now().Add(2*time.Hour), time.Minute) {
		t.Errorf("Heartbeat did not extend the lease: expires %v", j.LeaseExpires)
	}
	_, err = e.s.Heartbeat(e.ctx, id, tok+1000, time.Minute)
	wantKind(t, err, errs.Conflict, "Heartbeat with a stale token")
	_, err = e.s.Heartbeat(e.ctx, id+1000, tok, time.Minute)
	wantKind(t, err, errs.NotFound, "Heartbeat of an unknown job")
	wantKind(t, e.s.Complete(e.ctx, id, tok+1000, store.Completion{Status: store.StatusSuccess}), errs.Conflict, "Complete with a stale token")
	wantKind(t, e.s.Complete(e.ctx, id, tok, store.Completion{Status: store.StatusRunning}), errs.Invalid, "Complete as running")
	e.must(e.s.Complete(e.ctx, id, tok, store.Completion{Status: store.StatusFailure, Outputs: map[string]string{"k": "v"},
		Results: []byte(`[{"matrix":{}}]`), Error: "exit status 1"}))
	wantKind(t, e.s.Complete(e.ctx, id, tok, store.Completion{Status: store.StatusSuccess}), errs.Conflict, "Complete twice")
	_, err = e.s.Heartbeat(e.ctx, id, tok, time.Minute)
	wantKind(t, err, errs.Conflict, "Heartbeat after Complete")
	j, err := e.s.GetJob(e.ctx, e.org.ID, id)
	e.must(err)
	if j.Status != store.StatusFailure || j.Outputs["k"] != "v" || string(j.Results) != `[{"matrix":{}}]` ||
		j.Error != "exit status 1" || j.Finished.IsZero() {
		t.Errorf("completed job = %+v", j)
	}
}

// testDAG: a job is queued when all its needs ended, whatever their
// conclusion (the executor evaluates if:).
func testDAG(t *testing.T, e *env) {
	r := e.newRun(e.repo, nil, job("a"), job("b", "a"), job("c", "a"), job("d", "b", "c"))
	la := e.leaseKey("a")
	e.noLease(store.LeaseRequest{})
	e.complete(la, store.StatusSuccess)
	e.wantJobs(r.ID, map[string]string{"b": store.StatusQueued, "c": store.StatusQueued, "d": store.StatusWaiting})
	e.complete(e.leaseKey("b"), store.StatusFailure)
	e.wantJobs(r.ID, map[string]string{"d": store.StatusWaiting})
	e.complete(e.leaseKey("c"), store.StatusSuccess)
	e.wantJobs(r.ID, map[string]string{"d": store.StatusQueued})
	if got := e.getRun(r.ID); got.Status != store.StatusRunning {
		t.Errorf("run is %s with a job left, want running", got.Status)
	}
	e.complete(e.leaseKey("d"), store.StatusSkipped)
	if got := e.getRun(r.ID); got.Status != store.StatusFailure || got.Finished.IsZero() {
		t.Errorf("run is %s, want failure", got.Status)
	}
}

func testRunConclusion(t *testing.T, e *env) {
	cases := []struct {
		jobs       []string
		run, state string
	}{
		{[]string{store.StatusSuccess, store.StatusSuccess}, store.StatusSuccess, "success"},
		{[]string{store.StatusSuccess, store.StatusSkipped}, store.StatusSuccess, "success"},
		{[]string{store.StatusSuccess, store.StatusFailure}, store.StatusFailure, "failure"},
		{[]string{store.StatusError}, store.StatusFailure, "failure"},
		{[]string{store.StatusCancelled, store.StatusSuccess}, store.StatusCancelled, "error"},
		{[]string{store.StatusCancelled, store.StatusFailure}, store.StatusFailure, "failure"},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(c.jobs), func(t *testing.T) {
			e := e.with(t)
			var jobs []*store.Job
			for k := range c.jobs {
				jobs = append(jobs, job(fmt.Sprintf("j%d", k)))
			}
			r := e.newRun(e.repo, func(r *store.Run) { r.Name = fmt.Sprintf("case%d", i) }, jobs...)
			for k, st := range c.jobs {
				e.complete(e.leaseKey(fmt.Sprintf("j%d", k)), st)
			}
			if got := e.getRun(r.ID); got.Status != c.run {
				t.Errorf("run is %s, want %s", got.Status, c.run)
			}
			// The pending status, never sent, was superseded by the result.
			sts := e.statuses()
			if len(sts) != 1 || sts[0].State != c.state || sts[0].Context != "conveyor/"+r.Name {
				t.Errorf("commit statuses = %+v, want only %s", sts, c.state)
			}
		})
	}
}

func testExpire(t *testing.T, e *env) {
	r := e.newRun(e.repo, nil, job("a"), &store.Job{Key: "once", MaxAttempts: 1}, job("failed"))
	later := func() time.Time { return time.Now().Add(2 * time.Minute) }
	la := e.leaseKey("a")
	lo := e.leaseKey("once")
	e.complete(e.leaseKey("failed"), store.StatusFailure)
	if ex, err := e.s.Expire(e.ctx, time.Now()); err != nil || len(ex) != 0 {
		t.Fatalf("Expire before any lease ended = %v, %v", ex, err)
	}
	ex, err := e.s.Expire(e.ctx, later())
	e.must(err)
	want := map[int64]store.Expired{
		la.Job.ID: {JobID: la.Job.ID, RunID: r.ID, Requeue: true, Reason: "lease expired: the worker was lost (attempt 1)"},
		lo.Job.ID: {JobID: lo.Job.ID, RunID: r.ID, Requeue: false, Reason: "lease expired: the worker was lost (attempt 1)"},
	}
	if len(ex) != 2 || ex[0] != want[ex[0].JobID] || ex[1] != want[ex[1].JobID] {
		t.Fatalf("Expire = %+v, want %+v", ex, want)
	}
	e.wantJobs(r.ID, map[string]string{"a": store.StatusQueued, "once": store.StatusError, "failed": store.StatusFailure})
	if j := e.jobs(r.ID)["once"]; j.Error != want[lo.Job.ID].Reason {
		t.Errorf("job out of attempts: error %q", j.Error)
	}
	// The lost worker's token is dead.
	_, err = e.s.Heartbeat(e.ctx, la.Job.ID, la.Job.LeaseToken, time.Minute)
	wantKind(t, err, errs.Conflict, "Heartbeat after expiry")
	wantKind(t, e.s.Complete(e.ctx, la.Job.ID, la.Job.LeaseToken, store.Completion{Status: store.StatusSuccess}),
		errs.Conflict, "Complete after expiry")

	again := e.leaseKey("a")
	if again.Job.Attempt != 2 || again.Job.LeaseToken <= la.Job.LeaseToken {
		t.Errorf("re-lease: attempt %d token %d", again.Job.Attempt, again.Job.LeaseToken)
	}
	ex, err = e.s.Expire(e.ctx, later())
	e.must(err)
	if len(ex) != 1 || ex[0].Requeue || ex[0].Reason != "lease expired: the worker was lost (attempt 2)" {
		t.Fatalf("second expiry = %+v", ex)
	}
	e.wantJobs(r.ID, map[string]string{"a": store.StatusError})
	if got := e.getRun(r.ID); got.Status != store.StatusFailure {
		t.Errorf("run is %s, want failure", got.Status)
	}
	as, err := e.s.Attempts(e.ctx, e.org.ID, la.Job.ID)
	e.must(err)
	if len(as) != 2 || as[0].Attempt != 1 || as[1].Attempt != 2 || as[0].Owner != "worker" ||
		as[0].Reason != "lease expired: the worker was lost (attempt 1)" || as[0].Started.IsZero() || as[0].Finished.IsZero() {
		t.Errorf("Attempts = %+v", as)
	}
	if ex, _ := e.s.Expire(e.ctx, later().Add(time.Hour)); len(ex) != 0 {
		t.Errorf("Expire touched ended jobs: %+v", ex)
	}

	// A lost job of a run being cancelled ends cancelled.
	r2 := e.newRun(e.repo, nil, job("x"))
	e.leaseKey("x")
	_, err = e.s.CancelRun(e.ctx, e.org.ID, r2.ID, "")
	e.must(err)
	ex, err = e.s.Expire(e.ctx, later())
	e.must(err)
	if len(ex) != 1 || ex[0].Requeue {
		t.Fatalf("expiry while cancelling = %+v", ex)
	}
	if got := e.getRun(r2.ID); got.Status != store.StatusCancelled {
		t.Errorf("run is %s, want cancelled", got.Status)
	}
}

// testLateCompletion: a lease past its expiry still completes with its
// token until Expire has handed the job on (a worker that could not
// reach the store retries its completion meanwhile); after that, the old
// token is refused, before and after the job is leased again.
func testLateCompletion(t *testing.T, e *env) {
	e.newRun(e.repo, nil, job("late"), job("lost"))
	late := e.leaseKey("late")
	lost := e.leaseKey("lost")
	for _, l := range []*store.Lease{late, lost} {
		_, err := e.s.Heartbeat(e.ctx, l.Job.ID, l.Job.LeaseToken, time.Microsecond)
		e.must(err)
	}
	time.Sleep(time.Millisecond) // both leases have run out
	e.must(e.s.Complete(e.ctx, late.Job.ID, late.Job.LeaseToken, store.Completion{Status: store.StatusSuccess}))
	ex, err := e.s.Expire(e.ctx, time.Now())
	e.must(err)
	if len(ex) != 1 || ex[0].JobID != lost.Job.ID || !ex[0].Requeue {
		t.Fatalf("Expire = %+v, want only the lost job, queued again", ex)
	}
	if j, _ := e.s.GetJob(e.ctx, e.org.ID, late.Job.ID); j.Status != store.StatusSuccess || j.Attempt != 1 {
		t.Errorf("late job = %s attempt %d, want success on attempt 1", j.Status, j.Attempt)
	}
	wantKind(t, e.s.Complete(e.ctx, lost.Job.ID, lost.Job.LeaseToken, store.Completion{Status: store.StatusSuccess}),
		errs.Conflict, "Complete after Expire queued the job again")
	again := e.leaseKey("lost")
	wantKind(t, e.s.Complete(e.ctx, lost.Job.ID, lost.Job.LeaseToken, store.Completion{Status: store.StatusSuccess}),
		errs.Conflict, "Complete with the token of the expired attempt")
	e.complete(again, store.StatusSuccess)
}
