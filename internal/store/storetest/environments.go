package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

var environmentTests = []test{
	{"EnvironmentsCRUD", testEnvironmentsCRUD},
	{"EnvironmentsBranch", testEnvironmentsBranch},
	{"ApprovalGate", testApprovalGate},
	{"ApprovalReject", testApprovalReject},
	{"ApprovalTimer", testApprovalTimer},
	{"ApprovalCancel", testApprovalCancel},
	{"ApprovalAfterNeeds", testApprovalAfterNeeds},
	{"RunApproval", testRunApproval},
	{"RunApprovalGroup", testRunApprovalGroup},
	{"RunApprovalCancel", testRunApprovalCancel},
}

func testEnvironmentsCRUD(t *testing.T, e *env) {
	prot := store.Protection{Reviewers: []store.Reviewer{{User: "bob"}, {Role: store.OrgAdmin}}, WaitMinutes: 5,
		Branches: []string{"main", "release/*"}, Tags: []string{"v*"}, PreventSelfReview: true}
	env := &store.Environment{OrgID: e.org.ID, RepoID: e.repo.ID, Name: "Production", Protection: prot}
	e.must(e.s.PutEnvironment(e.ctx, env))
	if env.Created.IsZero() || env.Name != "Production" {
		t.Fatalf("PutEnvironment left %+v", env)
	}
	got, err := e.s.GetEnvironment(e.ctx, e.org.ID, e.repo.ID, "production") // case aside, as GitHub
	e.must(err)
	if got.Name != "Production" || got.WaitMinutes != 5 || !got.PreventSelfReview || len(got.Reviewers) != 2 ||
		got.Reviewers[0].User != "bob" || got.Reviewers[1].Role != store.OrgAdmin || !slices.Equal(got.Tags, []string{"v*"}) {
		t.Fatalf("GetEnvironment = %+v", got)
	}
	// Replacing keeps the spelling; EnsureEnvironment returns what exists.
	e.must(e.s.PutEnvironment(e.ctx, &store.Environment{OrgID: e.org.ID, RepoID: e.repo.ID, Name: "PRODUCTION"}))
	got, err = e.s.EnsureEnvironment(e.ctx, e.org.ID, e.repo.ID, "production", "")
	e.must(err)
	if got.Name != "Production" || got.Protection.Gated() {
		t.Fatalf("after replace: %+v", got)
	}
	st, err := e.s.EnsureEnvironment(e.ctx, e.org.ID, e.repo.ID, "staging", "")
	e.must(err)
	if st.Name != "staging" || st.Gated() {
		t.Fatalf("EnsureEnvironment made %+v", st)
	}
	list, err := e.s.ListEnvironments(e.ctx, e.org.ID, e.repo.ID)
	e.must(err)
	if len(list) != 2 || list[0].Name != "Production" || list[1].Name != "staging" {
		t.Fatalf("ListEnvironments = %v", list)
	}
	// Another organisation sees none of it.
	other := e.newOrg("other")
	_, err = e.s.GetEnvironment(e.ctx, other.ID, e.repo.ID, "production")
	wantKind(t, err, errs.NotFound, "GetEnvironment of another organisation")
	_, err = e.s.ListEnvironments(e.ctx, other.ID, e.repo.ID)
	wantKind(t, err, errs.NotFound, "ListEnvironments of another organisation")
	wantKind(t, e.s.PutEnvironment(e.ctx, &store.Environment{OrgID: other.ID, RepoID: e.repo.ID, Name: "x"}), errs.NotFound,
		"PutEnvironment into another organisation's repository")
	wantKind(t, e.s.PutEnvironment(e.ctx, &store.Environment{OrgID: e.org.ID, RepoID: e.repo.ID, Name: "x",
		Protection: store.Protection{WaitMinutes: -1}}), errs.Invalid, "negative wait timer")
	// Deleting takes the environment's secrets with it.
	e.must(e.s.PutSecret(e.ctx, &store.Secret{Kind: store.KindSecret, Scope: store.Scope{OrgID: e.org.ID, RepoID: e.repo.ID, Env: "Production"},
		Name: "DEPLOY_KEY", Value: "k"}))
	e.must(e.s.DeleteEnvironment(e.ctx, e.org.ID, e.repo.ID, "production"))
	wantKind(t, e.s.DeleteEnvironment(e.ctx, e.org.ID, e.repo.ID, "production"), errs.NotFound, "second delete")
	secrets, _, err := e.s.JobValues(e.ctx, e.org.ID, e.repo.ID, "Production")
	e.must(err)
	if _, ok := secrets["DEPLOY_KEY"]; ok {
		t.Fatal("a deleted environment's secret still reaches jobs")
	}
}

