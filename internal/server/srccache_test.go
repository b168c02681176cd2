package server

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

func TestSrcCache(t *testing.T) {
	c := newSrcCache(t.TempDir(), time.Hour, 1)
	ctx := context.Background()
	var fills atomic.Int32
	gate := make(chan struct{})
	fill := func(_ context.Context, dir string) error {
		fills.Add(1)
		<-gate
		return os.WriteFile(filepath.Join(dir, "f"), []byte("tree"), 0o644)
	}
	// Jobs of one commit at once: one checkout, one shared tree.
	var wg sync.WaitGroup
	dirs := make([]string, 4)
	releases := make([]func(), 4)
	for i := range dirs {
		wg.Go(func() {
			d, rel, err := c.acquire(ctx, "1-aa", fill)
			if err != nil {
				t.Error(err)
				return
			}
			dirs[i], releases[i] = d, rel
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(gate)
	wg.Wait()
	if n := fills.Load(); n != 1 {
		t.Fatalf("%d checkouts for one commit, want 1", n)
	}
	for _, d := range dirs {
		if b, err := os.ReadFile(filepath.Join(d, "f")); d != dirs[0] || err != nil || string(b) != "tree" {
			t.Fatalf("tree %s: %q %v (first %s)", d, b, err, dirs[0])
		}
	}
	// Another commit is another tree; beyond max unused trees the oldest
	// unused goes, never one in use.
	d2, rel2, err := c.acquire(ctx, "1-bb", fill)
	if err != nil || d2 == dirs[0] {
		t.Fatalf("other commit: %s %v", d2, err)
	}
	rel2()
	for _, rel := range releases {
		rel()
	}
	c.sweep(time.Now())
	if _, err := os.Stat(d2); !os.IsNotExist(err) {
		t.Errorf("the oldest unused tree beyond max is still there: %v", err)
	}
	if _, err := os.Stat(dirs[0]); err != nil {
		t.Errorf("the newest unused tree was removed: %v", err)
	}
	// Reused while kept; removed once idle long enough.
	if d, rel, err := c.acquire(ctx, "1-aa", fill); err != nil || d != dirs[0] || fills.Load() != 2 {
		t.Fatalf("kept tree: %s %v, %d checkouts", d, err, fills.Load())
	} else {
		rel()
	}
	c.sweep(time.Now().Add(2 * time.Hour))
	if _, err := os.Stat(dirs[0]); !os.IsNotExist(err) {
		t.Errorf("an idle tree is still there: %v", err)
	}

	// A failed checkout is not kept; a waiter whose filler was cancelled
	// checks out itself.
	bad := func(context.Context, string) error { return errs.E("git", errs.NotFound, "no such commit") }
	if _, _, err := c.acquire(ctx, "1-cc", bad); !errs.Is(err, errs.NotFound) {
		t.Fatalf("failed checkout: %v", err)
	}
	if d, rel, err := c.acquire(ctx, "1-cc", fill); err != nil {
		t.Fatalf("after a failed checkout: %v", err)
	} else {
		rel()
		if _, err := os.Stat(filepath.Join(d, "f")); err != nil {
			t.Error(err)
		}
	}
	started := make(chan struct{})
	cctx, cancel := context.WithCancel(ctx)
	slow := func(ctx context.Context, _ string) error {
		close(started)
		<-ctx.Done()
		return errs.Wrap("git", errs.Canceled, ctx.Err())
	}
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.acquire(cctx, "1-dd", slow)
		errc <- err
	}()
	<-started
	got := make(chan error, 1)
	go func() {
		_, rel, err := c.acquire(ctx, "1-dd", fill)
		if err == nil {
			rel()
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-errc; !errs.Is(err, errs.Canceled) {
		t.Errorf("cancelled filler: %v", err)
	}
	if err := <-got; err != nil {
		t.Errorf("waiter of a cancelled filler: %v", err)
	}
}

// The jobs of a run share one checked-out tree of the commit; what a job
// does to its workspace does not reach the next job's checkout.
func TestJobsShareTheCommitsTree(t *testing.T) {
	flow := `on: push
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo changed > README.md && rm keep.txt
  b:
    needs: a
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: grep -qx hi README.md && test -f keep.txt && echo "b sees the commit"
`
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/ci.yml": flow, "README.md": "hi\n", "keep.txt": "k\n"}})
	if code, body := h.hook("push", h.push("main"), "d-1"); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	runs := h.waitRuns(1, 60*time.Second)
	if runs[0].Status != "success" {
		t.Fatalf("run: %s\n%s", describeRuns(runs), h.jobLog(runs[0].ID, "b"))
	}
	if l := h.jobLog(runs[0].ID, "b"); !strings.Contains(l, "b sees the commit") {
		t.Errorf("b's log:\n%s", l)
	}
	h.srv.src.trees.mu.Lock()
	n := len(h.srv.src.trees.m)
	h.srv.src.trees.mu.Unlock()
	if n != 1 {
		t.Errorf("%d trees kept for one commit, want 1", n)
	}
}
