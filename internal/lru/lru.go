// Package lru holds a bounded map of computed values, least recently used
// out first, safe for concurrent use.
package lru

import (
	"container/list"
	"sync"
)

// Cache keeps at most max values by key. The zero Cache is not usable:
// use New.
type Cache[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *entry[K, V], most recent first
	byKey map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key K
	val V
}

// New returns a cache of at most n values (at least 1).
func New[K comparable, V any](n int) *Cache[K, V] {
	return &Cache[K, V]{max: max(n, 1), order: list.New(), byKey: map[K]*list.Element{}}
}

// Get returns the value of key, computing it with make on a miss. make
// runs outside the lock: two callers may compute the same value at once,
// which costs time but is correct (the first one stored is kept).
func (c *Cache[K, V]) Get(key K, make func() V) V {
	c.mu.Lock()
	if el, ok := c.byKey[key]; ok {
		c.order.MoveToFront(el)
		v := el.Value.(*entry[K, V]).val
		c.mu.Unlock()
		return v
	}
	c.mu.Unlock()
	v := make()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[key]; !ok {
		c.byKey[key] = c.order.PushFront(&entry[K, V]{key: key, val: v})
		for c.order.Len() > c.max {
			old := c.order.Remove(c.order.Back()).(*entry[K, V])
			delete(c.byKey, old.key)
		}
	}
	return v
}

// Len is the number of values held.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
