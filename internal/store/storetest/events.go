package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

var eventTests = []test{
	{"AcceptRoundTrip", testAcceptRoundTrip},
	{"AcceptDuplicates", testAcceptDuplicates},
	{"AcceptAtomic", testAcceptAtomic},
	{"AcceptConcurrent", testAcceptConcurrent},
	{"ClaimEvents", testClaimEvents},
	{"FinishEventFencing", testFinishEventFencing},
	{"RunFailedAtStart", testRunFailedAtStart},
	{"FinishEvents", testFinishEvents},
	{"FinishEventsConcurrent", testFinishEventsConcurrent},
	{"FireCron", testFireCron},
}

// claimAll claims every pending event (for counting what was stored).
func (e *env) claimAll(owner string) []*store.Event {
	e.t.Helper()
	evs, err := e.s.ClaimEvents(e.ctx, owner, 100000, time.Hour)
	e.must(err)
	return evs
}

func testAcceptRoundTrip(t *testing.T, e *env) {
	ev := event(e.repo, "delivery-1", `{"ref":"refs/heads/main"}`)
	ev.Headers["X-Hub-Signature-256"] = "sha256=00" // a secret header: not stored
	ev.Headers["X-Gitlab-Token"] = "hook-secret"
	as := e.accept(ev)
	if as[0].Duplicate || as[0].ID == 0 || ev.ID != as[0].ID {
		t.Fatalf("Accept = %+v, event ID %d", as[0], ev.ID)
	}
	got, err := e.s.GetEvent(e.ctx, e.org.ID, ev.ID)
	e.must(err)
	if got.RepoID != e.repo.ID || got.OrgID != e.org.ID || got.Source != "webhook" || got.Forge != "github" ||
		got.Name != "push" || got.DeliveryID != "delivery-1" || !bytes.Equal(got.BodyHash, ev.BodyHash) ||
		!bytes.Equal(got.Body, ev.Body) || len(got.Headers) != 1 || got.Headers["X-GitHub-Event"] != "push" ||
		got.State != store.EventPending || got.Attempts != 0 || got.Error != "" {
		t.Errorf("GetEvent = %+v", got)
	}
	if !near(got.Received, time.Now(), time.Minute) {
		t.Errorf("Received = %v, want about now", got.Received)
	}
	_, err = e.s.GetEvent(e.ctx, e.org.ID, ev.ID+100)
	wantKind(t, err, errs.NotFound, "GetEvent(unknown)")
	if as, err := e.s.Accept(e.ctx, nil); err != nil || len(as) != 0 {
		t.Errorf("Accept(nil) = %v, %v", as, err)
	}
}

func testAcceptDuplicates(t *testing.T, e *env) {
	other := e.newRepo(e.org.ID, "acme/other")
	want := 0
	for i, c := range duplicateCases(other) {
		t.Run(c.name, func(t *testing.T) {
			e := e.with(t)
			r := e.newRepo(e.org.ID, fmt.Sprintf("acme/dup-%d", i))
			var before []store.Accepted
			if c.before != nil {
				before = e.accept(c.before(r)...)
			}
			as := e.accept(c.batch(r)...)
			checkDuplicates(t, before, as, c.dup)
			for _, a := range as {
				if !a.Duplicate {
					want++
				}
			}
			want += len(before)
		})
	}
	// Only first copies were stored.
	if got := len(e.claimAll("counter")); got != want {
		t.Errorf("%d events stored, want %d", got, want)
	}
}

// dupCase is a case of testAcceptDuplicates.
type dupCase struct {
	name   string
	before func(r *store.Repo) []*store.Event // accepted first, in one batch
	batch  func(r *store.Repo) []*store.Event
	dup    []bool // per event of batch
}