func testEnvironmentsBranch(t *testing.T, e *env) {
	_, err := e.s.EnsureEnvironment(e.ctx, e.org.ID, e.repo.ID, "feature-x", "feature/x")
	e.must(err)
	_, err = e.s.EnsureEnvironment(e.ctx, e.org.ID, e.repo.ID, "production", "")
	e.must(err)
	names, err := e.s.DeleteBranchEnvironments(e.ctx, e.org.ID, e.repo.ID, "feature/x")
	e.must(err)
	if !slices.Equal(names, []string{"feature-x"}) {
		t.Fatalf("DeleteBranchEnvironments = %v", names)
	}
	if _, err := e.s.GetEnvironment(e.ctx, e.org.ID, e.repo.ID, "production"); err != nil {
		t.Fatalf("an environment of no branch went too: %v", err)
	}
	names, err = e.s.DeleteBranchEnvironments(e.ctx, e.org.ID, e.repo.ID, "")
	e.must(err)
	if len(names) != 0 {
		t.Fatalf("branch \"\" deleted %v", names)
	}
}

// gated is a job deploying to production with reviewers (and a timer).
func gated(key string, wait int, needs ...string) *store.Job {
	j := job(key, needs...)
	j.Deploy = &store.Deployment{Environment: "production", URL: "https://example.com",
		Reviewers: []store.Reviewer{{User: "bob"}}, WaitMinutes: wait, Actor: "alice"}
	return j
}

func (e *env) decide(jobID int64, who, decision, comment string) (*store.Job, error) {
	return e.s.DecideJob(e.ctx, e.org.ID, jobID, store.Decision{User: who, Decision: decision, Comment: comment})
}

func testApprovalGate(t *testing.T, e *env) {
	r := e.newRun(e.repo, nil, gated("deploy", 0), job("test"))
	e.wantJobs(r.ID, map[string]string{"deploy": store.StatusAwaitingApproval, "test": store.StatusQueued})
	d := e.jobs(r.ID)["deploy"]
	if d.Deploy == nil || d.Deploy.Environment != "production" || d.Deploy.URL != "https://example.com" || d.Deploy.Actor != "alice" {
		t.Fatalf("deployment read back as %+v", d.Deploy)
	}
	e.complete(e.leaseKey("test"), store.StatusSuccess)
	e.noLease(store.LeaseRequest{}) // awaiting approval: never leased
	if n, err := e.s.OpenGates(e.ctx, time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("OpenGates opened %d (%v) jobs still awaiting a review", n, err)
	}
	_, err := e.s.DecideJob(e.ctx, e.org.ID, d.ID, store.Decision{User: "bob", Decision: "maybe"})
	wantKind(t, err, errs.Invalid, "unknown decision")
	other := e.newOrg("other")
	_, err = e.s.DecideJob(e.ctx, other.ID, d.ID, store.Decision{User: "bob", Decision: store.Approved})
	wantKind(t, err, errs.NotFound, "decision from another organisation")
	j, err := e.decide(d.ID, "bob", store.Approved, "ship it")
	e.must(err)
	if j.Status != store.StatusQueued || len(j.Deploy.Decisions) != 1 || j.Deploy.Decisions[0].User != "bob" ||
		j.Deploy.Decisions[0].Comment != "ship it" || j.Deploy.Decisions[0].At.IsZero() {
		t.Fatalf("approved job: %s %+v", j.Status, j.Deploy)
	}
	_, err = e.decide(d.ID, "bob", store.Approved, "")
	wantKind(t, err, errs.Conflict, "deciding twice")
	l := e.leaseKey("deploy")
	e.complete(l, store.StatusSuccess)
	if got := e.getRun(r.ID); got.Status != store.StatusSuccess {
		t.Fatalf("run %s, want success", got.Status)
	}
	_, err = e.decide(d.ID, "bob", store.Rejected, "")
	wantKind(t, err, errs.Conflict, "deciding a finished job")
	wantKind(t, errOf(e.decide(e.jobs(r.ID)["test"].ID, "bob", store.Approved, "")), errs.Conflict, "deciding an ungated job")
}

