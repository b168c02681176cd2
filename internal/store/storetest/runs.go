package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

var runTests = []test{
	{"CreateRuns", testCreateRuns},
	{"CreateRunsAtomic", testCreateRunsAtomic},
	{"ListRuns", testListRuns},
	{"LatestRuns", testLatestRuns},
	{"Rerun", testRerun},
	{"ConcurrencyGroup", testConcurrencyGroup},
	{"CancelInProgress", testCancelInProgress},
	{"CancelRun", testCancelRun},
}

func testCreateRuns(t *testing.T, e *env) {
	a := &store.Job{Key: "a", Name: "build", Priority: 3, Labels: []string{"linux", "x64"}, Backend: "docker",
		Spec: []byte(`{"version":2,"id":"a"}`)}
	b := job("b", "a")
	r := e.newRun(e.repo, func(r *store.Run) {
		r.Inputs = map[string]string{"level": "debug"}
		r.EventJSON = []byte(`{"event":"push"}`)
		r.WorkflowYAML = []byte("on: push\n")
		r.RerunOf = 0
	}, a, b)
	if r.ID == 0 || r.Number != 1 || r.Status != store.StatusQueued || r.Attempt != 1 || r.OrgID != e.org.ID ||
		!near(r.Created, time.Now(), time.Minute) || !r.Started.IsZero() || !r.Finished.IsZero() {
		t.Fatalf("new run = %+v", r)
	}
	got := e.getRun(r.ID)
	if got.Workflow != ".github/workflows/ci.yml" || got.Name != "ci" || got.Event != "push" || got.Ref != "refs/heads/main" ||
		got.SHA != "abc123" || got.Trigger != "webhook" || got.Inputs["level"] != "debug" ||
		!bytes.Equal(got.EventJSON, r.EventJSON) || !bytes.Equal(got.WorkflowYAML, r.WorkflowYAML) || !got.Created.Equal(r.Created) {
		t.Errorf("GetRun = %+v", got)
	}
	if a.ID == 0 || a.RunID != r.ID || b.ID == 0 {
		t.Errorf("CreateRuns did not fill the jobs: %+v %+v", a, b)
	}
	js := e.jobs(r.ID)
	ja, jb := js["a"], js["b"]
	if ja.Status != store.StatusQueued || ja.Priority != 3 || strings.Join(ja.Labels, ",") != "linux,x64" ||
		ja.Backend != "docker" || ja.MaxAttempts != 2 || ja.Attempt != 0 || ja.Name != "build" || ja.RepoID != e.repo.ID ||
		ja.OrgID != e.org.ID || ja.Queued.IsZero() {
		t.Errorf("job a = %+v", ja)
	}
	if jb.Status != store.StatusWaiting || strings.Join(jb.Needs, ",") != "a" || !jb.Queued.IsZero() {
		t.Errorf("job b = %+v", jb)
	}
	if j, err := e.s.GetJob(e.ctx, e.org.ID, ja.ID); err != nil || j.Key != "a" {
		t.Errorf("GetJob = %+v, %v", j, err)
	}
	_, err := e.s.GetJob(e.ctx, e.org.ID, jb.ID+100)
	wantKind(t, err, errs.NotFound, "GetJob(unknown)")

	// Numbers count per repository.
	if r2 := e.newRun(e.repo, nil, job("a")); r2.Number != 2 {
		t.Errorf("second run has number %d", r2.Number)
	}
	if r3 := e.newRun(e.newRepo(e.org.ID, "acme/other"), nil, job("a")); r3.Number != 1 {
		t.Errorf("first run of another repository has number %d", r3.Number)
	}
	// Every new run has a pending commit status.
	sts := e.statuses()
	if len(sts) != 3 {
		t.Fatalf("%d commit statuses, want 3", len(sts))
	}
	if s := sts[0]; s.RunID != r.ID || s.RepoID != e.repo.ID || s.SHA != "abc123" || s.Context != "conveyor/ci" ||
		s.State != "pending" || s.Done {
		t.Errorf("commit status = %+v", s)
	}
	// The compiled job is stored with the job, left out of lists, and
	// given to the job's lease.
	if ja.Spec != nil {
		t.Errorf("a list of jobs holds the compiled job %q", ja.Spec)
	}
	if l := e.leaseKey("a"); string(l.Job.Spec) != `{"version":2,"id":"a"}` {
		t.Errorf("leased job's Spec = %q", l.Job.Spec)
	}
	if l := e.leaseKey("a"); len(l.Job.Spec) != 0 { // r2's, stored without one
		t.Errorf("leased job's Spec = %q, want none", l.Job.Spec)
	}
}

