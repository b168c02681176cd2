// Package lint checks workflows beyond their syntax: job dependencies,
// expressions, matrices and the contexts each place may use. It is shared by
// the server and the CLI.
package lint

import (
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// Options tune a lint run.
type Options struct {
	// Resolve returns the content of a reusable workflow named by a job's
	// uses:, when it is available. Nil skips checks across workflows.
	Resolve func(uses string) ([]byte, bool)
	// Limits apply when BytesWith parses, and to the reusable workflows
	// Resolve provides.
	Limits workflow.Limits
	// PermissionsPolicy is what a workflow's token may do where no
	// permissions: says: PolicyWrite (the default) or PolicyLimitedRead.
	// Called reusable workflows may not ask for more.
	PermissionsPolicy string
}

// Workflow lints a parsed workflow; problems are sorted by position.
func Workflow(w *workflow.Workflow) workflow.Problems {
	return WorkflowWith(w, Options{})
}

// WorkflowWith is Workflow with options.
func WorkflowWith(w *workflow.Workflow, opts Options) workflow.Problems {
	l := &linter{w: w, opts: opts}
	l.run()
	workflow.SortProblems(l.probs)
	return l.probs
}

// Bytes parses and lints a workflow file.
func Bytes(data []byte, file string) (*workflow.Workflow, workflow.Problems) {
	return BytesWith(data, file, Options{})
}

// BytesWith is Bytes with options.
func BytesWith(data []byte, file string, opts Options) (*workflow.Workflow, workflow.Problems) {
	w, probs := workflow.ParseLimits(data, file, opts.Limits)
	if w.Node == nil {
		return w, probs
	}
	probs = append(probs, WorkflowWith(w, opts)...)
	workflow.SortProblems(probs)
	return w, dedupe(probs)
}

func dedupe(ps workflow.Problems) workflow.Problems {
	out := ps[:0]
	seen := map[string]bool{}
	for _, p := range ps {
		k := p.Error()
		if !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}

type linter struct {
	w     *workflow.Workflow
	opts  Options
	probs workflow.Problems
}

func (l *linter) errPos(pos workflow.Pos, format string, args ...any) {
	l.probs = append(l.probs, &workflow.Problem{File: l.w.File, Pos: pos, Message: sprintf(format, args...)})
}

func (l *linter) run() {
	l.needs()
	l.localUses()
	l.remoteUses()
	l.expressions()
	l.matrices()
	l.reusable()
	l.filters()
}

// ActionBytes parses an action.yml file and checks its expressions.
func ActionBytes(data []byte, file string) (*workflow.Action, workflow.Problems) {
	return workflow.ParseAction(data, file)
}
