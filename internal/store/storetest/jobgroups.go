package storetest

import (
	"testing"

	"github.com/conveyor-ci/conveyor/internal/store"
)

var jobGroupTests = []test{
	{"JobGroup", testJobGroup},
	{"JobGroupCancelInProgress", testJobGroupCancelInProgress},
	{"JobGroupAfterNeeds", testJobGroupAfterNeeds},
	{"JobGroupCancelRun", testJobGroupCancelRun},
}

// grouped is a job spec in a job-level concurrency group.
func grouped(key, group string, cancel bool, needs ...string) *store.Job {
	j := job(key, needs...)
	j.ConcurrencyGroup, j.CancelInProgress = group, cancel
	return j
}

func testJobGroup(t *testing.T, e *env) {
	r1 := e.newRun(e.repo, nil, grouped("deploy", "prod", false))
	r2 := e.newRun(e.repo, nil, grouped("deploy", "prod", false), job("test"))
	if j := e.jobs(r1.ID)["deploy"]; j.GroupWait || j.ConcurrencyGroup != "prod" {
		t.Fatalf("first job of the group: GroupWait %v, group %q", j.GroupWait, j.ConcurrencyGroup)
	}
	if j := e.jobs(r2.ID)["deploy"]; !j.GroupWait || j.Status != store.StatusQueued {
		t.Fatalf("second job of the group: %s, GroupWait %v; want queued and waiting", j.Status, j.GroupWait)
	}
	l1 := e.leaseKey("deploy")
	if l1.Run.ID != r1.ID {
		t.Fatalf("leased deploy of run %d, want %d", l1.Run.ID, r1.ID)
	}
	// The other job of run 2 is not held; its deploy is.
	e.complete(e.leaseKey("test"), store.StatusSuccess)
	e.noLease(store.LeaseRequest{})
	// A third job replaces the waiting one, which is cancelled.
	r3 := e.newRun(e.repo, nil, grouped("deploy", "prod", false))
	e.wantJobs(r2.ID, map[string]string{"deploy": store.StatusCancelled, "test": store.StatusSuccess})
	if got := e.getRun(r2.ID); got.Status != store.StatusCancelled {
		t.Errorf("run whose waiting job was superseded is %s, want cancelled", got.Status)
	}
	if j := e.jobs(r2.ID)["deploy"]; j.Error == "" {
		t.Error("superseded job has no reason")
	}
	// The same group name elsewhere is independent.
	e.newRun(e.newRepo(e.org.ID, "acme/other"), nil, grouped("deploy", "prod", false))
	lo := e.leaseKey("deploy")
	if lo.Run.RepoID == e.repo.ID {
		t.Fatal("leased a job of the held group")
	}
	e.noLease(store.LeaseRequest{})
	// The running one ends: the waiting one goes.
	e.complete(l1, store.StatusSuccess)
	l3 := e.leaseKey("deploy")
	if l3.Run.ID != r3.ID {
		t.Fatalf("leased deploy of run %d, want %d", l3.Run.ID, r3.ID)
	}
	if j := e.jobs(r3.ID)["deploy"]; j.GroupWait {
		t.Error("running job still shows GroupWait")
	}
	e.complete(l3, store.StatusFailure)
	e.complete(lo, store.StatusSuccess)
	if got := e.getRun(r3.ID); got.Status != store.StatusFailure {
		t.Errorf("run 3 is %s, want failure", got.Status)
	}
}

func testJobGroupCancelInProgress(t *testing.T, e *env) {
	r1 := e.newRun(e.repo, nil, grouped("deploy", "prod", true))
	l1 := e.leaseKey("deploy")
	r2 := e.newRun(e.repo, nil, grouped("deploy", "prod", true))
	if j := e.jobs(r1.ID)["deploy"]; !j.CancelRequested || j.Status != store.StatusRunning {
		t.Fatalf("running job of the group: %s, CancelRequested %v; want running with cancel requested", j.Status, j.CancelRequested)
	}
	e.noLease(store.LeaseRequest{}) // until the cancelled one has ended
	r3 := e.newRun(e.repo, nil, grouped("deploy", "prod", true))
	e.wantJobs(r2.ID, map[string]string{"deploy": store.StatusCancelled})
	e.complete(l1, store.StatusCancelled)
	if got := e.getRun(r1.ID); got.Status != store.StatusCancelled {
		t.Errorf("run 1 is %s, want cancelled", got.Status)
	}
	l3 := e.leaseKey("deploy")
	if l3.Run.ID != r3.ID {
		t.Fatalf("leased deploy of run %d, want %d", l3.Run.ID, r3.ID)
	}
	// Without cancel-in-progress a newer job leaves the running one be.
	e.newRun(e.repo, nil, grouped("deploy", "prod", false))
	if j := e.jobs(r3.ID)["deploy"]; j.CancelRequested {
		t.Error("job without cancel-in-progress cancelled the running one")
	}
}

func testJobGroupAfterNeeds(t *testing.T, e *env) {
	// A job enters its group when its needs are done, not at creation.
	r1 := e.newRun(e.repo, nil, job("build"), grouped("deploy", "prod", false, "build"))
	r2 := e.newRun(e.repo, nil, grouped("deploy", "prod", false))
	l2 := e.leaseKey("build")
	if l2.Run.ID != r1.ID {
		t.Fatalf("leased build of run %d", l2.Run.ID)
	}
	ld := e.leaseKey("deploy") // run 2's: the group was free
	if ld.Run.ID != r2.ID {
		t.Fatalf("leased deploy of run %d, want %d", ld.Run.ID, r2.ID)
	}
	e.complete(l2, store.StatusSuccess)
	if j := e.jobs(r1.ID)["deploy"]; j.Status != store.StatusQueued || !j.GroupWait {
		t.Fatalf("deploy after its needs: %s, GroupWait %v; want queued and waiting", j.Status, j.GroupWait)
	}
	e.noLease(store.LeaseRequest{})
	e.complete(ld, store.StatusSuccess)
	if l := e.leaseKey("deploy"); l.Run.ID != r1.ID {
		t.Fatalf("leased deploy of run %d, want %d", l.Run.ID, r1.ID)
	}
}

func testJobGroupCancelRun(t *testing.T, e *env) {
	// Cancelling the run of a group's queued job lets the waiting one go.
	r1 := e.newRun(e.repo, nil, grouped("deploy", "prod", false))
	r2 := e.newRun(e.repo, nil, grouped("deploy", "prod", false))
	_, err := e.s.CancelRun(e.ctx, e.org.ID, r1.ID, "")
	e.must(err)
	if l := e.leaseKey("deploy"); l.Run.ID != r2.ID {
		t.Fatalf("leased deploy of run %d, want %d", l.Run.ID, r2.ID)
	}
	// A run blocked by its workflow-level group holds its grouped jobs
	// until it is unblocked, then they enter their job group.
	w1 := e.newRun(e.repo, group("wf", false), job("a"))
	w2 := e.newRun(e.repo, group("wf", false), grouped("deploy", "stage", false))
	if w2.Status != store.StatusBlocked {
		t.Fatalf("run 2 of the workflow group is %s", w2.Status)
	}
	e.complete(e.leaseKey("a"), store.StatusSuccess)
	if got := e.getRun(w1.ID); got.Status != store.StatusSuccess {
		t.Fatalf("run 1 is %s", got.Status)
	}
	if l := e.leaseKey("deploy"); l.Run.ID != w2.ID {
		t.Fatalf("leased deploy of run %d, want %d", l.Run.ID, w2.ID)
	}
}
