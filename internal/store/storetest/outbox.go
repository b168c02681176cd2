package storetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

var outboxTests = []test{
	{"Logs", testLogs},
	{"LogsConcurrent", testLogsConcurrent},
	{"LogsBoundedPages", testLogsBoundedPages},
	{"RetryLog", testRetryLog},
	{"Outbox", testOutbox},
	{"OutboxSupersede", testOutboxSupersede},
	{"Stats", testStats},
	{"GiveUpStatuses", testGiveUpStatuses},
}

// testGiveUpStatuses: reports given up together are done with the reason
// and never claimed again; others stay due.
func testGiveUpStatuses(t *testing.T, e *env) {
	e.newRun(e.repo, nil, job("a"))
	e.newRun(e.repo, nil, job("a"))
	e.newRun(e.repo, nil, job("a"))
	now := time.Now()
	rs, err := e.s.ClaimStatuses(e.ctx, now, 10, time.Minute)
	e.must(err)
	if len(rs) != 3 {
		t.Fatalf("claimed %d reports, want 3 pending", len(rs))
	}
	e.must(e.s.GiveUpStatuses(e.ctx, []int64{rs[0].ID, rs[1].ID}, "no token"))
	e.must(e.s.GiveUpStatuses(e.ctx, nil, "nothing"))
	rs2, err := e.s.ClaimStatuses(e.ctx, now.Add(time.Hour), 10, time.Minute)
	e.must(err)
	if len(rs2) != 1 || rs2[0].ID != rs[2].ID {
		t.Fatalf("after giving two up, claim = %+v, want only report %d", rs2, rs[2].ID)
	}
}

