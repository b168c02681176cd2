package exec

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/expr"
	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// cleanupTimeout bounds the steps that run after a cancel (if: always())
// and the teardown of a sandbox.
const cleanupTimeout = 2 * time.Minute

// runJobNode runs every matrix instance of one job id and records the
// aggregated result and outputs on n.
func (e *Executor) runJobNode(ctx context.Context, workDir string, pw *plan.Workflow, n *jobNode, nodes map[string]*jobNode, call *callInfo) {
	job := n.pj.Source
	needs, allOK, anyFailed := needsOf(n.pj.Needs, nodes)
	cancelled := ctx.Err() != nil
	base := e.baseContexts(pw.Source, call)
	base.needs = needs
	c := newContext(base.values())
	c.Status = expr.Status{Failed: anyFailed, Cancelled: cancelled}
	display := call.prefixed(n.pj.Name)

	run, err := evalIf(job.If, c, allOK && !cancelled)
	if err != nil {
		e.finishNode(n, display, Failure, nil, err, time.Now())
		return
	}
	if !run {
		n.result = Skipped
		e.report(Event2{Type: JobFinished, Job: display, JobKey: display, Result: Skipped})
		e.addResult(&JobResult{Workflow: pw.File, JobID: job.ID, Name: display, Result: Skipped, Started: time.Now()})
		return
	}
	if job.Uses != "" {
		e.runReusable(ctx, workDir, pw, n, c, call)
		return
	}
	combos, ok := e.matrixLegs(n, display, c)
	if !ok {
		return
	}
	in := jobInput{pw: pw, call: call, needs: needs, workDir: workDir}
	results, outputs := e.runLegs(ctx, job, in, combos, jobStrategy(job, c))
	n.outputs = outputs
	n.result = aggregate(results)
}

// needsOf is the needs context of a job from the nodes it needs, and
// whether all of them succeeded and whether any failed or was cancelled.
func needsOf(ids []string, nodes map[string]*jobNode) (needs map[string]needContext, allOK, anyFailed bool) {
	needs = map[string]needContext{}
	allOK = true
	for _, id := range ids {
		d := nodes[id]
		if d == nil {
			continue
		}
		outs := map[string]any{}
		for k, v := range d.outputs {
			outs[k] = v
		}
		needs[id] = needContext{result: d.result, outputs: outs}
		if d.result != Success {
			allOK = false
		}
		if d.result == Failure || d.result == Cancelled {
			anyFailed = true
		}
	}
	return needs, allOK, anyFailed
}

// matrixLegs expands the job's matrix and applies --matrix. When no leg
// remains to run it records the node (failed or skipped) and returns false.
// A job without a matrix has one leg with no values.
func (e *Executor) matrixLegs(n *jobNode, display string, c *expr.Context) ([]plan.Combo, bool) {
	job := n.pj.Source
	if !hasMatrix(job) {
		return []plan.Combo{{}}, true
	}
	cs, err := plan.ExpandMatrix(job.Strategy.Matrix, func(s string) (any, error) { return interpValue(s, c) })
	if err != nil {
		e.finishNode(n, display, Failure, nil, err, time.Now())
		return nil, false
	}
	if len(cs) == 0 {
		e.finishNode(n, display, Failure, nil, errs.E("matrix", errs.Invalid, "job %s: the matrix has no combinations", job.ID), time.Now())
		return nil, false
	}
	combos := FilterMatrix(cs, e.opts.MatrixFilter)
	if len(combos) == 0 {
		e.skipNode(n, display, fmt.Sprintf("no matrix leg matches --matrix %s", matrixFilterText(e.opts.MatrixFilter)))
		return nil, false
	}
	return combos, true
}

func hasMatrix(job *workflow.Job) bool { return job.Strategy != nil && job.Strategy.Matrix != nil }

// jobStrategy is the job's fail-fast and max-parallel (index and total are
// set per leg).
func jobStrategy(job *workflow.Job, c *expr.Context) strategyContext {
	st := strategyContext{failFast: true}
	if job.Strategy == nil {
		return st
	}
	if job.Strategy.FailFast != "" {
		st.failFast = boolValue(job.Strategy.FailFast, c)
	}
	if job.Strategy.MaxParallel != "" {
		if s, err := interp(job.Strategy.MaxParallel, c); err == nil {
			st.maxParallel, _ = strconv.Atoi(strings.TrimSpace(s))
		}
	}
	return st
}

