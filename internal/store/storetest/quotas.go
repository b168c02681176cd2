package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

var quotaTests = []test{
	{"QuotaSettings", testQuotaSettings},
	{"QuotaConcurrentJobs", testQuotaConcurrentJobs},
	{"QuotaConcurrentJobsParallel", testQuotaParallel},
	{"QuotaMetering", testQuotaMetering},
}

func testQuotaSettings(t *testing.T, e *env) {
	q, err := e.s.Quota(e.ctx, e.org.ID)
	e.must(err)
	if q.MaxConcurrentJobs != 0 || q.MaxTimeoutMinutes != 0 || q.MonthlyBuildSeconds != 0 {
		t.Fatalf("quota before any was set: %+v, want no limits", q)
	}
	set := &store.Quota{OrgID: e.org.ID, MaxConcurrentJobs: 3, MaxTimeoutMinutes: 30, MonthlyBuildSeconds: 3600}
	e.must(e.s.SetQuota(e.ctx, set))
	if set.Updated.IsZero() {
		t.Error("SetQuota did not set Updated")
	}
	q, err = e.s.Quota(e.ctx, e.org.ID)
	e.must(err)
	if q.MaxConcurrentJobs != 3 || q.MaxTimeoutMinutes != 30 || q.MonthlyBuildSeconds != 3600 || !q.Updated.Equal(set.Updated) {
		t.Fatalf("quota read back = %+v, want %+v", q, set)
	}
	e.must(e.s.SetQuota(e.ctx, &store.Quota{OrgID: e.org.ID, MaxConcurrentJobs: 1}))
	if q, _ = e.s.Quota(e.ctx, e.org.ID); q.MaxConcurrentJobs != 1 || q.MaxTimeoutMinutes != 0 {
		t.Fatalf("quota after a second SetQuota = %+v, want it replaced", q)
	}
	other := e.newOrg("other")
	if q, _ = e.s.Quota(e.ctx, other.ID); q.MaxConcurrentJobs != 0 {
		t.Fatalf("another organisation's quota = %+v, want none", q)
	}
	wantKind(t, e.s.SetQuota(e.ctx, &store.Quota{OrgID: e.org.ID, MaxConcurrentJobs: -1}), errs.Invalid, "negative limit")
	wantKind(t, e.s.SetQuota(e.ctx, &store.Quota{OrgID: 999999}), errs.NotFound, "unknown organisation")
}

// testQuotaConcurrentJobs: an organisation at its maximum gets no more
// leases (its queued jobs say why), others do, and a completion frees a slot.
func testQuotaConcurrentJobs(t *testing.T, e *env) {
	e.must(e.s.SetQuota(e.ctx, &store.Quota{OrgID: e.org.ID, MaxConcurrentJobs: 2}))
	run := e.newRun(e.repo, nil, job("a"), job("b"), job("c"))
	other := e.newOrg("other")
	otherRun := e.newRun(e.newRepo(other.ID, "other/app"), nil, job("x"))
	l1 := e.lease(store.LeaseRequest{OrgID: e.org.ID})
	l2 := e.lease(store.LeaseRequest{OrgID: e.org.ID})
	if l1 == nil || l2 == nil {
		t.Fatal("the first two jobs were not leased")
	}
	e.noLease(store.LeaseRequest{OrgID: e.org.ID})
	js := e.jobs(run.ID)
	if !js["c"].QuotaWait || js["a"].QuotaWait || js["b"].QuotaWait {
		t.Fatalf("QuotaWait a=%v b=%v c=%v, want only the queued c", js["a"].QuotaWait, js["b"].QuotaWait, js["c"].QuotaWait)
	}
	if j, err := e.s.GetJob(e.ctx, e.org.ID, js["c"].ID); err != nil || !j.QuotaWait {
		t.Fatalf("GetJob(c) = %+v, %v; want QuotaWait", j, err)
	}
	// A job of a run blocked by its concurrency group waits for the group,
	// not for the quota.
	group := func(r *store.Run) { r.ConcurrencyGroup = "deploy" }
	first, blocked := e.newRun(e.repo, group, job("g1")), e.newRun(e.repo, group, job("g2"))
	if g := e.jobs(first.ID)["g1"]; !g.QuotaWait {
		t.Errorf("the group's first job: QuotaWait %v, want true", g.QuotaWait)
	}
	if b := e.getRun(blocked.ID); b.Status != store.StatusBlocked {
		t.Fatalf("second run of the group: %s, want blocked", b.Status)
	}
	if g := e.jobs(blocked.ID)["g2"]; g.QuotaWait {
		t.Error("a job of a blocked run is shown as waiting for the quota")
	}
	// The full organisation's job is passed over, not in the way.
	l := e.lease(store.LeaseRequest{})
	if l == nil || l.Job.RunID != otherRun.ID {
		t.Fatalf("lease for any organisation = %+v, want the other organisation's job", l)
	}
	e.complete(l1, store.StatusSuccess)
	if js = e.jobs(run.ID); js["c"].QuotaWait {
		t.Error("c still waits for the quota after a job ended")
	}
	if l3 := e.lease(store.LeaseRequest{}); l3 == nil || l3.Job.Key != "c" {
		t.Fatalf("lease after a completion = %+v, want c (before g1)", l3)
	}
	e.noLease(store.LeaseRequest{})
	// Removing the limit (0: none) lets the rest run at once.
	e.must(e.s.SetQuota(e.ctx, &store.Quota{OrgID: e.org.ID}))
	e.newRun(e.repo, nil, job("d"))
	for _, want := range []string{"g1", "d"} {
		if l := e.lease(store.LeaseRequest{}); l == nil || l.Job.Key != want {
			t.Fatalf("lease without a limit = %+v, want %s", l, want)
		}
	}
}

