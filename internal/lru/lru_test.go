package lru

import (
	"sync"
	"testing"
)

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	c := New[string, int](2)
	calls := 0
	get := func(k string, v int) int {
		return c.Get(k, func() int { calls++; return v })
	}
	get("a", 1)
	get("b", 2)
	if got := get("a", 9); got != 1 || calls != 2 {
		t.Fatalf("hit of a = %d after %d computations, want 1 after 2", got, calls)
	}
	get("c", 3) // b is the least recently used: out
	if n := c.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
	if got := get("b", 4); got != 4 || calls != 4 {
		t.Errorf("b after eviction = %d (%d computations), want recomputed 4 (4)", got, calls)
	}
	if got := get("a", 5); got != 5 {
		t.Errorf("a = %d: it should have gone when b came back, want recomputed 5", got)
	}
	if New[int, int](0).max != 1 {
		t.Error("New(0) holds no value")
	}
}

func TestConcurrentGets(t *testing.T) {
	c := New[int, int](8)
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := i % 16
			if got := c.Get(k, func() int { return k * k }); got != k*k {
				t.Errorf("Get(%d) = %d", k, got)
			}
		}()
	}
	wg.Wait()
	if n := c.Len(); n > 8 {
		t.Errorf("Len = %d over the bound 8", n)
	}
}