func testCreateRunsAtomic(t *testing.T, e *env) {
	cases := []struct {
		name string
		runs []store.NewRun
		kind errs.Kind
	}{
		{"no repository", []store.NewRun{{Run: &store.Run{Name: "x"}}}, errs.Invalid},
		{"unknown repository", []store.NewRun{{Run: &store.Run{RepoID: e.repo.ID + 100}}}, errs.NotFound},
		{"duplicate job key", []store.NewRun{{Run: &store.Run{RepoID: e.repo.ID}, Jobs: []*store.Job{job("a"), job("a")}}}, errs.Invalid},
		{"second run bad", []store.NewRun{
			{Run: &store.Run{RepoID: e.repo.ID}, Jobs: []*store.Job{job("a")}},
			{Run: &store.Run{RepoID: e.repo.ID}, Jobs: []*store.Job{{Key: "b", Status: store.StatusRunning}}},
		}, errs.Invalid},
	}
	for _, c := range cases {
		_, err := e.s.CreateRuns(e.ctx, c.runs)
		wantKind(t, err, c.kind, c.name)
	}
	if runs, _ := e.s.ListRuns(e.ctx, e.org.ID, store.RunFilter{}); len(runs) != 0 {
		t.Errorf("failed CreateRuns stored %d runs", len(runs))
	}
	if sts := e.statuses(); len(sts) != 0 {
		t.Errorf("failed CreateRuns stored %d commit statuses", len(sts))
	}
}

// testLatestRuns: one run per repository of the organisation, its newest,
// with its current status; none for a repository without runs, and
// nothing of another organisation's repositories.
func testLatestRuns(t *testing.T, e *env) {
	if runs, err := e.s.LatestRuns(e.ctx, e.org.ID); err != nil || len(runs) != 0 {
		t.Fatalf("LatestRuns without runs = %v, %v", runs, err)
	}
	other := e.newRepo(e.org.ID, "acme/other")
	e.newRepo(e.org.ID, "acme/idle")
	e.newRun(e.repo, nil, job("a"))
	last := e.newRun(e.repo, nil, job("a"))
	e.newRun(other, nil, job("a"))
	otherLast := e.newRun(other, nil, job("a"))
	_, err := e.s.CancelRun(e.ctx, e.org.ID, otherLast.ID, "")
	e.must(err)
	org2, err := e.s.EnsureOrg(e.ctx, "tenant-two")
	e.must(err)
	theirs := e.newRun(e.newRepo(org2.ID, "two/app"), nil, job("a"))

	runs, err := e.s.LatestRuns(e.ctx, e.org.ID)
	e.must(err)
	var got []string
	for _, r := range runs {
		got = append(got, fmt.Sprintf("%d:%d:%s", r.RepoID, r.ID, r.Status))
	}
	want := []string{fmt.Sprintf("%d:%d:%s", other.ID, otherLast.ID, store.StatusCancelled),
		fmt.Sprintf("%d:%d:%s", e.repo.ID, last.ID, store.StatusQueued)}
	if !slices.Equal(got, want) {
		t.Errorf("LatestRuns = %v, want %v (repository:run:status, newest first)", got, want)
	}
	runs, err = e.s.LatestRuns(e.ctx, org2.ID)
	e.must(err)
	if len(runs) != 1 || runs[0].ID != theirs.ID || runs[0].OrgID != org2.ID {
		t.Errorf("LatestRuns of the second organisation = %v, want only run %d", runs, theirs.ID)
	}
}