// duplicateCases are the deliveries testAcceptDuplicates accepts, in
// repositories of their own; other is a further repository.
func duplicateCases(other *store.Repo) []dupCase {
	day := 24 * time.Hour
	at := func(ev *store.Event, d time.Duration) *store.Event { ev.Received = time.Now().Add(d); return ev }
	noHash := func(ev *store.Event) *store.Event { ev.BodyHash = nil; return ev }
	return []dupCase{
		{"same delivery id", func(r *store.Repo) []*store.Event { return []*store.Event{event(r, "d1", "a")} },
			func(r *store.Repo) []*store.Event { return []*store.Event{event(r, "d1", "b")} }, []bool{true}},
		{"same body within 24h", func(r *store.Repo) []*store.Event { return []*store.Event{at(event(r, "", "a"), -day+time.Hour)} },
			func(r *store.Repo) []*store.Event { return []*store.Event{event(r, "", "a")} }, []bool{true}},
		{"same body, other delivery id", func(r *store.Repo) []*store.Event { return []*store.Event{event(r, "d1", "a")} },
			func(r *store.Repo) []*store.Event { return []*store.Event{event(r, "d2", "a")} }, []bool{true}},
		{"same body after 24h", func(r *store.Repo) []*store.Event { return []*store.Event{at(event(r, "", "a"), -day-time.Hour)} },
			func(r *store.Repo) []*store.Event { return []*store.Event{event(r, "", "a")} }, []bool{false}},
		{"different delivery and body", func(r *store.Repo) []*store.Event { return []*store.Event{event(r, "d1", "a")} },
			func(r *store.Repo) []*store.Event { return []*store.Event{event(r, "d2", "b")} }, []bool{false}},
		{"same delivery and body, other repository", func(*store.Repo) []*store.Event { return []*store.Event{event(other, "d1", "a")} },
			func(r *store.Repo) []*store.Event { return []*store.Event{event(r, "d1", "a")} }, []bool{false}},
		{"within one batch", nil, func(r *store.Repo) []*store.Event {
			return []*store.Event{event(r, "d1", "a"), event(r, "d1", "b"), event(r, "", "c"), event(r, "", "c"), event(r, "d9", "z")}
		}, []bool{false, true, false, true, false}},
		// More events than one lookup list holds, and lists of sizes that
		// are padded: every copy is still found.
		{"large batches", func(r *store.Repo) []*store.Event {
			var evs []*store.Event
			for i := range 300 {
				evs = append(evs, event(r, fmt.Sprint("d", i), fmt.Sprint("b", i)))
			}
			return evs
		}, func(r *store.Repo) []*store.Event {
			var evs []*store.Event
			for i := range 300 {
				if i%2 == 0 {
					evs = append(evs, event(r, fmt.Sprint("d", i), fmt.Sprint("new", i))) // same delivery
				} else {
					evs = append(evs, event(r, fmt.Sprint("n", i), fmt.Sprint("b", i))) // same body
				}
			}
			return append(evs, event(r, "fresh-1", "fresh-1"), event(r, "fresh-2", "fresh-2"), event(r, "fresh-1", "x"))
		}, append(slices.Repeat([]bool{true}, 300), false, false, true)},
		{"nothing to compare", nil, func(r *store.Repo) []*store.Event {
			return []*store.Event{noHash(event(r, "", "a")), noHash(event(r, "", "a"))}
		}, []bool{false, false}},
	}
}

// checkDuplicates checks which events of a batch (as) were found to be
// duplicates against want, and that each names an event accepted before
// (before, or earlier in the batch).
func checkDuplicates(t *testing.T, before, as []store.Accepted, want []bool) {
	t.Helper()
	stored := map[int64]bool{}
	for _, a := range before {
		stored[a.ID] = true
	}
	for j, a := range as {
		if a.Duplicate != want[j] {
			t.Errorf("event %d: Duplicate = %v, want %v", j, a.Duplicate, want[j])
		}
		if a.Duplicate && !stored[a.ID] {
			t.Errorf("event %d: duplicate of %d, which is not an earlier event", j, a.ID)
		}
		stored[a.ID] = true
	}
}

func testAcceptAtomic(t *testing.T, e *env) {
	good := event(e.repo, "ok", "ok")
	bad := event(&store.Repo{ID: e.repo.ID + 1000, OrgID: e.org.ID}, "bad", "bad")
	_, err := e.s.Accept(e.ctx, []*store.Event{good, bad})
	wantKind(t, err, errs.NotFound, "Accept with an unknown repository")
	if evs := e.claimAll("x"); len(evs) != 0 {
		t.Fatalf("a failed batch stored %d events", len(evs))
	}
	// The same good event alone is not a duplicate of the failed batch.
	if as := e.accept(event(e.repo, "ok", "ok")); as[0].Duplicate {
		t.Fatal("event of a failed batch counted as stored")
	}
}

