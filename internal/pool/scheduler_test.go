package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// errBox is an error the test sets while others read it.
type errBox struct {
	mu  sync.Mutex
	err error
}

func (b *errBox) Store(err error) { b.mu.Lock(); b.err = err; b.mu.Unlock() }
func (b *errBox) Load() error     { b.mu.Lock(); defer b.mu.Unlock(); return b.err }

// stub is a backend whose Setup fails with err (nil: succeeds).
type stub struct{ err errBox }

func (b *stub) Name() string { return "stub" }

func (b *stub) Setup(context.Context, *backend.JobSpec, io.Writer) (backend.Sandbox, error) {
	return nil, b.err.Load()
}

// probed is a probe whose answer the test sets.
type probed struct{ err errBox }

func (p *probed) probe(context.Context) error { return p.err.Load() }
func (p *probed) set(err error)               { p.err.Store(err) }

// testPools makes pools from "name:capacity[:burst][:label,label]" and
// probes them once; every probe passes until set.
func testPools(t *testing.T, defs ...string) (*Scheduler, map[string]*probed, map[string]*stub) {
	t.Helper()
	var pools []*Pool
	probes, stubs := map[string]*probed{}, map[string]*stub{}
	for _, d := range defs {
		parts := strings.Split(d, ":")
		var capacity int
		fmt.Sscan(parts[1], &capacity)
		sp := Spec{Name: parts[0], Kind: Docker, Capacity: capacity, ProbeInterval: time.Hour}
		for _, p := range parts[2:] {
			if p == "burst" {
				sp.Burst = true
			} else {
				sp.Labels = strings.Split(p, ",")
			}
		}
		pr, st := &probed{}, &stub{}
		probes[sp.Name], stubs[sp.Name] = pr, st
		pools = append(pools, &Pool{Spec: sp, Backends: Backends{Main: st}, Probe: pr.probe})
	}
	s, err := New(pools, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Pick(nil); got != nil {
		t.Fatalf("picked %s before any probe", got.Pool().Spec.Name)
	}
	s.probeAll(context.Background())
	return s, probes, stubs
}

func (s *Scheduler) probeAll(ctx context.Context) {
	for _, p := range s.pools {
		_ = s.probe(ctx, p)
	}
}

func picks(t *testing.T, s *Scheduler, n int, labels ...string) ([]string, []*Slot) {
	t.Helper()
	var names []string
	var slots []*Slot
	for range n {
		sl := s.Pick(labels)
		if sl == nil {
			names = append(names, "-")
			continue
		}
		slots = append(slots, sl)
		names = append(names, sl.Pool().Spec.Name)
	}
	return names, slots
}

func TestPickSpreadsByLoad(t *testing.T) {
	s, _, _ := testPools(t, "a:2", "b:4")
	got, slots := picks(t, s, 7)
	// load a 0/2 b 0/4: a; a 1/2 b 0/4: b; 1/2 vs 1/4: b; 1/2 vs 2/4: a (tie, config order); ...
	if want := "a b b a b b -"; strings.Join(got, " ") != want {
		t.Errorf("picks %v, want %s", got, want)
	}
	slots[0].Done()
	slots[0].Done() // twice: frees once
	if got, _ := picks(t, s, 2); strings.Join(got, " ") != "a -" {
		t.Errorf("after one done: %v", got)
	}
}

func TestPickLabelsAndBurst(t *testing.T) {
	s, _, _ := testPools(t, "gpu:1:gpu,linux", "reg:2", "spot:5:burst")
	got, _ := picks(t, s, 2, "GPU")
	if strings.Join(got, " ") != "gpu reg" {
		t.Errorf("gpu jobs went to %v", got)
	}
	// reg has 1 left, then only the burst pool has room.
	got, _ = picks(t, s, 3, "ubuntu-latest")
	if strings.Join(got, " ") != "reg spot spot" {
		t.Errorf("picks %v, want reg then the burst pool", got)
	}
	if sets := s.LeaseLabels([]string{"self-hosted", "ubuntu-latest"}); len(sets) != 1 || strings.Join(sets[0], ",") != "self-hosted,ubuntu-latest" {
		t.Errorf("lease labels %v, want the burst pool's (any: the local labels)", sets)
	}
	// An expression label is only known at run time: it constrains nothing.
	if sl := s.Pick([]string{"${{ matrix.os }}"}); sl == nil || sl.Pool().Spec.Name != "spot" {
		t.Errorf("expression label: %v", sl)
	}
}

func TestLeaseLabelsOrder(t *testing.T) {
	s, _, _ := testPools(t, "spot:5:burst", "a:1:x", "b:2")
	sets := s.LeaseLabels([]string{"l"})
	if fmt.Sprint(sets) != "[[x] [l]]" {
		t.Errorf("lease labels %v, want a's, then b's (local) which the burst pool shares", sets)
	}
}

func TestProbeDrainsAndRestores(t *testing.T) {
	s, probes, _ := testPools(t, "a:1", "b:1")
	changed := s.Changed()
	probes["a"].set(errs.E("probe", errs.Unauthorized, "token revoked"))
	s.probeAll(context.Background())
	select {
	case <-changed:
	default:
		t.Error("a health change did not wake Changed")
	}
	if got, _ := picks(t, s, 2); strings.Join(got, " ") != "b -" {
		t.Errorf("with a failing: %v", got)
	}
	st := s.Stats()
	if st[0].Healthy || !strings.Contains(st[0].Reason, "token revoked") || !st[1].Healthy || st[1].Running != 1 {
		t.Errorf("stats %+v", st)
	}
	probes["a"].set(nil)
	s.probeAll(context.Background())
	if got, _ := picks(t, s, 1); got[0] != "a" {
		t.Errorf("a is back: %v", got)
	}
}

func TestSetupFaults(t *testing.T) {
	ctx := context.Background()
	job := &backend.JobSpec{ID: "j"}
	s, probes, stubs := testPools(t, "a:2", "b:2")
	now := time.Now()
	s.now = func() time.Time { return now }

	// The job's own fault (the probe passes): completed as usual, the
	// pool stays.
	stubs["a"].err.Store(errs.E("setup", errs.Unavailable, "service db unhealthy"))
	sl := s.Pick(nil)
	if _, err := sl.Backends().Main.Setup(ctx, job, io.Discard); err == nil || sl.HandBack() != "" {
		t.Errorf("job's fault: err %v, hand back %q", err, sl.HandBack())
	}
	sl.Done()
	if !s.Stats()[0].Healthy {
		t.Error("a job's fault drained the pool")
	}

	// The pool's fault, confirmed by its probe: handed back, drained.
	probes["a"].set(errs.E("probe", errs.Forbidden, "cannot create pods"))
	stubs["a"].err.Store(errs.E("setup", errs.Forbidden, "pods is forbidden"))
	sl = s.Pick(nil)
	if _, err := sl.Backends().Main.Setup(ctx, job, io.Discard); err == nil || !strings.Contains(sl.HandBack(), "backend pool a is failing") {
		t.Errorf("pool's fault: err %v, hand back %q", err, sl.HandBack())
	}
	sl.Done()
	if got, _ := picks(t, s, 1); got[0] != "b" {
		t.Errorf("after a's fault: %v", got)
	}

	// A pod Pending past its deadline: the pool's fault though its API
	// answers; drained for a back-off even when the probe passes.
	probes["b"].set(nil)
	stubs["b"].err.Store(errs.Wrap("setup", errs.Unavailable, fmt.Errorf("%w: pod Pending for 3m", backend.ErrNoRoom)))
	sl = s.Pick(nil)
	_, _ = sl.Backends().Main.Setup(ctx, job, io.Discard)
	if sl.HandBack() == "" {
		t.Error("pending past the deadline: not handed back")
	}
	sl.Done()
	s.probeAll(ctx)
	if st := s.Stats()[1]; st.Healthy {
		t.Errorf("b healthy within its back-off: %+v", st)
	}
	now = now.Add(2 * time.Hour)
	s.probeAll(ctx)
	if st := s.Stats()[1]; !st.Healthy {
		t.Errorf("b not back after its back-off: %+v", st)
	}
}

func TestHandBackOnlyBeforeSteps(t *testing.T) {
	s, probes, stubs := testPools(t, "a:1")
	sl := s.Pick(nil)
	b := sl.Backends().Main
	if _, err := b.Setup(context.Background(), &backend.JobSpec{}, nil); err != nil {
		t.Fatal(err)
	}
	probes["a"].set(errors.New("down"))
	stubs["a"].err.Store(errs.E("setup", errs.Unavailable, "connection refused"))
	if _, err := b.Setup(context.Background(), &backend.JobSpec{}, nil); err == nil {
		t.Fatal("no error")
	}
	if r := sl.HandBack(); r != "" {
		t.Errorf("a matrix instance ran steps already, yet hand back %q", r)
	}
	if s.Stats()[0].Healthy {
		t.Error("pool still healthy")
	}
}

func TestRunProbes(t *testing.T) {
	s, probes, _ := testPools(t, "a:1")
	for _, p := range s.pools {
		p.Spec.ProbeInterval = 10 * time.Millisecond
	}
	probes["a"].set(errors.New("down"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	deadline := time.After(10 * time.Second)
	for s.Stats()[0].Healthy {
		select {
		case <-s.Changed():
		case <-deadline:
			t.Fatal("the probe loop did not drain the pool")
		}
	}
	cancel()
	<-done
}

// BenchmarkPick: the scheduler's cost per job (pick and free) among ten
// pools, two of them burst, some with labels.
func BenchmarkPick(b *testing.B) {
	var pools []*Pool
	for i := range 10 {
		sp := Spec{Name: fmt.Sprintf("p%d", i), Kind: Docker, Capacity: 50, ProbeInterval: time.Hour, Burst: i >= 8}
		if i%3 == 0 {
			sp.Labels = []string{"ubuntu-latest", "linux"}
		}
		pools = append(pools, &Pool{Spec: sp, Backends: Backends{Main: &stub{}}})
	}
	s, err := New(pools, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range s.pools {
		_ = s.probe(context.Background(), p)
	}
	labels := []string{"ubuntu-latest"}
	b.ReportAllocs()
	for b.Loop() {
		sl := s.Pick(labels)
		if sl == nil {
			b.Fatal("no room")
		}
		sl.Done()
	}
}
