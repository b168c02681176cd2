package server

import (
	"container/list"
	"crypto/sha256"
	"sync"

	"github.com/conveyor-ci/conveyor/internal/lint"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// workflowCache holds parsed and linted workflow files by path and
// content, least recently used out first: a storm of pushes to commits
// that share a workflow file parses and lints it once, not once per event.
// What it returns is shared: planning only reads it. The nil cache parses
// every time. Safe for concurrent use.
type workflowCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *linted, most recent first
	byKey map[wfKey]*list.Element
}

// wfKey is a file's path and the SHA-256 of its content (the path is in
// the file:line:col of its problems).
type wfKey struct {
	name string
	sum  [sha256.Size]byte
}

type linted struct {
	key   wfKey
	wf    *workflow.Workflow
	probs workflow.Problems
}

// maxCachedWorkflow is the largest file the cache keeps: a bigger one is
// rare and would hold much memory.
const maxCachedWorkflow = 256 << 10

func newWorkflowCache(n int) *workflowCache {
	return &workflowCache{max: max(n, 1), order: list.New(), byKey: map[wfKey]*list.Element{}}
}

// lint is lint.Bytes(data, name), from the cache when the same file was
// linted before.
func (c *workflowCache) lint(data []byte, name string) (*workflow.Workflow, workflow.Problems) {
	if c == nil || len(data) > maxCachedWorkflow {
		return lint.Bytes(data, name)
	}
	k := wfKey{name: name, sum: sha256.Sum256(data)}
	c.mu.Lock()
	if el, ok := c.byKey[k]; ok {
		c.order.MoveToFront(el)
		e := el.Value.(*linted)
		c.mu.Unlock()
		return e.wf, e.probs
	}
	c.mu.Unlock()
	// Parse outside the lock: two callers may parse the same file at once,
	// which costs time but is correct.
	wf, probs := lint.Bytes(data, name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[k]; !ok {
		c.byKey[k] = c.order.PushFront(&linted{key: k, wf: wf, probs: probs})
		for c.order.Len() > c.max {
			old := c.order.Remove(c.order.Back()).(*linted)
			delete(c.byKey, old.key)
		}
	}
	return wf, probs
}

// len is the number of files held.
func (c *workflowCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
