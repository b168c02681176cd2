package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/store"
)

var labelTests = []test{
	{"LeaseLabels", testLeaseLabels},
	{"LeaseLabelsNoBlock", testLeaseLabelsNoBlock},
	{"LeaseOrg", testLeaseOrg},
	{"LeaseLabelsConcurrent", testLeaseLabelsConcurrent},
}

func labelled(key string, labels ...string) *store.Job { return &store.Job{Key: key, Labels: labels} }

// testLeaseLabels: a worker takes the jobs whose labels are all its own,
// case aside; expression labels match anyone. Each case has its own
// organisation and leases only from it.
func testLeaseLabels(t *testing.T, e *env) {
	jobs := func() []*store.Job {
		return []*store.Job{
			labelled("none"),
			labelled("linux", "linux"),
			labelled("gpu", "Linux", "GPU"),
			labelled("expr", "${{ matrix.os }}"),
			labelled("mixed", "self-hosted", "${{ inputs.pool }}"),
			labelled("unicode", "Äpfel"),
		}
	}
	cases := []struct {
		worker []string
		want   []string
	}{
		{nil, []string{"none", "linux", "gpu", "expr", "mixed", "unicode"}},
		{[]string{}, []string{"none", "expr"}},
		{[]string{"LINUX"}, []string{"none", "linux", "expr"}},
		{[]string{"gpu", "linux", "x64"}, []string{"none", "linux", "gpu", "expr"}},
		{[]string{"gpu"}, []string{"none", "expr"}},
		{[]string{"Self-Hosted"}, []string{"none", "expr", "mixed"}},
		{[]string{"äPFEL"}, []string{"none", "expr", "unicode"}},
		{[]string{"${{ matrix.os }}"}, []string{"none", "expr"}},
	}
	for i, c := range cases {
		name := fmt.Sprintf("%q", c.worker)
		if c.worker == nil {
			name = "any"
		}
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			org := e.newOrg(fmt.Sprintf("case%d", i))
			js := jobs()
			e.newRun(e.newRepo(org.ID, "acme/app"), nil, js...)
			var got []string
			for {
				l := e.lease(store.LeaseRequest{OrgID: org.ID, Labels: c.worker})
				if l == nil {
					break
				}
				got = append(got, l.Job.Key)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("worker %q leased %v, want %v", c.worker, got, c.want)
			}
			for _, j := range js { // the store and MatchLabels agree
				if m := store.MatchLabels(j.Labels, c.worker); m != slices.Contains(got, j.Key) && c.worker != nil {
					t.Errorf("MatchLabels(%q, %q) = %v, but Lease disagrees", j.Labels, c.worker, m)
				}
			}
		})
	}
}

// testLeaseLabelsNoBlock: jobs nobody can run, however many and however
// urgent, do not hold back those behind them; among matches, priority
// then age still decide.
func testLeaseLabelsNoBlock(t *testing.T, e *env) {
	var jobs []*store.Job
	for i := range 300 {
		jobs = append(jobs, &store.Job{Key: fmt.Sprintf("gpu%d", i), Priority: 10, Labels: []string{"gpu"}})
	}
	jobs = append(jobs, &store.Job{Key: "lo", Priority: 1, Labels: []string{"linux"}},
		&store.Job{Key: "hi", Priority: 5, Labels: []string{"linux"}}, &store.Job{Key: "lo2", Priority: 1, Labels: []string{"linux"}})
	r := e.newRun(e.repo, nil, jobs...)
	linux := store.LeaseRequest{Labels: []string{"linux"}}
	for _, want := range []string{"hi", "lo", "lo2"} {
		if l := e.lease(linux); l == nil || l.Job.Key != want {
			t.Fatalf("linux worker leased %+v, want %s", l, want)
		}
	}
	e.noLease(linux)
	if j := e.jobs(r.ID)["gpu0"]; j.Status != store.StatusQueued {
		t.Errorf("gpu job is %s, want queued", j.Status)
	}
	if l := e.lease(store.LeaseRequest{Labels: []string{"gpu", "linux"}}); l == nil || l.Job.Key != "gpu0" {
		t.Errorf("gpu worker leased %+v, want gpu0", l)
	}
}

func testLeaseOrg(t *testing.T, e *env) {
	other := e.newOrg("other")
	empty := e.newOrg("empty")
	e.newRun(e.repo, nil, prio("mine", 0))
	e.newRun(e.newRepo(other.ID, "other/app"), nil, prio("theirs", 9))
	e.noLease(store.LeaseRequest{OrgID: empty.ID})
	if l := e.lease(store.LeaseRequest{OrgID: e.org.ID}); l == nil || l.Job.Key != "mine" || l.Job.OrgID != e.org.ID {
		t.Fatalf("Lease for the default organisation = %+v, want mine", l)
	}
	e.noLease(store.LeaseRequest{OrgID: e.org.ID})
	if l := e.lease(store.LeaseRequest{}); l == nil || l.Job.Key != "theirs" {
		t.Fatalf("Lease for any organisation = %+v, want theirs", l)
	}
}

// testLeaseLabelsConcurrent: workers with different labels racing over one
// queue lease each job exactly once, only jobs they match, and leave the
// jobs nobody matches queued.
func testLeaseLabelsConcurrent(t *testing.T, e *env) {
	sets := [][]string{nil, {"linux"}, {"gpu"}, {"Linux", "GPU"}, {"${{ matrix.os }}", "linux"}, {"arm64"}}
	var jobs []*store.Job
	orphans := 0
	for i := range 120 {
		j := &store.Job{Key: fmt.Sprintf("j%d", i), Priority: i % 3, Labels: sets[i%len(sets)]}
		if slices.Contains(j.Labels, "arm64") {
			orphans++
		}
		jobs = append(jobs, j)
	}
	r := e.newRun(e.repo, nil, jobs...)
	workers := [][]string{{"linux"}, {"linux"}, {"gpu", "linux"}, {"GPU", "LINUX"}, {"gpu"}, {"gpu"}}
	total := len(jobs) - orphans
	var mu sync.Mutex
	leased := map[int64]string{}
	e.leaseWorkers(t, workers, total, time.Minute, func(owner string, labels []string, l *store.Lease) {
		mu.Lock()
		if prev, ok := leased[l.Job.ID]; ok {
			t.Errorf("job %d leased by %s and %s", l.Job.ID, prev, owner)
		}
		leased[l.Job.ID] = owner
		mu.Unlock()
		if !store.MatchLabels(l.Job.Labels, labels) {
			t.Errorf("worker %q leased job %s with labels %q", labels, l.Job.Key, l.Job.Labels)
		}
	})
	if len(leased) != total {
		t.Fatalf("leased %d of %d jobs", len(leased), total)
	}
	for _, j := range e.jobs(r.ID) {
		want := store.StatusSuccess
		if slices.Contains(j.Labels, "arm64") {
			want = store.StatusQueued
		}
		if j.Status != want {
			t.Errorf("job %s %q is %s, want %s", j.Key, j.Labels, j.Status, want)
		}
	}
}
