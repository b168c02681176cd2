package lint

import (
	"fmt"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/workflow"
)

var sprintf = fmt.Sprintf

// needs checks that every needs: names a job and that they form no cycle.
func (l *linter) needs() {
	ids := map[string]*workflow.Job{}
	for _, j := range l.w.Jobs {
		ids[strings.ToLower(j.ID)] = j
	}
	unknown := l.unknownNeeds(ids)
	cycles := &cycleFinder{l: l, ids: ids, color: map[*workflow.Job]int{}, reported: map[string]bool{}}
	for _, j := range l.w.Jobs {
		if cycles.color[j] == white {
			cycles.visit(j)
		}
	}
	if len(l.w.Jobs) > 0 && len(cycles.reported) == 0 && !unknown {
		l.needRoot()
	}
}

// unknownNeeds reports each needs: that names no job (ids maps lowered
// IDs to jobs); it says whether there was one.
func (l *linter) unknownNeeds(ids map[string]*workflow.Job) bool {
	unknown := false
	for _, j := range l.w.Jobs {
		for i, n := range j.Needs {
			if ids[strings.ToLower(n)] == nil {
				unknown = true
				l.errPos(j.NeedsPos[i], "Job '%s' depends on unknown job '%s'.", j.ID, n)
			}
		}
	}
	return unknown
}

// needRoot reports a workflow whose every job needs another.
func (l *linter) needRoot() {
	for _, j := range l.w.Jobs {
		if len(j.Needs) == 0 {
			return
		}
	}
	l.errPos(l.w.Jobs[0].Pos, "The workflow must contain at least one job with no dependencies.")
}

// The colours of cycleFinder's depth-first search.
const (
	white = iota // not visited
	grey         // on the stack
	black        // done
)

// cycleFinder searches the needs: graph depth first; an edge into a job
// on the stack closes a cycle, reported at each edge of it, once.
type cycleFinder struct {
	l        *linter
	ids      map[string]*workflow.Job // by lowered ID
	color    map[*workflow.Job]int
	stack    []*workflow.Job
	reported map[string]bool // "from\x00to" edges reported
}

func (c *cycleFinder) visit(j *workflow.Job) {
	c.color[j] = grey
	c.stack = append(c.stack, j)
	for _, n := range j.Needs {
		d := c.ids[strings.ToLower(n)]
		if d == nil {
			continue
		}
		switch c.color[d] {
		case white:
			c.visit(d)
		case grey:
			c.report(d)
		}
	}
	c.stack = c.stack[:len(c.stack)-1]
	c.color[j] = black
}

// report reports the cycle from d, on the stack, to the stack's top and
// back to d.
func (c *cycleFinder) report(d *workflow.Job) {
	start := 0
	for i, s := range c.stack {
		if s == d {
			start = i
		}
	}
	cyc := append([]*workflow.Job{}, c.stack[start:]...)
	var names []string
	for _, j := range cyc {
		names = append(names, j.ID)
	}
	names = append(names, d.ID)
	path := strings.Join(names, " -> ")
	for i, j := range cyc {
		next := cyc[(i+1)%len(cyc)]
		for k, n := range j.Needs {
			if strings.EqualFold(n, next.ID) {
				key := j.ID + "\x00" + next.ID
				if !c.reported[key] {
					c.reported[key] = true
					c.l.errPos(j.NeedsPos[k], "Job '%s' depends on job '%s' which creates a cycle in the dependency graph (%s).", j.ID, next.ID, path)
				}
			}
		}
	}
}
