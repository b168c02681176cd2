package server

import (
	"crypto/sha256"

	"github.com/conveyor-ci/conveyor/internal/lint"
	"github.com/conveyor-ci/conveyor/internal/lru"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// workflowCache holds parsed and linted workflow files by path and
// content, least recently used out first: a storm of pushes to commits
// that share a workflow file parses and lints it once, not once per event.
// What it returns is shared: planning only reads it. The nil cache parses
// every time. Safe for concurrent use.
type workflowCache struct {
	files *lru.Cache[wfKey, linted]
}

// wfKey is a file's path and the SHA-256 of its content (the path is in
// the file:line:col of its problems).
type wfKey struct {
	name string
	sum  [sha256.Size]byte
}

type linted struct {
	wf    *workflow.Workflow
	probs workflow.Problems
}

// maxCachedWorkflow is the largest file the cache keeps: a bigger one is
// rare and would hold much memory.
const maxCachedWorkflow = 256 << 10

func newWorkflowCache(n int) *workflowCache {
	return &workflowCache{files: lru.New[wfKey, linted](n)}
}

// lint is lint.Bytes(data, name), from the cache when the same file was
// linted before.
func (c *workflowCache) lint(data []byte, name string) (*workflow.Workflow, workflow.Problems) {
	if c == nil || len(data) > maxCachedWorkflow {
		return lint.Bytes(data, name)
	}
	e := c.files.Get(wfKey{name: name, sum: sha256.Sum256(data)}, func() linted {
		wf, probs := lint.Bytes(data, name)
		return linted{wf: wf, probs: probs}
	})
	return e.wf, e.probs
}

// len is the number of files held.
func (c *workflowCache) len() int { return c.files.Len() }
