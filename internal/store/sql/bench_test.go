package sqlstore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// benchBatch is the webhook group-commit size the server uses.
const benchBatch = 256

// benchSizes are webhook body sizes: a small event (ping, status) and a
// GitHub push (4-8 KiB, mostly the repository object).
var benchSizes = []int{1 << 10, 4 << 10}

// benchBody returns a JSON body of about n bytes.
func benchBody(n int) string {
	const item = `{"ref":"refs/heads/main","sha":"0123456789abcdef"},`
	return `{"commits":[` + strings.Repeat(item, n/len(item)) + `{}]}`
}

// benchEvents makes a batch of distinct webhook events.
func benchEvents(repo *store.Repo, seq *atomic.Int64, size int) []*store.Event {
	evs := make([]*store.Event, benchBatch)
	template := benchBody(size)
	for i := range evs {
		n := seq.Add(1)
		body := fmt.Sprintf(`{"n":%d,%s`, n, template[1:])
		h := sha256.Sum256([]byte(body))
		evs[i] = &store.Event{RepoID: repo.ID, OrgID: repo.OrgID, Source: "webhook", Forge: "github", Name: "push",
			DeliveryID: fmt.Sprintf("delivery-%d", n), BodyHash: h[:], Body: []byte(body),
			Headers: map[string]string{"X-GitHub-Event": "push", "Content-Type": "application/json"}}
	}
	return evs
}