func errOf(_ *store.Job, err error) error { return err }

func testApprovalReject(t *testing.T, e *env) {
	r := e.newRun(e.repo, nil, gated("deploy", 0), job("notify", "deploy"))
	d := e.jobs(r.ID)["deploy"]
	j, err := e.decide(d.ID, "bob", store.Rejected, "not today")
	e.must(err)
	if j.Status != store.StatusFailure || j.Error != "rejected by bob: not today" || j.Finished.IsZero() {
		t.Fatalf("rejected job: %s %q", j.Status, j.Error)
	}
	// Its dependent is queued and decides its if: (skipped by default),
	// as after any failure.
	l := e.leaseKey("notify")
	e.complete(l, store.StatusSkipped)
	if got := e.getRun(r.ID); got.Status != store.StatusFailure {
		t.Fatalf("run %s, want failure", got.Status)
	}
}

func testApprovalTimer(t *testing.T, e *env) {
	timerOnly := job("deploy")
	timerOnly.Deploy = &store.Deployment{Environment: "staging", WaitMinutes: 10}
	r := e.newRun(e.repo, nil, timerOnly, gated("prod", 10))
	e.wantJobs(r.ID, map[string]string{"deploy": store.StatusAwaitingApproval, "prod": store.StatusAwaitingApproval})
	js := e.jobs(r.ID)
	if w := js["deploy"].Deploy.WaitUntil; w.Before(time.Now().Add(9*time.Minute)) || w.After(time.Now().Add(11*time.Minute)) {
		t.Fatalf("wait_until %v, want about now + 10 min", w)
	}
	if n, err := e.s.OpenGates(e.ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("OpenGates before the timer: %d, %v", n, err)
	}
	// Approved before its timer ends: it still waits for the timer.
	j, err := e.decide(js["prod"].ID, "bob", store.Approved, "")
	e.must(err)
	if j.Status != store.StatusAwaitingApproval {
		t.Fatalf("approved before its timer: %s", j.Status)
	}
	e.noLease(store.LeaseRequest{})
	n, err := e.s.OpenGates(e.ctx, time.Now().Add(11*time.Minute))
	e.must(err)
	if n != 2 {
		t.Fatalf("OpenGates after the timer opened %d, want 2", n)
	}
	e.wantJobs(r.ID, map[string]string{"deploy": store.StatusQueued, "prod": store.StatusQueued})
	e.complete(e.leaseKey("deploy"), store.StatusSuccess)
	e.complete(e.leaseKey("prod"), store.StatusSuccess)
}

func testApprovalCancel(t *testing.T, e *env) {
	r := e.newRun(e.repo, nil, gated("deploy", 0))
	if _, err := e.s.CancelRun(e.ctx, e.org.ID, r.ID, "cancelled by a user"); err != nil {
		t.Fatal(err)
	}
	e.wantJobs(r.ID, map[string]string{"deploy": store.StatusCancelled})
	if got := e.getRun(r.ID); got.Status != store.StatusCancelled {
		t.Fatalf("run %s, want cancelled", got.Status)
	}
	_, err := e.decide(e.jobs(r.ID)["deploy"].ID, "bob", store.Approved, "")
	wantKind(t, err, errs.Conflict, "approving a cancelled job")
}

