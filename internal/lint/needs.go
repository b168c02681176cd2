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
	unknown := false
	for _, j := range l.w.Jobs {
		for i, n := range j.Needs {
			if ids[strings.ToLower(n)] == nil {
				unknown = true
				l.errPos(j.NeedsPos[i], "Job '%s' depends on unknown job '%s'.", j.ID, n)
			}
		}
	}
	// Depth-first search; an edge into a job on the stack closes a cycle.
	const (
		white = iota
		grey
		black
	)
	color := map[*workflow.Job]int{}
	var stack []*workflow.Job
	reported := map[string]bool{}
	var visit func(j *workflow.Job)
	visit = func(j *workflow.Job) {
		color[j] = grey
		stack = append(stack, j)
		for _, n := range j.Needs {
			d := ids[strings.ToLower(n)]
			if d == nil {
				continue
			}
			switch color[d] {
			case white:
				visit(d)
			case grey:
				start := 0
				for i, s := range stack {
					if s == d {
						start = i
					}
				}
				cyc := append([]*workflow.Job{}, stack[start:]...)
				var names []string
				for _, c := range cyc {
					names = append(names, c.ID)
				}
				names = append(names, d.ID)
				path := strings.Join(names, " -> ")
				for i, c := range cyc {
					next := cyc[(i+1)%len(cyc)]
					for k, n := range c.Needs {
						if strings.EqualFold(n, next.ID) {
							key := c.ID + "\x00" + next.ID
							if !reported[key] {
								reported[key] = true
								l.errPos(c.NeedsPos[k], "Job '%s' depends on job '%s' which creates a cycle in the dependency graph (%s).", c.ID, next.ID, path)
							}
						}
					}
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[j] = black
	}
	for _, j := range l.w.Jobs {
		if color[j] == white {
			visit(j)
		}
	}
	if len(l.w.Jobs) > 0 && len(reported) == 0 && !unknown {
		roots := 0
		for _, j := range l.w.Jobs {
			if len(j.Needs) == 0 {
				roots++
			}
		}
		if roots == 0 {
			l.errPos(l.w.Jobs[0].Pos, "The workflow must contain at least one job with no dependencies.")
		}
	}
}