// BenchmarkAccept is the webhook hot path: batches of 256 with duplicate
// checks, each batch one fsynced transaction.
func BenchmarkAccept(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("body=%dKiB", size>>10), func(b *testing.B) {
			s, repo, _ := repoSQLite(b)
			var seq atomic.Int64
			ctx := context.Background()
			for b.Loop() {
				b.StopTimer()
				evs := benchEvents(repo, &seq, size)
				b.StartTimer()
				if _, err := s.Accept(ctx, evs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(seq.Load())/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkRawInsertBatched is the floor Accept is measured against: the
// same rows inserted in one transaction per batch, without de-duplication.
func BenchmarkRawInsertBatched(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("body=%dKiB", size>>10), func(b *testing.B) {
			s, repo, _ := repoSQLite(b)
			var seq atomic.Int64
			for b.Loop() {
				b.StopTimer()
				evs := benchEvents(repo, &seq, size)
				b.StartTimer()
				rawInsert(b, s, evs)
			}
			b.ReportMetric(float64(seq.Load())/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func rawInsert(b *testing.B, s *DB, evs []*store.Event) {
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	must(b, err)
	stmt, err := tx.PrepareContext(ctx, s.insertEventQuery())
	must(b, err)
	payload, err := tx.PrepareContext(ctx, qInsertPayload)
	must(b, err)
	t := now()
	for _, ev := range evs {
		_, err := s.insertEvent(ctx, stmt, payload, ev.OrgID, ev, storedHeaders(ev), t)
		must(b, err)
	}
	stmt.Close()
	payload.Close()
	must(b, tx.Commit())
}

// BenchmarkAcceptBatcher: many concurrent webhook requests of one event
// each, group-committed.
func BenchmarkAcceptBatcher(b *testing.B) {
	body := benchBody(1 << 10)
	benchAcceptBatcher(b, false, 5*time.Millisecond, func(n int64) *store.Event {
		return &store.Event{Source: "webhook", DeliveryID: fmt.Sprintf("d-%d", n), Body: []byte(body)}
	})
}

// BenchmarkAcceptBatcherPush is BenchmarkAcceptBatcher with the server's
// events: 4 KiB bodies with their hash (so that each batch looks for
// stored equal bodies), a GitHub delivery's headers, each caller one
// arrival (Arriving) while it makes its event, and the server's batch
// window (1 ms).
func BenchmarkAcceptBatcherPush(b *testing.B) {
	template := benchBody(4 << 10)
	benchAcceptBatcher(b, true, time.Millisecond, func(n int64) *store.Event {
		body := fmt.Sprintf(`{"n":%d,%s`, n, template[1:])
		h := sha256.Sum256([]byte(body))
		d := fmt.Sprintf("d-%d", n)
		return &store.Event{Source: "webhook", Forge: "github", Name: "push", DeliveryID: d, BodyHash: h[:], Body: []byte(body),
			Headers: map[string]string{"Accept": "*/*", "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/bench",
				"X-Github-Delivery": d, "X-Github-Event": "push", "X-Github-Hook-Id": "123456789",
				"X-Hub-Signature-256": "sha256=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}
	})
}

// benchAcceptBatcher runs 64 × GOMAXPROCS callers, each accepting the
// events ev makes, one at a time; with arrivals each is announced
// (Arriving) before it is made.
func benchAcceptBatcher(b *testing.B, arrivals bool, window time.Duration, ev func(n int64) *store.Event) {
	s, repo, _ := repoSQLite(b)
	bt := NewAcceptBatcher(s, benchBatch, window)
	defer bt.Close()
	var seq atomic.Int64
	b.SetParallelism(64)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var a *Arrival
			if arrivals {
				a = bt.Arriving()
			}
			e := ev(seq.Add(1))
			e.RepoID = repo.ID
			var err error
			if a != nil {
				_, err = a.Accept(context.Background(), e)
			} else {
				_, err = bt.Accept(context.Background(), e)
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(seq.Load())/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(seq.Load())/float64(bt.batches.Load()), "events/tx")
}

// BenchmarkLeaseComplete: one worker's round trip per job.
func BenchmarkLeaseComplete(b *testing.B) {
	s, repo, _ := repoSQLite(b)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		_, err := s.CreateRuns(ctx, []store.NewRun{{Run: &store.Run{RepoID: repo.ID}, Jobs: []*store.Job{{Key: "a"}}}})
		must(b, err)
		b.StartTimer()
		l, err := s.Lease(ctx, store.LeaseRequest{Owner: "w", TTL: time.Minute})
		if err != nil || l == nil {
			b.Fatal(l, err)
		}
		must(b, s.Complete(ctx, l.Job.ID, l.Job.LeaseToken, store.Completion{Status: store.StatusSuccess}))
	}
}

// BenchmarkLeaseCompleteQuota: BenchmarkLeaseComplete for an organisation
// with a maximum of concurrent jobs, which Lease counts against.
func BenchmarkLeaseCompleteQuota(b *testing.B) {
	s, repo, _ := repoSQLite(b)
	ctx := context.Background()
	must(b, s.SetQuota(ctx, &store.Quota{OrgID: repo.OrgID, MaxConcurrentJobs: 4}))
	for b.Loop() {
		b.StopTimer()
		_, err := s.CreateRuns(ctx, []store.NewRun{{Run: &store.Run{RepoID: repo.ID, OrgID: repo.OrgID}, Jobs: []*store.Job{{Key: "a"}}}})
		must(b, err)
		b.StartTimer()
		l, err := s.Lease(ctx, store.LeaseRequest{Owner: "w", TTL: time.Minute})
		if err != nil || l == nil {
			b.Fatal(l, err)
		}
		must(b, s.Complete(ctx, l.Job.ID, l.Job.LeaseToken, store.Completion{Status: store.StatusSuccess, Build: time.Second}))
	}
}

// BenchmarkClaimFinish is the event processor's store work: claim a batch
// of 32 pushes, then write each one's run (one job, a 4 KiB event JSON) in
// one FinishEvents; events/s.
func BenchmarkClaimFinish(b *testing.B) {
	s, repo, _ := repoSQLite(b)
	ctx := context.Background()
	var seq atomic.Int64
	evJSON := []byte(benchBody(4 << 10))
	n := 0
	for b.Loop() {
		b.StopTimer()
		if _, err := s.Accept(ctx, benchEvents(repo, &seq, 4<<10)[:32]); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		evs, err := s.ClaimEvents(ctx, "p", 32, time.Minute)
		must(b, err)
		outs := make([]store.EventOutcome, len(evs))
		for i, ev := range evs {
			outs[i] = store.EventOutcome{EventID: ev.ID, Runs: []store.NewRun{{
				Run: &store.Run{RepoID: repo.ID, OrgID: repo.OrgID, Workflow: ".github/workflows/ci.yml", Name: "ci", Event: "push",
					Ref: "refs/heads/main", SHA: "0123456789abcdef0123456789abcdef01234567", Trigger: "webhook", Status: store.StatusQueued,
					EventJSON: evJSON, WorkflowYAML: []byte("on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo built\n"), Attempt: 1},
				Jobs: []*store.Job{{Key: "build", Name: "build", Labels: []string{"ubuntu-latest"}}}}}}
		}
		for _, r := range s.FinishEvents(ctx, "p", outs) {
			must(b, r.Err)
		}
		n += len(evs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