// runLegs runs one job instance per matrix combination, at most
// max-parallel at a time and within the executor's parallelism, and
// cancels the others when one fails under fail-fast. It returns each leg's
// result and the legs' outputs merged (a later leg's value wins).
func (e *Executor) runLegs(ctx context.Context, job *workflow.Job, in jobInput, combos []plan.Combo, st strategyContext) ([]string, map[string]any) {
	groupCtx, cancelGroup := context.WithCancel(ctx)
	defer cancelGroup()
	var limit chan struct{}
	if st.maxParallel > 0 {
		limit = make(chan struct{}, st.maxParallel)
	}
	var mu sync.Mutex
	results := make([]string, len(combos))
	outputs := map[string]any{}
	var wg sync.WaitGroup
	for i, combo := range combos {
		wg.Add(1)
		go func(i int, combo plan.Combo) {
			defer wg.Done()
			defer acquireSlots(groupCtx, limit, e.sem)()
			leg := st
			leg.index, leg.total = i, len(combos)
			jin := in
			jin.leg = matrixLeg{combo: combo, hasMatrix: hasMatrix(job), strategy: leg}
			jr := &jobRun{e: e, job: job, in: jin}
			res := jr.runSafe(groupCtx, ctx)
			mu.Lock()
			results[i] = res.Result
			for k, v := range res.Outputs {
				outputs[k] = v
			}
			mu.Unlock()
			if res.Result == Failure && st.failFast && !jr.status.continueOnError {
				cancelGroup()
			}
		}(i, combo)
	}
	wg.Wait()
	return results, outputs
}

// acquireSlots takes a slot of each non-nil semaphore in order, giving up
// on one when ctx ends (the job then starts and sees its context
// cancelled), and returns the function that gives back what it took.
func acquireSlots(ctx context.Context, sems ...chan struct{}) (release func()) {
	var held []chan struct{}
	for _, s := range sems {
		if s == nil {
			continue
		}
		select {
		case s <- struct{}{}:
			held = append(held, s)
		case <-ctx.Done():
		}
	}
	return func() {
		for i := len(held) - 1; i >= 0; i-- {
			<-held[i]
		}
	}
}

// aggregate is a job's result from its instances' results.
func aggregate(rs []string) string {
	out := Skipped
	for _, r := range rs {
		switch r {
		case Failure:
			return Failure
		case Cancelled:
			out = Cancelled
		case Success:
			if out == Skipped {
				out = Success
			}
		}
	}
	return out
}

func (e *Executor) finishNode(n *jobNode, display, result string, outputs map[string]any, err error, start time.Time) {
	n.result = result
	n.outputs = outputs
	r := &JobResult{Workflow: n.pj.Source.ID, JobID: n.pj.ID, Name: display, Result: result, Started: start, Duration: time.Since(start)}
	if err != nil {
		r.Error = err.Error()
		e.report(Event2{Type: Notice, Job: display, JobKey: display, Text: "Error: " + e.opts.Masker.Apply(err.Error())})
	}
	e.report(Event2{Type: JobFinished, Job: display, JobKey: display, Result: result, Duration: r.Duration})
	e.addResult(r)
}

// skipNode records a job skipped before it started, with the reason.
func (e *Executor) skipNode(n *jobNode, display, reason string) {
	n.result = Skipped
	e.report(Event2{Type: Notice, Job: display, JobKey: display, Text: "skipped: " + reason})
	e.report(Event2{Type: JobFinished, Job: display, JobKey: display, Result: Skipped})
	e.addResult(&JobResult{Workflow: n.pj.Source.ID, JobID: n.pj.ID, Name: display, Result: Skipped, Started: time.Now(), Error: reason})
}

// FilterMatrix keeps the matrix legs that match filter on the names they
// have.
func FilterMatrix(cs []plan.Combo, filter map[string]string) []plan.Combo {
	if len(filter) == 0 {
		return cs
	}
	var out []plan.Combo
	for _, c := range cs {
		ok := true
		for k, want := range filter {
			if v, has := c.Values[k]; has && expr.ToString(v) != want {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, c)
		}
	}
	return out
}

func matrixFilterText(filter map[string]string) string {
	parts := make([]string, 0, len(filter))
	for k, v := range filter {
		parts = append(parts, k+":"+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func (c *callInfo) prefixed(name string) string {
	if c == nil {
		return name
	}
	return c.prefix + name
}

func typedInput(typ, s string) any {
	switch typ {
	case "boolean":
		return strings.EqualFold(strings.TrimSpace(s), "true")
	case "number":
		if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
			return f
		}
	}
	return s
}

func apiURL(server string) string {
	if server == "https://github.com" {
		return "https://api.github.com"
	}
	return strings.TrimSuffix(server, "/") + "/api/v3"
}