func testApprovalAfterNeeds(t *testing.T, e *env) {
	r := e.newRun(e.repo, nil, job("build"), gated("deploy", 0, "build"))
	e.wantJobs(r.ID, map[string]string{"build": store.StatusQueued, "deploy": store.StatusWaiting})
	_, err := e.decide(e.jobs(r.ID)["deploy"].ID, "bob", store.Approved, "")
	wantKind(t, err, errs.Conflict, "approving a job before its needs are done")
	e.complete(e.leaseKey("build"), store.StatusSuccess)
	e.wantJobs(r.ID, map[string]string{"deploy": store.StatusAwaitingApproval})
	e.noLease(store.LeaseRequest{})
	_, err = e.decide(e.jobs(r.ID)["deploy"].ID, "bob", store.Approved, "")
	e.must(err)
	e.complete(e.leaseKey("deploy"), store.StatusSuccess)
	if got := e.getRun(r.ID); got.Status != store.StatusSuccess {
		t.Fatalf("run %s, want success", got.Status)
	}
}

func awaiting(r *store.Run) { r.Status = store.StatusAwaitingApproval }

func testRunApproval(t *testing.T, e *env) {
	r := e.newRun(e.repo, awaiting, job("build"), job("test", "build"), gated("deploy", 0, "test"))
	if r.Status != store.StatusAwaitingApproval {
		t.Fatalf("run created %s", r.Status)
	}
	e.wantJobs(r.ID, map[string]string{"build": store.StatusQueued, "test": store.StatusWaiting})
	e.noLease(store.LeaseRequest{}) // held until approved
	_, err := e.s.ApproveRun(e.ctx, e.newOrg("other").ID, r.ID)
	wantKind(t, err, errs.NotFound, "approving another organisation's run")
	got, err := e.s.ApproveRun(e.ctx, e.org.ID, r.ID)
	e.must(err)
	if got.Status != store.StatusQueued {
		t.Fatalf("approved run %s", got.Status)
	}
	_, err = e.s.ApproveRun(e.ctx, e.org.ID, r.ID)
	wantKind(t, err, errs.Conflict, "approving twice")
	e.complete(e.leaseKey("build"), store.StatusSuccess)
	e.complete(e.leaseKey("test"), store.StatusSuccess)
	// The environment's own review still applies.
	e.wantJobs(r.ID, map[string]string{"deploy": store.StatusAwaitingApproval})
}

func testRunApprovalGroup(t *testing.T, e *env) {
	first := e.newRun(e.repo, func(r *store.Run) { r.ConcurrencyGroup = "g" }, job("a"))
	fork := e.newRun(e.repo, func(r *store.Run) { awaiting(r); r.ConcurrencyGroup = "g" }, job("a"))
	if fork.Status != store.StatusAwaitingApproval {
		t.Fatalf("fork run %s", fork.Status)
	}
	got, err := e.s.ApproveRun(e.ctx, e.org.ID, fork.ID)
	e.must(err)
	if got.Status != store.StatusBlocked { // its group is busy: it waits its turn
		t.Fatalf("approved run in a busy group: %s", got.Status)
	}
	e.complete(e.leaseKey("a"), store.StatusSuccess)
	if e.getRun(first.ID).Status != store.StatusSuccess {
		t.Fatal("first run did not finish")
	}
	l := e.leaseKey("a")
	if l.Run.ID != fork.ID {
		t.Fatalf("leased run %d, want the approved %d", l.Run.ID, fork.ID)
	}
	e.complete(l, store.StatusSuccess)
}

func testRunApprovalCancel(t *testing.T, e *env) {
	r := e.newRun(e.repo, awaiting, job("a"), job("b", "a"))
	if _, err := e.s.CancelRun(e.ctx, e.org.ID, r.ID, "rejected"); err != nil {
		t.Fatal(err)
	}
	if got := e.getRun(r.ID); got.Status != store.StatusCancelled {
		t.Fatalf("cancelled run awaiting approval: %s", got.Status)
	}
	e.wantJobs(r.ID, map[string]string{"a": store.StatusCancelled, "b": store.StatusCancelled})
	_, err := e.s.ApproveRun(e.ctx, e.org.ID, r.ID)
	wantKind(t, err, errs.Conflict, "approving a cancelled run")
}
