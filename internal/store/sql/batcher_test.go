package sqlstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// TestAcceptBatcher runs through both ways a batch is written: gathered,
// then given to Accept (any store), and inserted while it gathers
// (SQLite's acceptMore).
func TestAcceptBatcher(t *testing.T) {
	t.Run("gathered", func(t *testing.T) {
		s, repo, _ := repoSQLite(t)
		counting := &countingEvents{Events: s}
		b := NewAcceptBatcher(counting, 64, 10*time.Millisecond)
		defer b.Close()
		if b.more != nil {
			t.Fatal("a wrapped store inserts while a batch gathers")
		}
		acceptConcurrently(t, b, repo)
		if calls := counting.calls.Load(); calls != b.batches.Load() {
			t.Errorf("%d Accept calls for %d batches", calls, b.batches.Load())
		}
	})
	t.Run("more", func(t *testing.T) {
		s, repo, _ := repoSQLite(t)
		b := NewAcceptBatcher(s, 64, 10*time.Millisecond)
		defer b.Close()
		if b.more == nil {
			t.Fatal("SQLite's batcher does not insert while a batch gathers")
		}
		acceptConcurrently(t, b, repo)
	})
}

// acceptConcurrently: 64 goroutines × 20 events, every delivery id sent
// twice; each is stored once, and the batcher wrote fewer batches than
// events.
func acceptConcurrently(t *testing.T, b *AcceptBatcher, repo *store.Repo) {
	ctx := t.Context()
	const workers, each = 64, 20
	var wg sync.WaitGroup
	var stored, dups atomic.Int64
	ids := sync.Map{}
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				d := fmt.Sprintf("d-%d-%d", w/2, i) // workers 2k and 2k+1 share ids
				a, err := b.Accept(ctx, &store.Event{RepoID: repo.ID, DeliveryID: d, Body: []byte(d)})
				if err != nil {
					t.Error(err)
					return
				}
				if prev, loaded := ids.LoadOrStore(d, a.ID); loaded && prev.(int64) != a.ID {
					t.Errorf("delivery %s answered ids %d and %d", d, prev, a.ID)
				}
				if a.Duplicate {
					dups.Add(1)
				} else {
					stored.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if stored.Load() != workers/2*each || dups.Load() != workers/2*each {
		t.Errorf("stored %d and skipped %d, want %d each", stored.Load(), dups.Load(), workers/2*each)
	}
	batches := b.batches.Load()
	if batches >= workers*each {
		t.Errorf("%d batches for %d events: nothing was batched", batches, workers*each)
	}
	t.Logf("%d events in %d transactions", workers*each, batches)
}

// TestAcceptBatcherLightLoad: a lone event is written at once, not after
// maxWait.
func TestAcceptBatcherLightLoad(t *testing.T) {
	f := &fakeEvents{}
	b := NewAcceptBatcher(f, 256, time.Hour)
	defer b.Close()
	start := time.Now()
	if _, err := b.Accept(t.Context(), &store.Event{RepoID: 1}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("a lone event waited %v", d)
	}
}

// TestAcceptBatcherError: a failed batch fails every caller in it.
func TestAcceptBatcherError(t *testing.T) {
	release := make(chan struct{})
	f := &fakeEvents{block: release, err: errs.E("test", errs.Unavailable, "disk on fire")}
	b := NewAcceptBatcher(f, 100, time.Second)
	defer b.Close()
	const n = 20
	errc := make(chan error, n+1)
	go func() { // the first call takes the loop and blocks in Accept
		_, err := b.Accept(context.Background(), &store.Event{RepoID: 1})
		errc <- err
	}()
	for f.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	for range n {
		go func() {
			_, err := b.Accept(context.Background(), &store.Event{RepoID: 1})
			errc <- err
		}()
	}
	for len(b.reqs) < n { // all queued behind the blocked batch
		time.Sleep(time.Millisecond)
	}
	close(release)
	for range n + 1 {
		if err := <-errc; !errs.Is(err, errs.Unavailable) {
			t.Errorf("caller got %v, want the batch's error", err)
		}
	}
	if c := f.calls.Load(); c != 2 {
		t.Errorf("%d batches, want 2 (one blocked, then the %d queued together)", c, n)
	}
}

func TestAcceptBatcherClose(t *testing.T) {
	f := &fakeEvents{}
	b := NewAcceptBatcher(f, 8, time.Millisecond)
	if _, err := b.Accept(t.Context(), &store.Event{RepoID: 1}); err != nil {
		t.Fatal(err)
	}
	must(t, b.Close())
	must(t, b.Close())
	if _, err := b.Accept(t.Context(), &store.Event{RepoID: 1}); !errs.Is(err, errs.Unavailable) {
		t.Errorf("Accept after Close: %v, want Unavailable", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	blocked := make(chan struct{})
	b2 := NewAcceptBatcher(&fakeEvents{block: blocked}, 8, time.Millisecond)
	if _, err := b2.Accept(ctx, &store.Event{RepoID: 1}); !errs.Is(err, errs.Canceled) {
		t.Errorf("Accept with a cancelled context: %v", err)
	}
	close(blocked)
	must(t, b2.Close())
}

// fakeEvents answers Accept with ids (or err), after block is closed.
type fakeEvents struct {
	store.Events
	block chan struct{}
	err   error
	calls atomic.Int64
	next  atomic.Int64
}

func (f *fakeEvents) Accept(ctx context.Context, evs []*store.Event) ([]store.Accepted, error) {
	f.calls.Add(1)
	if f.block != nil {
		<-f.block
	}
	if f.err != nil {
		return nil, f.err
	}
	out := make([]store.Accepted, len(evs))
	for i := range out {
		out[i].ID = f.next.Add(1)
	}
	return out, nil
}

type countingEvents struct {
	store.Events
	calls atomic.Int64
}

func (c *countingEvents) Accept(ctx context.Context, evs []*store.Event) ([]store.Accepted, error) {
	c.calls.Add(1)
	return c.Events.Accept(ctx, evs)
}

// gatedEvents blocks Accept until release is closed.
type gatedEvents struct {
	store.Events
	release chan struct{}
}

func (g *gatedEvents) Accept(ctx context.Context, evs []*store.Event) ([]store.Accepted, error) {
	<-g.release
	return g.Events.Accept(ctx, evs)
}

// Waiting counts the Accept calls whose batch is not written yet (other
// writers yield to them), and is 0 again once they are answered.
func TestAcceptBatcherWaiting(t *testing.T) {
	s, repo, _ := repoSQLite(t)
	ctx := t.Context()
	g := &gatedEvents{Events: s, release: make(chan struct{})}
	b := NewAcceptBatcher(g, 64, time.Millisecond)
	defer b.Close()
	if n := b.Waiting(); n != 0 {
		t.Fatalf("idle batcher: %d waiting", n)
	}
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			if _, err := b.Accept(ctx, &store.Event{RepoID: repo.ID, DeliveryID: fmt.Sprint("w-", i), Body: []byte{byte(i)}}); err != nil {
				t.Error(err)
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.Waiting() != 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := b.Waiting(); n != 3 {
		t.Fatalf("%d waiting, want 3", n)
	}
	close(g.release)
	wg.Wait()
	if n := b.Waiting(); n != 0 {
		t.Errorf("%d waiting after every Accept returned", n)
	}
}

// An event on its way (Arriving) holds the batch until it is handed to
// Accept or given up; then it is written at once, even with a long
// maxWait.
func TestAcceptBatcherArriving(t *testing.T) {
	f := &fakeEvents{}
	b := NewAcceptBatcher(f, 64, time.Hour)
	defer b.Close()
	ctx := t.Context()
	answered := func(ev *store.Event) chan error {
		c := make(chan error, 1)
		go func() {
			_, err := b.Accept(ctx, ev)
			c <- err
		}()
		return c
	}
	arrival := b.Arriving()
	first := answered(&store.Event{RepoID: 1})
	deadline := time.Now().Add(10 * time.Second)
	for (len(b.reqs) > 0 || b.Waiting() == 0) && f.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // until the loop has taken it
	}
	time.Sleep(20 * time.Millisecond)
	if n := f.calls.Load(); n != 0 {
		t.Fatalf("the batch was written (%d) while an event was on its way", n)
	}
	_, err := arrival.Accept(ctx, &store.Event{RepoID: 1})
	must(t, err)
	must(t, <-first)
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d batches, want the waiting and the arrived event in one", n)
	}

	// An arrival given up (a rejected request) releases the batch; leaving
	// twice counts once.
	arrival = b.Arriving()
	third := answered(&store.Event{RepoID: 1})
	time.Sleep(5 * time.Millisecond)
	arrival.Leave()
	arrival.Leave()
	must(t, <-third)
	if n := b.Arrivals(); n != 0 {
		t.Errorf("%d arriving after every arrival left", n)
	}
	// Under load (the last batch held several events) a lone event waits
	// a moment for company, not maxWait.
	must(t, <-answered(&store.Event{RepoID: 1}))
}

// The writer never checkpoints in a commit; the checkpointer copies the
// WAL into the database file beside it.
func TestCheckpointer(t *testing.T) {
	s, repo, path := repoSQLite(t)
	ctx := t.Context()
	body := make([]byte, 4<<10)
	const batches, each = 10, 50
	for i := range batches {
		evs := make([]*store.Event, each)
		for j := range evs {
			body[0], body[1] = byte(i), byte(j)
			evs[j] = &store.Event{RepoID: repo.ID, DeliveryID: fmt.Sprint(i, "-", j), Body: bytes.Clone(body)}
		}
		_, err := s.Accept(ctx, evs)
		must(t, err)
	}
	want := int64(batches * each * len(body))
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := os.Stat(path)
		must(t, err)
		if st.Size() >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file is %d bytes after the writes, want at least %d: the WAL was not checkpointed", st.Size(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// acceptMore on SQLite takes the events more returns into the same
// transaction, de-duplicated against the earlier ones (delivery id and
// body); on PostgreSQL it never calls more (each transaction locks its
// keys once, in order).
func TestAcceptMore(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		s, err := Open(t.Context(), dsn, Options{})
		must(t, err)
		defer s.Close()
		org, err := s.EnsureOrg(t.Context(), "default")
		must(t, err)
		repo := &store.Repo{OrgID: org.ID, Name: "acme/app"}
		must(t, s.CreateRepo(t.Context(), repo))
		ev := func(d, body string) *store.Event {
			h := sha256.Sum256([]byte(body))
			return &store.Event{RepoID: repo.ID, Source: "webhook", Name: "push", DeliveryID: d, BodyHash: h[:], Body: []byte(body)}
		}
		chunks := [][]*store.Event{
			{ev("d-3", "c"), ev("d-1", "x"), ev("d-4", "b")}, // d-1 again; b's body again
			{ev("d-5", "e")},
		}
		calls := 0
		more := func() ([]*store.Event, []string) {
			calls++
			if calls > len(chunks) {
				return nil, nil
			}
			return chunks[calls-1], nil // headers encoded by the writer
		}
		as, err := s.acceptMore(t.Context(), []*store.Event{ev("d-1", "a"), ev("d-2", "b")}, []string{"{}", "{}"}, more)
		must(t, err)
		if !s.acceptsMore() {
			if calls != 0 || len(as) != 2 || as[0].Duplicate || as[1].Duplicate {
				t.Fatalf("PostgreSQL: more called %d times, outcomes %+v; want 0 calls and 2 stored", calls, as)
			}
			return
		}
		if calls != 3 || len(as) != 6 {
			t.Fatalf("more called %d times, %d outcomes; want 3 and 6", calls, len(as))
		}
		for i, want := range []bool{false, false, false, true, true, false} {
			if as[i].Duplicate != want {
				t.Errorf("event %d: duplicate %v, want %v (%+v)", i, as[i].Duplicate, want, as)
			}
		}
		if as[3].ID != as[0].ID || as[4].ID != as[1].ID {
			t.Errorf("duplicates answered %d and %d, want the first copies %d and %d", as[3].ID, as[4].ID, as[0].ID, as[1].ID)
		}
		var n int
		must(t, s.w.QueryRowContext(t.Context(), `SELECT count(*) FROM events`).Scan(&n))
		if n != 4 {
			t.Errorf("%d events stored, want 4", n)
		}
	})
}

// On SQLite a batch's transaction takes the events that come while it
// is open: with an event on its way (Arriving), the first one is inserted
// at once and the second joins its transaction; both are answered once
// it commits.
func TestAcceptBatcherMore(t *testing.T) {
	s, repo, _ := repoSQLite(t)
	ctx := t.Context()
	b := NewAcceptBatcher(s, 64, 10*time.Second)
	defer b.Close()
	if b.more == nil {
		t.Fatal("SQLite's batcher does not insert while a batch gathers")
	}
	arrival := b.Arriving()
	first := make(chan error, 1)
	go func() {
		_, err := b.Accept(ctx, &store.Event{RepoID: repo.ID, DeliveryID: "m-1", Body: []byte("1")})
		first <- err
	}()
	// The first event is inserted (its transaction open) while the second
	// is on its way: it is not stored yet for the readers.
	deadline := time.Now().Add(10 * time.Second)
	for len(b.reqs) > 0 || b.Waiting() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the batcher never took the first event")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	select {
	case err := <-first:
		t.Fatalf("the first event was answered (%v) while an event was on its way", err)
	default:
	}
	hdr := map[string]string{"X-Github-Event": "push", "X-Hub-Signature-256": "sha256=00"}
	second, err := arrival.Accept(ctx, &store.Event{RepoID: repo.ID, DeliveryID: "m-2", Body: []byte("2"), Headers: hdr})
	must(t, err)
	must(t, <-first)
	if n := b.batches.Load(); n != 1 {
		t.Errorf("%d batches, want both events in one", n)
	}
	// The headers, encoded by the caller, are stored as the writer would
	// have: without the signature.
	var stored string
	must(t, s.w.QueryRowContext(ctx, `SELECT headers FROM event_payloads WHERE event_id = $1`, second.ID).Scan(&stored))
	if want := `{"X-Github-Event":"push"}`; stored != want {
		t.Errorf("stored headers %s, want %s", stored, want)
	}
}
