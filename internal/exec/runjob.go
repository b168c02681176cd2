package exec

import (
	"context"
	"os"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/expr"
	"github.com/conveyor-ci/conveyor/internal/plan"
)

// Need is the outcome of a job that another job needs, when that job ran
// elsewhere (the server runs each job of a run as its own queue entry).
type Need struct {
	Result  string            `json:"result"`
	Outputs map[string]string `json:"outputs,omitempty"`
}

// JobOutcome is the aggregated outcome of one workflow job: the result and
// outputs its dependents see, and the result of every matrix instance.
type JobOutcome struct {
	Result    string            `json:"result"`
	Outputs   map[string]string `json:"outputs,omitempty"`
	Instances []*JobResult      `json:"instances"`
	Summaries []Summary         `json:"summaries,omitempty"`
	// Build is the life of the job's sandboxes (SandboxTime) during this
	// call; it includes other calls' sandboxes running on the same
	// Executor meanwhile.
	Build time.Duration `json:"build,omitempty"`
}

// RunJob runs one job of pw (every matrix instance, or the called workflow
// of a reusable-workflow job) given the outcomes of its needs, with the
// same rules as Run: if: with status functions over needs, fail-fast,
// cleanup steps after a cancel, teardown always. A need missing from needs
// counts as skipped.
func (e *Executor) RunJob(ctx context.Context, pw *plan.Workflow, jobID string, needs map[string]Need) (*JobOutcome, error) {
	if e.opts.Backend == nil {
		return nil, errs.E("exec", errs.Invalid, "no backend")
	}
	var target *plan.Job
	for _, pj := range pw.Jobs {
		if pj.ID == jobID {
			target = pj
		}
	}
	if target == nil {
		return nil, errs.E("exec", errs.NotFound, "no job %q in %s", jobID, pw.File)
	}
	workDir := e.opts.WorkDir
	if workDir == "" {
		d, err := os.MkdirTemp("", "conveyor-job-")
		if err != nil {
			return nil, errs.Wrap("exec", errs.Unavailable, err)
		}
		workDir = d
		if !e.opts.KeepJobDirs {
			defer os.RemoveAll(d)
		}
	}
	nodes := map[string]*jobNode{}
	for _, id := range target.Needs {
		n := &jobNode{result: Skipped, outputs: map[string]any{}, done: make(chan struct{})}
		close(n.done)
		if nd, ok := needs[id]; ok {
			n.result = nd.Result
			for k, v := range nd.Outputs {
				n.outputs[k] = v
			}
		}
		nodes[id] = n
	}
	e.mu.Lock()
	first, firstSummary, sandboxBefore := len(e.result.Jobs), len(e.result.Summaries), e.sandboxTime
	e.mu.Unlock()
	node := &jobNode{pj: target, done: make(chan struct{})}
	nodes[target.ID] = node
	e.runJobNode(ctx, workDir, pw, node, nodes, nil)
	e.teardowns.Wait() // the caller's slot is free only once its sandbox is gone
	close(node.done)

	out := &JobOutcome{Result: node.result, Outputs: map[string]string{}}
	for k, v := range node.outputs {
		out.Outputs[k] = expr.ToString(v)
	}
	e.mu.Lock()
	out.Instances = append(out.Instances, e.result.Jobs[first:]...)
	out.Summaries = append(out.Summaries, e.result.Summaries[firstSummary:]...)
	out.Build = e.sandboxTime - sandboxBefore
	e.mu.Unlock()
	return out, nil
}
