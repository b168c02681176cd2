package sqlstore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// AcceptBatcher group-commits events: many goroutines call Accept, one
// goroutine writes what has queued up in one transaction, so a burst of
// webhooks costs one fsync per batch instead of one per event.
type AcceptBatcher struct {
	events store.Events
	// more is events when its transactions can take events while they are
	// open (SQLite): a batch is then inserted while its last events come,
	// instead of after.
	more     moreAccepter
	maxBatch int
	maxWait  time.Duration
	reqs     chan acceptReq
	// stop ends the loop; mu guards closed so that no Accept sends on
	// reqs after Close.
	mu     sync.RWMutex
	closed bool
	done   chan struct{}
	cancel context.CancelFunc
	// waiting counts Accept calls not answered yet (see Waiting).
	waiting atomic.Int64
	// arriving counts callers on their way to Accept (see Arriving).
	arriving atomic.Int64
	// batches counts the batches written (tests and benchmarks).
	batches atomic.Int64
}

type acceptReq struct {
	ev      *store.Event
	headers string // storedHeaders(ev), made by the caller (more only)
	out     chan acceptResult
}

type acceptResult struct {
	a   store.Accepted
	err error
}

// NewAcceptBatcher starts a batcher writing through s. A batch holds up to
// maxBatch events; gathering one takes at most maxWait. A batch is written
// as soon as no more events are waiting, so a lone event is never delayed.
func NewAcceptBatcher(s store.Events, maxBatch int, maxWait time.Duration) *AcceptBatcher {
	if maxBatch <= 0 {
		maxBatch = 256
	}
	if maxWait <= 0 {
		maxWait = 5 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &AcceptBatcher{
		events:   s,
		maxBatch: maxBatch,
		maxWait:  maxWait,
		reqs:     make(chan acceptReq, 4*maxBatch),
		done:     make(chan struct{}),
		cancel:   cancel,
	}
	if m, ok := s.(moreAccepter); ok && m.acceptsMore() {
		b.more = m
	}
	go b.loop(ctx)
	return b
}

// moreAccepter is a store whose Accept transaction can take more events
// before it commits.
type moreAccepter interface {
	// acceptsMore says whether acceptMore takes more events; when not, the
	// batcher gathers a batch before it calls Accept.
	acceptsMore() bool
	// acceptMore is Accept of evs and then of each slice more returns,
	// until it returns none, in one transaction; the outcomes are in the
	// order of the events. hdrs (and more's) are the events' storedHeaders.
	acceptMore(ctx context.Context, evs []*store.Event, hdrs []string, more func() ([]*store.Event, []string)) ([]store.Accepted, error)
}

// Accept stores ev with the next batch and returns its outcome. If ctx ends
// first, Accept returns ctx's error but the event may still be stored.
func (b *AcceptBatcher) Accept(ctx context.Context, ev *store.Event) (store.Accepted, error) {
	return b.accept(ctx, ev, nil)
}

// accept is Accept, calling queued (if not nil) once ev is in the queue.
func (b *AcceptBatcher) accept(ctx context.Context, ev *store.Event, queued func()) (store.Accepted, error) {
	const op = "store.AcceptBatcher"
	if ev == nil {
		return store.Accepted{}, errs.E(op, errs.Invalid, "nil event")
	}
	r := acceptReq{ev: ev, out: make(chan acceptResult, 1)}
	if b.more != nil {
		r.headers = storedHeaders(ev) // here, on the caller's goroutine, not on the writer
	}
	b.waiting.Add(1)
	defer b.waiting.Add(-1)
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return store.Accepted{}, errs.E(op, errs.Unavailable, "batcher closed")
	}
	select {
	case b.reqs <- r:
		b.mu.RUnlock()
		if queued != nil {
			queued()
		}
	case <-ctx.Done():
		b.mu.RUnlock()
		return store.Accepted{}, errs.Wrap(op, errs.Canceled, ctx.Err())
	}
	select {
	case res := <-r.out:
		return res.a, res.err
	case <-ctx.Done():
		return store.Accepted{}, errs.Wrap(op, errs.Canceled, ctx.Err())
	}
}

// Arriving tells the batcher that an event is on its way (a webhook whose
// body is being read and verified): while some are, a batch waits for
// them, up to maxWait after its first event, instead of being written
// without them. The event is then given with the Arrival's Accept, or the
// Arrival is left (the request was refused).
func (b *AcceptBatcher) Arriving() *Arrival {
	b.arriving.Add(1)
	return &Arrival{b: b}
}

// Arrival is an event on its way to an AcceptBatcher.
type Arrival struct {
	b    *AcceptBatcher
	left atomic.Bool
}

// Accept is the batcher's Accept; the arrival ends once ev is queued, so a
// batch never misses it in between.
func (a *Arrival) Accept(ctx context.Context, ev *store.Event) (store.Accepted, error) {
	defer a.Leave() // if it was never queued
	return a.b.accept(ctx, ev, a.Leave)
}

// Leave ends the arrival without an event; calling it again does nothing.
func (a *Arrival) Leave() {
	if a.left.CompareAndSwap(false, true) {
		a.b.arriving.Add(-1)
	}
}

// Arrivals is how many Arrivals have neither been accepted nor left.
func (b *AcceptBatcher) Arrivals() int { return int(b.arriving.Load()) }

// Waiting is how many Accept calls wait for their batch to be written;
// other writers of the database can yield to them.
func (b *AcceptBatcher) Waiting() int { return int(b.waiting.Load()) }