func testListRuns(t *testing.T, e *env) {
	other := e.newRepo(e.org.ID, "acme/other")
	var ids []int64
	for range 5 {
		ids = append(ids, e.newRun(e.repo, nil, job("a")).ID)
	}
	for range 2 {
		e.newRun(other, nil, job("a"))
	}
	tag := e.newRun(e.repo, func(r *store.Run) {
		r.Ref, r.Workflow, r.Event = "refs/tags/v1", ".github/workflows/release.yml", "release"
	}, job("a")).ID
	_, err := e.s.CancelRun(e.ctx, e.org.ID, ids[1], "")
	e.must(err)
	cases := []struct {
		name string
		f    store.RunFilter
		want []int64
	}{
		{"repository", store.RunFilter{RepoID: e.repo.ID}, []int64{tag, ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"status", store.RunFilter{Status: store.StatusCancelled}, []int64{ids[1]}},
		{"before", store.RunFilter{RepoID: e.repo.ID, Before: ids[2]}, []int64{ids[1], ids[0]}},
		{"limit", store.RunFilter{RepoID: e.repo.ID, Limit: 2}, []int64{tag, ids[4]}},
		{"refs", store.RunFilter{Refs: []string{"refs/heads/v1", "refs/tags/v1"}}, []int64{tag}},
		{"ref of none", store.RunFilter{Refs: []string{"refs/heads/dev"}}, nil},
		{"workflow", store.RunFilter{Workflow: ".github/workflows/release.yml"}, []int64{tag}},
		{"event", store.RunFilter{RepoID: e.repo.ID, Event: "push", Status: store.StatusCancelled}, []int64{ids[1]}},
		{"event of none", store.RunFilter{Event: "schedule"}, nil},
	}
	for _, c := range cases {
		runs, err := e.s.ListRuns(e.ctx, e.org.ID, c.f)
		e.must(err)
		var got []int64
		for _, r := range runs {
			got = append(got, r.ID)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: ListRuns = %v, want %v", c.name, got, c.want)
		}
	}
	if all, _ := e.s.ListRuns(e.ctx, e.org.ID, store.RunFilter{}); len(all) != 8 {
		t.Errorf("ListRuns without a filter: %d runs, want 8", len(all))
	}
}

// testRerun: jobs copied from an earlier run count as done, so what needs
// only them is queued at once; a run of reused jobs alone is finished.
func testRerun(t *testing.T, e *env) {
	r := e.newRun(e.repo, func(r *store.Run) { r.Attempt, r.RerunOf, r.Trigger = 2, 41, "rerun" },
		&store.Job{Key: "a", Status: store.StatusSuccess, ReusedFrom: 7, Outputs: map[string]string{"v": "1"}},
		job("b", "a"))
	if r.Attempt != 2 || r.RerunOf != 41 || r.Status != store.StatusQueued {
		t.Errorf("re-run = %+v", r)
	}
	js := e.jobs(r.ID)
	if js["a"].ReusedFrom != 7 || js["a"].Outputs["v"] != "1" || js["a"].Status != store.StatusSuccess {
		t.Errorf("reused job = %+v", js["a"])
	}
	if js["b"].Status != store.StatusQueued {
		t.Errorf("job needing only reused jobs is %s, want queued", js["b"].Status)
	}
	done := e.newRun(e.repo, nil, &store.Job{Key: "a", Status: store.StatusSuccess, ReusedFrom: 7})
	if done.Status != store.StatusSuccess || done.Finished.IsZero() {
		t.Errorf("run of reused jobs only = %s, want success", done.Status)
	}
	if empty := e.newRun(e.repo, nil); empty.Status != store.StatusSuccess {
		t.Errorf("run without jobs = %s, want success", empty.Status)
	}
}

func group(name string, cancel bool) func(*store.Run) {
	return func(r *store.Run) { r.ConcurrencyGroup, r.CancelInProgress = name, cancel }
}

func testConcurrencyGroup(t *testing.T, e *env) {
	r1 := e.newRun(e.repo, group("deploy", false), job("a"))
	r2 := e.newRun(e.repo, group("deploy", false), job("a"))
	if r1.Status != store.StatusQueued || r2.Status != store.StatusBlocked {
		t.Fatalf("runs of one group: %s and %s, want queued and blocked", r1.Status, r2.Status)
	}
	l1 := e.leaseKey("a")
	if l1.Run.ID != r1.ID {
		t.Fatalf("leased a job of run %d, want %d", l1.Run.ID, r1.ID)
	}
	e.noLease(store.LeaseRequest{}) // r2's job waits for the group
	r3 := e.newRun(e.repo, group("deploy", false), job("a"))
	if r3.Status != store.StatusBlocked {
		t.Fatalf("third run is %s, want blocked", r3.Status)
	}
	if got := e.getRun(r2.ID); got.Status != store.StatusCancelled || got.Finished.IsZero() {
		t.Fatalf("older blocked run is %s, want cancelled", got.Status)
	}
	e.wantJobs(r2.ID, map[string]string{"a": store.StatusCancelled})
	// Other groups and other repositories are independent.
	if r := e.newRun(e.repo, group("other", false), job("x")); r.Status != store.StatusQueued {
		t.Errorf("run of another group is %s", r.Status)
	}
	if r := e.newRun(e.newRepo(e.org.ID, "acme/lib"), group("deploy", false), job("x")); r.Status != store.StatusQueued {
		t.Errorf("same group in another repository is %s", r.Status)
	}
	for range 2 {
		e.complete(e.lease(store.LeaseRequest{}), store.StatusSuccess)
	}
	e.complete(l1, store.StatusSuccess)
	if got := e.getRun(r3.ID); got.Status != store.StatusQueued {
		t.Fatalf("waiting run is %s after the group's run ended, want queued", got.Status)
	}
	l3 := e.leaseKey("a")
	if l3.Run.ID != r3.ID {
		t.Fatalf("leased a job of run %d, want %d", l3.Run.ID, r3.ID)
	}
}

func testCancelInProgress(t *testing.T, e *env) {
	r1 := e.newRun(e.repo, group("deploy", true), job("a"), job("c"))
	la := e.leaseKey("a")
	r2 := e.newRun(e.repo, group("deploy", true), job("a"))
	if r2.Status != store.StatusQueued {
		t.Fatalf("cancel-in-progress run is %s, want queued", r2.Status)
	}
	e.wantJobs(r1.ID, map[string]string{"a": store.StatusRunning, "c": store.StatusCancelled})
	if got := e.getRun(r1.ID); got.Status != store.StatusRunning || got.Error == "" {
		t.Fatalf("cancelled run with a running job: %s (error %q), want running until it reports", got.Status, got.Error)
	}
	if j := e.jobs(r1.ID)["a"]; !j.CancelRequested {
		t.Error("running job of a cancelled run has no CancelRequested")
	}
	cancel, err := e.s.Heartbeat(e.ctx, la.Job.ID, la.Job.LeaseToken, time.Minute)
	e.must(err)
	if !cancel {
		t.Error("Heartbeat did not report the cancel")
	}
	e.must(e.s.Complete(e.ctx, la.Job.ID, la.Job.LeaseToken, store.Completion{Status: store.StatusCancelled}))
	if got := e.getRun(r1.ID); got.Status != store.StatusCancelled {
		t.Errorf("run is %s after its cancelled job reported, want cancelled", got.Status)
	}
	// A run with nothing running is cancelled at once.
	q := e.newRun(e.repo, group("lint", false), job("x"))
	e.newRun(e.repo, group("lint", true), job("x"))
	if got := e.getRun(q.ID); got.Status != store.StatusCancelled {
		t.Errorf("queued run of the group is %s, want cancelled", got.Status)
	}
}

func testCancelRun(t *testing.T, e *env) {
	r := e.newRun(e.repo, nil, job("a"), job("b", "a"))
	got, err := e.s.CancelRun(e.ctx, e.org.ID, r.ID, "stopped by alice")
	e.must(err)
	if got.Status != store.StatusCancelled || got.Error != "stopped by alice" || got.Finished.IsZero() {
		t.Fatalf("CancelRun of a queued run = %+v", got)
	}
	e.wantJobs(r.ID, map[string]string{"a": store.StatusCancelled, "b": store.StatusCancelled})
	_, err = e.s.CancelRun(e.ctx, e.org.ID, r.ID, "")
	wantKind(t, err, errs.Conflict, "CancelRun of a finished run")
	_, err = e.s.CancelRun(e.ctx, e.org.ID, r.ID+100, "")
	wantKind(t, err, errs.NotFound, "CancelRun(unknown)")
	sts := e.statuses()
	if len(sts) != 1 || sts[0].State != "error" || sts[0].RunID != r.ID { // pending superseded
		t.Errorf("commit statuses after cancel: %+v", sts)
	}

	r2 := e.newRun(e.repo, nil, job("a"), job("b"))
	la := e.leaseKey("a")
	got, err = e.s.CancelRun(e.ctx, e.org.ID, r2.ID, "")
	e.must(err)
	if got.Status != store.StatusRunning {
		t.Fatalf("run with a running job is %s after CancelRun, want running", got.Status)
	}
	e.wantJobs(r2.ID, map[string]string{"a": store.StatusRunning, "b": store.StatusCancelled})
	e.complete(la, store.StatusSuccess)
	if got := e.getRun(r2.ID); got.Status != store.StatusCancelled {
		t.Errorf("run is %s once its last job reported, want cancelled", got.Status)
	}
}
