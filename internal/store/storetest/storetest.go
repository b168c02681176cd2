// Package storetest is the one suite every store.Store passes. An
// implementation's test calls Run with a function that opens a fresh,
// empty store; the suite checks each method and the semantics documented
// in package store: de-duplication, leases and fencing, concurrency groups,
// the job DAG, retries, cancellation, the outbox, tenant isolation, agents
// and leasing by runs-on labels, artifacts.
package storetest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// Run runs the suite. open must return a new, empty store each time and
// arrange its cleanup with t.Cleanup. Subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	all := slices.Concat(tenantTests, eventTests, runTests, queueTests, outboxTests, agentTests, releaseTests, labelTests, jobGroupTests, artifactTests, secretTests, quotaTests, retentionTests, environmentTests, auditTests, failureTests)
	for _, tc := range all {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, setup(t, open))
		})
	}
}

type test struct {
	name string
	fn   func(t *testing.T, e *env)
}

// env is one test's store with an organisation and a repository.
type env struct {
	t    *testing.T
	s    store.Store
	ctx  context.Context
	org  *store.Org
	repo *store.Repo
}

func setup(t *testing.T, open func(t *testing.T) store.Store) *env {
	t.Helper()
	s := open(t)
	e := &env{t: t, s: s, ctx: t.Context()}
	org, err := s.EnsureOrg(e.ctx, "default")
	e.must(err)
	e.org = org
	e.repo = e.newRepo(org.ID, "acme/app")
	return e
}

// with returns e for a subtest: failures must stop the subtest's goroutine.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// wantKind fails unless err has kind k.
func wantKind(t *testing.T, err error, k errs.Kind, what string) {
	t.Helper()
	if !errs.Is(err, k) {
		t.Fatalf("%s: got error %v (kind %v), want kind %v", what, err, errs.KindOf(err), k)
	}
}

func (e *env) newOrg(name string) *store.Org {
	e.t.Helper()
	o, err := e.s.EnsureOrg(e.ctx, name)
	e.must(err)
	return o
}

func (e *env) newRepo(orgID int64, name string) *store.Repo {
	e.t.Helper()
	r := &store.Repo{OrgID: orgID, Name: name, URL: "https://example.com/" + name, Forge: "github",
		Secret: "s3cret", Branch: "main"}
	e.must(e.s.CreateRepo(e.ctx, r))
	return r
}

// job is a job spec for newRun.
func job(key string, needs ...string) *store.Job {
	return &store.Job{Key: key, Name: "job " + key, Needs: needs}
}

// newRun creates one run of repo with jobs; mod may adjust the run first.
func (e *env) newRun(repo *store.Repo, mod func(r *store.Run), jobs ...*store.Job) *store.Run {
	e.t.Helper()
	r := &store.Run{RepoID: repo.ID, OrgID: repo.OrgID, Workflow: ".github/workflows/ci.yml", Name: "ci",
		Event: "push", Ref: "refs/heads/main", SHA: "abc123", Trigger: "webhook"}
	if mod != nil {
		mod(r)
	}
	runs, err := e.s.CreateRuns(e.ctx, []store.NewRun{{Run: r, Jobs: jobs}})
	e.must(err)
	if len(runs) != 1 {
		e.t.Fatalf("CreateRuns returned %d runs, want 1", len(runs))
	}
	return runs[0]
}

func (e *env) getRun(id int64) *store.Run {
	e.t.Helper()
	r, err := e.s.GetRun(e.ctx, e.org.ID, id)
	e.must(err)
	return r
}

// jobs returns a run's jobs by key.
func (e *env) jobs(runID int64) map[string]*store.Job {
	e.t.Helper()
	js, err := e.s.Jobs(e.ctx, e.org.ID, runID)
	e.must(err)
	m := map[string]*store.Job{}
	for _, j := range js {
		m[j.Key] = j
	}
	return m
}

// wantJobs checks the status of a run's jobs by key.
func (e *env) wantJobs(runID int64, want map[string]string) {
	e.t.Helper()
	js := e.jobs(runID)
	for k, st := range want {
		j, ok := js[k]
		if !ok {
			e.t.Fatalf("run %d has no job %s", runID, k)
		}
		if j.Status != st {
			e.t.Errorf("job %s: status %s, want %s", k, j.Status, st)
		}
	}
}

func (e *env) lease(req store.LeaseRequest) *store.Lease {
	e.t.Helper()
	if req.Owner == "" {
		req.Owner = "worker"
	}
	if req.TTL == 0 {
		req.TTL = time.Minute
	}
	l, err := e.s.Lease(e.ctx, req)
	e.must(err)
	return l
}

// leaseKey leases the next job and checks that it is the one with key.
func (e *env) leaseKey(key string) *store.Lease {
	e.t.Helper()
	l := e.lease(store.LeaseRequest{})
	if l == nil {
		e.t.Fatalf("no job to lease, want %s", key)
	}
	if l.Job.Key != key {
		e.t.Fatalf("leased job %s, want %s", l.Job.Key, key)
	}
	return l
}

func (e *env) noLease(req store.LeaseRequest) {
	e.t.Helper()
	if l := e.lease(req); l != nil {
		e.t.Fatalf("leased job %d (%s), want none", l.Job.ID, l.Job.Key)
	}
}

func (e *env) complete(l *store.Lease, status string) {
	e.t.Helper()
	e.must(e.s.Complete(e.ctx, l.Job.ID, l.Job.LeaseToken, store.Completion{Status: status}))
}

// statuses claims every due commit status of the store, oldest first.
func (e *env) statuses() []*store.StatusReport {
	e.t.Helper()
	rs, err := e.s.ClaimStatuses(e.ctx, time.Now().Add(time.Second), 1000, time.Hour)
	e.must(err)
	return rs
}

// event is a webhook event of repo with a delivery id and a body.
func event(repo *store.Repo, delivery, body string) *store.Event {
	h := sha256.Sum256([]byte(body))
	return &store.Event{RepoID: repo.ID, OrgID: repo.OrgID, Source: "webhook", Forge: "github", Name: "push",
		DeliveryID: delivery, BodyHash: h[:], Headers: map[string]string{"X-GitHub-Event": "push"},
		Body: []byte(body)}
}

func (e *env) accept(evs ...*store.Event) []store.Accepted {
	e.t.Helper()
	as, err := e.s.Accept(e.ctx, evs)
	e.must(err)
	if len(as) != len(evs) {
		e.t.Fatalf("Accept answered %d of %d events", len(as), len(evs))
	}
	return as
}

func near(a, b time.Time, d time.Duration) bool {
	return a.Sub(b) < d && b.Sub(a) < d
}

func name(i int) string { return fmt.Sprintf("n%03d", i) }