func testLogs(t *testing.T, e *env) {
	e.newRun(e.repo, nil, job("a"))
	l := e.leaseKey("a")
	for i := 1; i <= 3; i++ {
		seq, err := e.s.AppendLog(e.ctx, l.Job.ID, []byte(fmt.Sprintf("line %d\n", i)))
		e.must(err)
		if seq != int64(i) {
			t.Fatalf("AppendLog #%d got seq %d", i, seq)
		}
	}
	cases := []struct {
		after int64
		limit int
		want  []int64
	}{{0, 2, []int64{1, 2}}, {2, 10, []int64{3}}, {3, 10, nil}, {0, 0, []int64{1, 2, 3}}}
	for _, c := range cases {
		cs, err := e.s.ReadLog(e.ctx, e.org.ID, l.Job.ID, c.after, c.limit)
		e.must(err)
		var got []int64
		for _, ch := range cs {
			got = append(got, ch.Seq)
			if ch.JobID != l.Job.ID || string(ch.Data) != fmt.Sprintf("line %d\n", ch.Seq) || !near(ch.Time, time.Now(), time.Minute) {
				t.Errorf("chunk = %+v", ch)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("ReadLog(after %d, limit %d) = %v, want %v", c.after, c.limit, got, c.want)
		}
	}
	_, err := e.s.AppendLog(e.ctx, l.Job.ID+100, []byte("x"))
	wantKind(t, err, errs.NotFound, "AppendLog to an unknown job")
	_, err = e.s.ReadLog(e.ctx, e.org.ID, l.Job.ID+100, 0, 10)
	wantKind(t, err, errs.NotFound, "ReadLog of an unknown job")
}

// testLogsBoundedPages: a large log is read in pages that never hold
// much more than store.LogReadBytes, whatever the limit, and every byte
// comes back in order; store.LogPageEnd finds the end.
func testLogsBoundedPages(t *testing.T, e *env) {
	e.newRun(e.repo, nil, job("a"))
	l := e.leaseKey("a")
	const chunk = 300 << 10
	var want strings.Builder
	for i := range 20 { // 6 MB: 300 KB chunks, as an agent sends them
		line := fmt.Sprintf("chunk %03d %s\n", i, strings.Repeat(string(rune('a'+i%26)), 40))
		data := strings.Repeat(line, chunk/len(line))
		want.WriteString(data)
		_, err := e.s.AppendLog(e.ctx, l.Job.ID, []byte(data))
		e.must(err)
	}
	var got strings.Builder
	after, pages := int64(0), 0
	for {
		cs, err := e.s.ReadLog(e.ctx, e.org.ID, l.Job.ID, after, 10000)
		e.must(err)
		pages++
		size := 0
		for _, c := range cs {
			if c.Seq != after+1 {
				t.Fatalf("page %d: seq %d after %d", pages, c.Seq, after)
			}
			after = c.Seq
			size += len(c.Data)
			got.Write(c.Data)
		}
		if size >= store.LogReadBytes+chunk {
			t.Errorf("page %d holds %d bytes, the bound is %d + one chunk", pages, size, store.LogReadBytes)
		}
		if store.LogPageEnd(cs, 10000) {
			break
		}
		if pages > 100 {
			t.Fatal("no end of the log after 100 pages")
		}
	}
	if got.String() != want.String() {
		t.Errorf("read %d bytes back, want %d, or not the same", got.Len(), want.Len())
	}
	if pages < 6 {
		t.Errorf("6 MB read in %d pages: pages are not bounded by bytes", pages)
	}
}

// testLogsConcurrent: appends racing on one job get seq 1..n, no gap.
func testLogsConcurrent(t *testing.T, e *env) {
	const writers, each = 8, 20
	e.newRun(e.repo, nil, job("a"))
	l := e.leaseKey("a")
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := e.s.AppendLog(e.ctx, l.Job.ID, fmt.Appendf(nil, "%d/%d", w, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	cs, err := e.s.ReadLog(e.ctx, e.org.ID, l.Job.ID, 0, 1000)
	e.must(err)
	if len(cs) != writers*each {
		t.Fatalf("%d chunks, want %d", len(cs), writers*each)
	}
	for i, c := range cs {
		if c.Seq != int64(i+1) {
			t.Fatalf("chunk %d has seq %d", i, c.Seq)
		}
	}
}

func testOutbox(t *testing.T, e *env) {
	r := e.newRun(e.repo, nil, job("a"))
	now := time.Now()
	claim := func(at time.Time) []*store.StatusReport {
		t.Helper()
		rs, err := e.s.ClaimStatuses(e.ctx, at, 10, time.Minute)
		e.must(err)
		return rs
	}
	first := claim(now.Add(time.Second))
	if len(first) != 1 || first[0].RunID != r.ID || first[0].State != "pending" || first[0].Attempts != 0 {
		t.Fatalf("ClaimStatuses = %+v", first)
	}
	id := first[0].ID
	if again := claim(now.Add(time.Second)); len(again) != 0 {
		t.Fatalf("a claimed report was claimed again: %+v", again)
	}
	// The sender died: after ttl another replica gets it.
	retry := claim(now.Add(2 * time.Minute))
	if len(retry) != 1 || retry[0].ID != id {
		t.Fatalf("report not claimable after its claim ended: %+v", retry)
	}
	e.must(e.s.StatusSent(e.ctx, id, "502 bad gateway", now.Add(5*time.Minute), false))
	if got := claim(now.Add(4 * time.Minute)); len(got) != 0 {
		t.Fatalf("report claimed before its next attempt: %+v", got)
	}
	got := claim(now.Add(6 * time.Minute))
	if len(got) != 1 || got[0].Attempts != 1 || got[0].LastError != "502 bad gateway" || got[0].Done {
		t.Fatalf("report after a failure = %+v", got)
	}
	e.must(e.s.StatusSent(e.ctx, id, "", time.Time{}, false))
	if got := claim(now.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("sent report claimed again: %+v", got)
	}

	e.complete(e.leaseKey("a"), store.StatusSuccess)
	final := claim(now.Add(time.Second))
	if len(final) != 1 || final[0].State != "success" {
		t.Fatalf("final report = %+v", final)
	}
	e.must(e.s.StatusSent(e.ctx, final[0].ID, "401 bad credentials", now, true))
	if got := claim(now.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("abandoned report claimed again: %+v", got)
	}
	wantKind(t, e.s.StatusSent(e.ctx, id+100, "", now, false), errs.NotFound, "StatusSent(unknown)")
	_, err := e.s.ClaimStatuses(e.ctx, now, 0, time.Minute)
	wantKind(t, err, errs.Invalid, "ClaimStatuses(n=0)")
}

// testOutboxSupersede: an unsent pending status never lands after the
// run's result: the result supersedes it.
func testOutboxSupersede(t *testing.T, e *env) {
	e.newRun(e.repo, nil, job("a"))
	now := time.Now()
	rs, err := e.s.ClaimStatuses(e.ctx, now.Add(time.Second), 10, time.Minute)
	e.must(err)
	if len(rs) != 1 || rs[0].State != "pending" {
		t.Fatalf("claim = %+v", rs)
	}
	e.must(e.s.StatusSent(e.ctx, rs[0].ID, "502", now.Add(time.Minute), false)) // will be retried
	e.complete(e.leaseKey("a"), store.StatusSuccess)
	rs, err = e.s.ClaimStatuses(e.ctx, now.Add(time.Hour), 10, time.Minute)
	e.must(err)
	if len(rs) != 1 || rs[0].State != "success" {
		t.Fatalf("after the result, claim = %+v (the pending retry must be superseded)", rs)
	}
}

func testStats(t *testing.T, e *env) {
	e.newRun(e.repo, nil, job("a"), job("b"), job("c"), job("d", "a"))
	e.complete(e.leaseKey("a"), store.StatusSuccess)
	e.leaseKey("b")
	got, err := e.s.Stats(e.ctx)
	e.must(err)
	want := map[string]int{store.StatusSuccess: 0, store.StatusRunning: 1, store.StatusQueued: 2, store.StatusWaiting: 0}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("Stats[%s] = %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
}

// testRetryLog: a retried chunk whose first request was stored is not
// stored twice; one whose first request was lost is.
func testRetryLog(t *testing.T, e *env) {
	e.newRun(e.repo, nil, job("a"))
	l := e.leaseKey("a")
	id := l.Job.ID
	retry := func(prev int64, data string, wantSeq int64, wantDup bool) {
		t.Helper()
		seq, dup, err := e.s.RetryLog(e.ctx, id, prev, []byte(data))
		e.must(err)
		if seq != wantSeq || dup != wantDup {
			t.Errorf("RetryLog(prev %d, %q) = %d, %v; want %d, %v", prev, data, seq, dup, wantSeq, wantDup)
		}
	}
	retry(0, "one\n", 1, false) // the first request was lost: stored now
	retry(0, "one\n", 1, true)  // the first request was stored: not again
	if _, err := e.s.AppendLog(e.ctx, id, []byte("two\n")); err != nil {
		t.Fatal(err)
	}
	retry(2, "two\n", 3, false) // last is 2, not prev+1: equal bytes, yet a new chunk
	retry(2, "two\n", 3, true)  // its retry
	var got []string
	cs, err := e.s.ReadLog(e.ctx, e.org.ID, id, 0, 100)
	e.must(err)
	for _, c := range cs {
		got = append(got, string(c.Data))
	}
	if strings.Join(got, "") != "one\ntwo\ntwo\n" {
		t.Errorf("log = %q", got)
	}
	_, _, err = e.s.RetryLog(e.ctx, id+100, 0, []byte("x"))
	wantKind(t, err, errs.NotFound, "RetryLog to an unknown job")
}