// testAcceptConcurrent sends overlapping batches from many goroutines:
// each delivery id is stored once and every duplicate names that row.
func testAcceptConcurrent(t *testing.T, e *env) {
	const workers, batches, per, deliveries = 8, 8, 16, 40
	type answer struct {
		delivery string
		a        store.Accepted
	}
	var mu sync.Mutex
	var answers []answer
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for b := range batches {
				evs := make([]*store.Event, per)
				for i := range evs {
					d := fmt.Sprintf("d-%d", (w*7+b*3+i)%deliveries)
					evs[i] = event(e.repo, d, fmt.Sprintf("%s/%d/%d/%d", d, w, b, i))
				}
				as, err := e.s.Accept(e.ctx, evs)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for i, a := range as {
					answers = append(answers, answer{evs[i].DeliveryID, a})
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	stored := map[string]int64{}
	for _, ev := range e.claimAll("counter") {
		if _, ok := stored[ev.DeliveryID]; ok {
			t.Errorf("delivery %s stored twice", ev.DeliveryID)
		}
		stored[ev.DeliveryID] = ev.ID
	}
	if len(stored) != deliveries {
		t.Errorf("stored %d deliveries, want %d", len(stored), deliveries)
	}
	firsts := 0
	for _, a := range answers {
		if a.a.ID != stored[a.delivery] {
			t.Errorf("delivery %s answered id %d, stored as %d", a.delivery, a.a.ID, stored[a.delivery])
		}
		if !a.a.Duplicate {
			firsts++
		}
	}
	if firsts != deliveries {
		t.Errorf("%d answers said stored, want %d", firsts, deliveries)
	}
}

func testClaimEvents(t *testing.T, e *env) {
	var ids []int64
	for i := range 3 {
		ev := event(e.repo, name(i), name(i))
		e.accept(ev)
		ids = append(ids, ev.ID)
	}
	a, err := e.s.ClaimEvents(e.ctx, "a", 2, time.Minute)
	e.must(err)
	if len(a) != 2 || a[0].ID != ids[0] || a[1].ID != ids[1] {
		t.Fatalf("ClaimEvents(a, 2) = %v, want the oldest two of %v", eventIDs(a), ids)
	}
	for _, ev := range a {
		if ev.State != store.EventProcessing || ev.Attempts != 1 {
			t.Errorf("claimed event: state %s attempts %d", ev.State, ev.Attempts)
		}
	}
	b, err := e.s.ClaimEvents(e.ctx, "b", 5, time.Minute)
	e.must(err)
	if len(b) != 1 || b[0].ID != ids[2] {
		t.Fatalf("ClaimEvents(b) = %v, want [%d]", eventIDs(b), ids[2])
	}
	if c := e.claimAll("c"); len(c) != 0 {
		t.Fatalf("claimed events are claimed again: %v", eventIDs(c))
	}
	_, err = e.s.ClaimEvents(e.ctx, "c", 0, time.Minute)
	wantKind(t, err, errs.Invalid, "ClaimEvents(n=0)")

	wantKind(t, e.s.FailEvent(e.ctx, ids[0], "b", "x"), errs.Conflict, "FailEvent by a non-holder")
	e.must(e.s.FailEvent(e.ctx, ids[0], "a", "no workflow matched"))
	got, err := e.s.GetEvent(e.ctx, e.org.ID, ids[0])
	e.must(err)
	if got.State != store.EventFailed || got.Error != "no workflow matched" {
		t.Errorf("failed event: state %s error %q", got.State, got.Error)
	}
	runs, err := e.s.FinishEvent(e.ctx, ids[1], "a", nil)
	e.must(err)
	if len(runs) != 0 {
		t.Errorf("FinishEvent without runs made %d", len(runs))
	}
	if got, _ := e.s.GetEvent(e.ctx, e.org.ID, ids[1]); got.State != store.EventDone {
		t.Errorf("finished event is %s", got.State)
	}
	_, err = e.s.FinishEvent(e.ctx, ids[1], "a", nil)
	wantKind(t, err, errs.Conflict, "FinishEvent twice")
	_, err = e.s.FinishEvent(e.ctx, ids[2]+100, "a", nil)
	wantKind(t, err, errs.NotFound, "FinishEvent(unknown)")
}

func eventIDs(evs []*store.Event) []int64 {
	var out []int64
	for _, ev := range evs {
		out = append(out, ev.ID)
	}
	return out
}

// testFinishEventFencing: a claim that expired and was taken over cannot
// be finished by its first owner.
func testFinishEventFencing(t *testing.T, e *env) {
	ev := event(e.repo, "d", "d")
	e.accept(ev)
	first, err := e.s.ClaimEvents(e.ctx, "slow", 1, 20*time.Millisecond)
	e.must(err)
	if len(first) != 1 {
		t.Fatal("nothing claimed")
	}
	time.Sleep(60 * time.Millisecond)
	second, err := e.s.ClaimEvents(e.ctx, "fast", 1, time.Minute)
	e.must(err)
	if len(second) != 1 || second[0].ID != ev.ID || second[0].Attempts != 2 {
		t.Fatalf("expired claim not taken over: %+v", second)
	}
	_, err = e.s.FinishEvent(e.ctx, ev.ID, "slow", []store.NewRun{{Run: &store.Run{RepoID: e.repo.ID, Name: "x"}}})
	wantKind(t, err, errs.Conflict, "FinishEvent by the owner of an expired claim")
	if runs, _ := e.s.ListRuns(e.ctx, e.org.ID, store.RunFilter{}); len(runs) != 0 {
		t.Fatalf("the fenced FinishEvent wrote %d runs", len(runs))
	}
	runs, err := e.s.FinishEvent(e.ctx, ev.ID, "fast", []store.NewRun{
		{Run: &store.Run{RepoID: e.repo.ID, Name: "ci"}, Jobs: []*store.Job{job("a")}},
		{Run: &store.Run{RepoID: e.repo.ID, Name: "lint"}, Jobs: []*store.Job{job("b")}},
	})
	e.must(err)
	if len(runs) != 2 || runs[0].EventID != ev.ID || runs[0].Number != 1 || runs[1].Number != 2 {
		t.Fatalf("FinishEvent runs = %+v", runs)
	}
}

func testFireCron(t *testing.T, e *env) {
	last, err := e.s.CronLast(e.ctx, "nightly")
	e.must(err)
	if !last.IsZero() {
		t.Fatalf("CronLast of a new key = %v", last)
	}
	t1 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	cronEvent := func() *store.Event {
		return &store.Event{RepoID: e.repo.ID, Source: "cron", Name: "schedule", Body: []byte("{}")}
	}
	steps := []struct {
		at   time.Time
		want bool
	}{{t1, true}, {t1, false}, {t1.Add(-time.Hour), false}, {t1.Add(time.Hour), true}}
	for _, st := range steps {
		fired, err := e.s.FireCron(e.ctx, "nightly", st.at, cronEvent())
		e.must(err)
		if fired != st.want {
			t.Errorf("FireCron(%v) = %v, want %v", st.at, fired, st.want)
		}
	}
	if last, _ := e.s.CronLast(e.ctx, "nightly"); !last.Equal(t1.Add(time.Hour)) {
		t.Errorf("CronLast = %v, want %v", last, t1.Add(time.Hour))
	}
	// Replicas racing for one tick: one fires.
	var wg sync.WaitGroup
	var mu sync.Mutex
	fired := 0
	for range 8 {
		wg.Go(func() {
			ok, err := e.s.FireCron(e.ctx, "hourly", t1, cronEvent())
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			if ok {
				fired++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if fired != 1 {
		t.Errorf("%d replicas fired the same tick, want 1", fired)
	}
	if evs := e.claimAll("x"); len(evs) != 3 {
		t.Errorf("FireCron stored %d events, want 3", len(evs))
	}
}

// testFinishEvents: a processed batch is written in one call; each outcome
// is fenced on its own, and a bad outcome fails alone.
func testFinishEvents(t *testing.T, e *env) {
	if res := e.s.FinishEvents(e.ctx, "a", nil); len(res) != 0 {
		t.Fatalf("FinishEvents(nil) = %v", res)
	}
	var ids []int64
	for i := range 6 {
		ev := event(e.repo, name(i), name(i))
		e.accept(ev)
		ids = append(ids, ev.ID)
	}
	if a, err := e.s.ClaimEvents(e.ctx, "a", 5, time.Minute); err != nil || len(a) != 5 {
		t.Fatalf("ClaimEvents(a) = %v, %v", eventIDs(a), err)
	}
	if b, err := e.s.ClaimEvents(e.ctx, "b", 1, time.Minute); err != nil || len(b) != 1 || b[0].ID != ids[5] {
		t.Fatalf("ClaimEvents(b) = %v, %v", eventIDs(b), err)
	}
	ci := func(n string) []store.NewRun {
		return []store.NewRun{{Run: &store.Run{RepoID: e.repo.ID, Name: n}, Jobs: []*store.Job{job("a")}}}
	}
	// Out of id order on purpose: results come back in the order given.
	outs := []store.EventOutcome{
		{EventID: ids[1], Fail: "no such commit"},
		{EventID: ids[0], Runs: ci("first")},
		{EventID: ids[5], Runs: ci("not mine")},
		{EventID: ids[5] + 100},
		{EventID: ids[2], Runs: ci("second")},
	}
	res := e.s.FinishEvents(e.ctx, "a", outs)
	if len(res) != len(outs) {
		t.Fatalf("FinishEvents answered %d of %d", len(res), len(outs))
	}
	for _, i := range []int{0, 1, 4} {
		e.must(res[i].Err)
	}
	wantKind(t, res[2].Err, errs.Conflict, "FinishEvents of another owner's claim")
	wantKind(t, res[3].Err, errs.NotFound, "FinishEvents of an unknown event")
	if len(res[0].Runs) != 0 || len(res[1].Runs) != 1 || res[1].Runs[0].EventID != ids[0] || len(res[4].Runs) != 1 ||
		res[4].Runs[0].EventID != ids[2] || res[1].Runs[0].Number >= res[4].Runs[0].Number {
		t.Fatalf("FinishEvents runs: %+v", res)
	}
	want := map[int64]string{ids[0]: store.EventDone, ids[1]: store.EventFailed, ids[2]: store.EventDone,
		ids[3]: store.EventProcessing, ids[4]: store.EventProcessing, ids[5]: store.EventProcessing}
	for id, st := range want {
		got, err := e.s.GetEvent(e.ctx, e.org.ID, id)
		e.must(err)
		if got.State != st {
			t.Errorf("event %d is %s, want %s", id, got.State, st)
		}
		if id == ids[1] && got.Error != "no such commit" {
			t.Errorf("failed event's error %q", got.Error)
		}
	}
	if runs, _ := e.s.ListRuns(e.ctx, e.org.ID, store.RunFilter{}); len(runs) != 2 {
		t.Fatalf("FinishEvents wrote %d runs, want 2", len(runs))
	}
	// A bad outcome (a run without a repository) fails the shared
	// transaction; the others are then written one by one.
	res = e.s.FinishEvents(e.ctx, "a", []store.EventOutcome{
		{EventID: ids[3], Runs: []store.NewRun{{Run: &store.Run{Name: "broken"}}}},
		{EventID: ids[5], Runs: ci("b's")},
		{EventID: ids[4], Runs: ci("third")},
	})
	wantKind(t, res[0].Err, errs.Invalid, "FinishEvents of a run without a repository")
	wantKind(t, res[1].Err, errs.Conflict, "FinishEvents of another owner's claim")
	e.must(res[2].Err)
	if len(res[2].Runs) != 1 || res[2].Runs[0].EventID != ids[4] {
		t.Fatalf("FinishEvents runs after a bad outcome: %+v", res[2])
	}
	res = e.s.FinishEvents(e.ctx, "b", []store.EventOutcome{{EventID: ids[5], Runs: ci("b's")}, {EventID: ids[3]}})
	e.must(res[0].Err)
	wantKind(t, res[1].Err, errs.Conflict, "FinishEvents of another owner's claim")
	if got, _ := e.s.GetEvent(e.ctx, e.org.ID, ids[3]); got.State != store.EventProcessing {
		t.Errorf("event of the failed outcome is %s", got.State)
	}
	if runs, _ := e.s.ListRuns(e.ctx, e.org.ID, store.RunFilter{}); len(runs) != 4 {
		t.Fatalf("%d runs, want 4", len(runs))
	}
	// The claim is gone once finished: finishing again is a Conflict.
	wantKind(t, e.s.FinishEvents(e.ctx, "a", []store.EventOutcome{{EventID: ids[0]}})[0].Err, errs.Conflict, "FinishEvents twice")
}

// testFinishEventsConcurrent: replicas finishing batches over the same
// repositories at once all succeed, and run numbers stay unique.
func testFinishEventsConcurrent(t *testing.T, e *env) {
	repos := []*store.Repo{e.repo, e.newRepo(e.org.ID, "acme/second")}
	const perOwner = 12
	for i := range 2 * perOwner {
		e.accept(event(repos[i%2], name(i), name(i)))
	}
	batches := map[string][]*store.Event{}
	for _, owner := range []string{"a", "b"} {
		evs, err := e.s.ClaimEvents(e.ctx, owner, perOwner, time.Minute)
		e.must(err)
		if len(evs) != perOwner {
			t.Fatalf("%s claimed %d events", owner, len(evs))
		}
		batches[owner] = evs
	}
	var wg sync.WaitGroup
	for owner, evs := range batches {
		wg.Go(func() {
			outs := make([]store.EventOutcome, len(evs))
			for i, ev := range evs {
				// Opposite orders of repositories in the two batches.
				k := i
				if owner == "b" {
					k = len(evs) - 1 - i
				}
				ev = evs[k]
				outs[i] = store.EventOutcome{EventID: ev.ID, Runs: []store.NewRun{{Run: &store.Run{RepoID: ev.RepoID, Name: "ci"}, Jobs: []*store.Job{job("a")}}}}
			}
			for i, res := range e.s.FinishEvents(e.ctx, owner, outs) {
				if res.Err != nil || len(res.Runs) != 1 {
					t.Errorf("%s: outcome %d: %v %v", owner, i, res.Runs, res.Err)
				}
			}
		})
	}
	wg.Wait()
	runs, err := e.s.ListRuns(e.ctx, e.org.ID, store.RunFilter{Limit: 100})
	e.must(err)
	seen := map[string]bool{}
	for _, r := range runs {
		k := fmt.Sprintf("%d/%d", r.RepoID, r.Number)
		if seen[k] {
			t.Errorf("run number %s twice", k)
		}
		seen[k] = true
	}
	if len(runs) != 2*perOwner {
		t.Errorf("%d runs, want %d", len(runs), 2*perOwner)
	}
}

// A run that failed before it started (an invalid workflow file: no jobs,
// status failure, a reason) is stored failed and finished, and its commit
// status says failure after the pending one.
func testRunFailedAtStart(t *testing.T, e *env) {
	r := e.newRun(e.repo, func(r *store.Run) { r.Status = store.StatusFailure; r.Error = "invalid workflow file: x.yml:3:4: nope" })
	got := e.getRun(r.ID)
	if got.Status != store.StatusFailure || got.Finished.IsZero() || got.Error != r.Error {
		t.Fatalf("run %+v", got)
	}
	reps, err := e.s.ClaimStatuses(e.ctx, time.Now().Add(time.Hour), 100, time.Minute)
	e.must(err)
	var states []string
	for _, rep := range reps {
		if rep.RunID == r.ID {
			states = append(states, rep.State)
		}
	}
	if len(states) == 0 || states[len(states)-1] != "failure" {
		t.Errorf("commit statuses %v, want pending then failure", states)
	}
	// A run without jobs that did not fail is simply done.
	if ok := e.getRun(e.newRun(e.repo, nil).ID); ok.Status != store.StatusSuccess {
		t.Errorf("empty run: %s", ok.Status)
	}
}