// Close writes the events already queued, then stops the batcher.
func (b *AcceptBatcher) Close() error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.reqs)
	}
	b.mu.Unlock()
	<-b.done
	b.cancel()
	return nil
}

const (
	// arrivalPoll is how often a batch waiting for arriving events looks
	// whether they are still on their way.
	arrivalPoll = 200 * time.Microsecond
	// arrivalGap is how long a batch under load waits for one more event
	// after the last one came in.
	arrivalGap = 300 * time.Microsecond
)

func (b *AcceptBatcher) loop(ctx context.Context) {
	defer close(b.done)
	batch := make([]acceptReq, 0, b.maxBatch)
	last := 0 // the previous batch's size
	for first := range b.reqs {
		b.batches.Add(1)
		batch = append(batch[:0], first)
		// Under load (the previous batch was not one event), those it
		// answered come back within a moment: the batch waits for them.
		g := &gathering{deadline: time.Now().Add(b.maxWait), lastIn: time.Now(), loaded: last > 1}
		if b.more != nil {
			batch = b.commitMore(ctx, b.drain(batch, g), g)
		} else {
			batch = b.gather(batch, g)
			b.commit(ctx, batch)
		}
		last = len(batch)
	}
}

// gathering is the state of the batch being gathered.
type gathering struct {
	deadline time.Time // maxWait after its first event
	lastIn   time.Time // when its last event came
	loaded   bool      // the previous batch held more than one event
	closed   bool      // the queue is closed (Close)
}

// drain adds the events queued now, up to maxBatch, without waiting.
func (b *AcceptBatcher) drain(batch []acceptReq, g *gathering) []acceptReq {
	for len(batch) < b.maxBatch && !g.closed {
		select {
		case r, ok := <-b.reqs:
			if !ok {
				g.closed = true
				return batch
			}
			batch, g.lastIn = append(batch, r), time.Now()
		default:
			return batch
		}
	}
	return batch
}

// await adds what is queued, else waits for one more event while the
// batch should: events are on their way, or may be (under load, within
// arrivalGap of the last one), and maxWait has not passed. It reports
// whether the batch grew.
func (b *AcceptBatcher) await(batch []acceptReq, g *gathering) ([]acceptReq, bool) {
	for len(batch) < b.maxBatch && !g.closed {
		// An arrival leaves once its event is queued: look at the queue
		// before at the arrivals.
		if d := b.drain(batch, g); len(d) > len(batch) {
			return d, true
		}
		wait := time.Until(g.deadline)
		if wait <= 0 || (b.arriving.Load() <= 0 && (!g.loaded || time.Since(g.lastIn) >= arrivalGap)) {
			return batch, false
		}
		t := time.NewTimer(min(wait, arrivalPoll))
		select {
		case r, ok := <-b.reqs:
			t.Stop()
			if !ok {
				g.closed = true
				return batch, false
			}
			g.lastIn = time.Now()
			return append(batch, r), true
		case <-t.C:
		}
	}
	return batch, false
}

// gather completes a batch before it is written: what is queued, then
// what comes while await waits.
func (b *AcceptBatcher) gather(batch []acceptReq, g *gathering) []acceptReq {
	for more := true; more; {
		batch, more = b.await(batch, g)
	}
	return batch
}

// next is the events a batch whose transaction is open takes next: what
// is queued, else what await waits for; none when the batch is complete.
func (b *AcceptBatcher) next(batch []acceptReq, g *gathering) ([]acceptReq, []*store.Event, []string) {
	n := len(batch)
	if batch, _ = b.await(batch, g); len(batch) > n {
		batch = b.drain(batch, g) // what queued while await waited for one
	}
	return batch, events(batch[n:]), headers(batch[n:])
}

func headers(reqs []acceptReq) []string {
	hs := make([]string, len(reqs))
	for i, r := range reqs {
		hs[i] = r.headers
	}
	return hs
}

func events(reqs []acceptReq) []*store.Event {
	evs := make([]*store.Event, len(reqs))
	for i, r := range reqs {
		evs[i] = r.ev
	}
	return evs
}

// commitMore writes batch in one transaction that also takes the events
// coming while it inserts (next), and answers them all once it is
// committed; it returns the whole batch.
func (b *AcceptBatcher) commitMore(ctx context.Context, batch []acceptReq, g *gathering) []acceptReq {
	more := func() (evs []*store.Event, hdrs []string) {
		batch, evs, hdrs = b.next(batch, g)
		return evs, hdrs
	}
	// See commit for the context.
	as, err := b.more.acceptMore(context.WithoutCancel(ctx), events(batch), headers(batch), more)
	b.answer(batch, as, err)
	return batch
}

func (b *AcceptBatcher) commit(ctx context.Context, batch []acceptReq) {
	// ctx is only cancelled by Close once the loop is over, so a batch never
	// sees it end; without a Done channel the SQLite driver spares each
	// statement its interrupt watcher (a goroutine, a channel and a progress
	// handler set and cleared, per insert).
	as, err := b.events.Accept(context.WithoutCancel(ctx), events(batch))
	b.answer(batch, as, err)
}

// answer gives each caller of batch its outcome.
func (b *AcceptBatcher) answer(batch []acceptReq, as []store.Accepted, err error) {
	if err == nil && len(as) != len(batch) {
		err = errs.E("store.AcceptBatcher", errs.Other, "store answered %d of %d events", len(as), len(batch))
	}
	for i, r := range batch {
		if err != nil {
			r.out <- acceptResult{err: err}
		} else {
			r.out <- acceptResult{a: as[i]}
		}
	}
}