// testQuotaParallel: workers leasing in parallel (several connections, as
// replicas on PostgreSQL) never run more than the maximum at once.
func testQuotaParallel(t *testing.T, e *env) {
	const limit, total, workers = 3, 24, 8
	e.must(e.s.SetQuota(e.ctx, &store.Quota{OrgID: e.org.ID, MaxConcurrentJobs: limit}))
	jobs := make([]*store.Job, total)
	for i := range jobs {
		jobs[i] = job(name(i))
	}
	e.newRun(e.repo, nil, jobs...)
	var mu sync.Mutex
	running, peak := 0, 0
	done := e.leaseWorkers(t, make([][]string, workers), total, 30*time.Second, func(string, []string, *store.Lease) {
		mu.Lock()
		running++
		peak = max(peak, running)
		mu.Unlock()
		time.Sleep(2 * time.Millisecond) // hold the slot while others try
		mu.Lock()
		running-- // before Complete commits: never undercounts
		mu.Unlock()
	})
	if done != total {
		t.Fatalf("completed %d of %d jobs", done, total)
	}
	if peak > limit {
		t.Fatalf("%d jobs ran at once, over the quota of %d", peak, limit)
	}
}

// testQuotaMetering: each completion's build time is kept on the job and
// added to its organisation's month.
func testQuotaMetering(t *testing.T, e *env) {
	run := e.newRun(e.repo, nil, job("a"), job("b"), job("c"))
	builds := []time.Duration{1500 * time.Millisecond, 2500 * time.Millisecond, 0}
	for _, b := range builds {
		l := e.lease(store.LeaseRequest{})
		e.must(e.s.Complete(e.ctx, l.Job.ID, l.Job.LeaseToken, store.Completion{Status: store.StatusSuccess, Build: b}))
	}
	js := e.jobs(run.ID)
	if js["a"].Build != 1500*time.Millisecond || js["b"].Build != 2500*time.Millisecond {
		t.Errorf("job builds a=%v b=%v, want 1.5s and 2.5s", js["a"].Build, js["b"].Build)
	}
	month := store.Month(time.Now())
	u, err := e.s.Usage(e.ctx, e.org.ID, month)
	e.must(err)
	if u.Build != 4*time.Second || u.Jobs != 3 || u.Month != month {
		t.Fatalf("usage = %+v, want 4s over 3 jobs in %s", u, month)
	}
	other := e.newOrg("other")
	if u, _ := e.s.Usage(e.ctx, other.ID, month); u.Build != 0 || u.Jobs != 0 {
		t.Errorf("another organisation's usage = %+v, want none", u)
	}
	if u, _ := e.s.Usage(e.ctx, e.org.ID, "1999-01"); u.Build != 0 {
		t.Errorf("usage of another month = %+v, want none", u)
	}
	_, err = e.s.Usage(e.ctx, e.org.ID, "2026-13")
	wantKind(t, err, errs.Invalid, "Usage of month 2026-13")
}
