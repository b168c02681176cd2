// Package plan compiles parsed workflows and an event into a plan: plain,
// serialisable data saying which workflows and jobs run, their dependencies,
// their expanded matrices where they are known before the run, and their
// steps. The executor runs a plan; `conveyor run --plan` prints it.
package plan

import (
	"sort"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// Plan is what one event runs.
type Plan struct {
	Event     string      `json:"event"`
	Workflows []*Workflow `json:"workflows"`
}

// Workflow is one workflow file's part of a plan.
type Workflow struct {
	File string `json:"file"`
	Name string `json:"name"`
	Jobs []*Job `json:"jobs"`
	// Source is the parsed file the executor reads the details from.
	Source *workflow.Workflow `json:"-"`
}

// Job is one job of a plan.
type Job struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Needs  []string `json:"needs,omitempty"`
	RunsOn []string `json:"runs-on,omitempty"`
	Image  string   `json:"container,omitempty"`
	// Matrix is the expanded matrix when it is known before the run;
	// MatrixDynamic says it is computed at run time (it uses expressions).
	Matrix        []Combo `json:"matrix,omitempty"`
	MatrixDynamic bool    `json:"matrix-dynamic,omitempty"`
	Uses          string  `json:"uses,omitempty"`
	Steps         []*Step `json:"steps,omitempty"`

	Source *workflow.Job `json:"-"`
}

// Step is one step of a planned job.
type Step struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
	Kind string `json:"kind"` // run, checkout, local-action, docker, remote-action
	Uses string `json:"uses,omitempty"`
}

// Select says which workflows and jobs a plan holds.
type Select struct {
	Event string
	// Jobs, when not empty, limits the plan to these job ids and the jobs
	// they need, transitively.
	Jobs []string
	// AnyEvent plans every workflow whatever its on: (for --plan listings
	// and for files named explicitly).
	AnyEvent bool
}

// Compile builds the plan for sel over the parsed workflows.
func Compile(wfs []*workflow.Workflow, sel Select) (*Plan, error) {
	p := &Plan{Event: sel.Event}
	for _, wf := range wfs {
		if !sel.AnyEvent && wf.Trigger(sel.Event) == nil {
			continue
		}
		pw := &Workflow{File: wf.File, Name: wf.Name, Source: wf}
		if pw.Name == "" {
			pw.Name = wf.File
		}
		keep, err := selectJobs(wf, sel.Jobs)
		if err != nil {
			return nil, err
		}
		for _, j := range wf.Jobs {
			if !keep[j.ID] {
				continue
			}
			pj, err := compileJob(j)
			if err != nil {
				return nil, errs.Wrap(wf.File, errs.Invalid, err)
			}
			pw.Jobs = append(pw.Jobs, pj)
		}
		if len(pw.Jobs) > 0 {
			p.Workflows = append(p.Workflows, pw)
		}
	}
	if len(sel.Jobs) > 0 && len(p.Workflows) == 0 {
		return nil, errs.E("plan", errs.NotFound, "no job %s in the workflows for event %q", strings.Join(sel.Jobs, ", "), sel.Event)
	}
	return p, nil
}

func selectJobs(wf *workflow.Workflow, want []string) (map[string]bool, error) {
	keep := map[string]bool{}
	if len(want) == 0 {
		for _, j := range wf.Jobs {
			keep[j.ID] = true
		}
		return keep, nil
	}
	var add func(id string)
	add = func(id string) {
		if keep[id] {
			return
		}
		j := wf.Job(id)
		if j == nil {
			return
		}
		keep[id] = true
		for _, n := range j.Needs {
			add(n)
		}
	}
	for _, id := range want {
		add(id)
	}
	return keep, nil
}

func compileJob(j *workflow.Job) (*Job, error) {
	pj := &Job{ID: j.ID, Name: j.Name, Needs: j.Needs, Uses: j.Uses, Source: j}
	if pj.Name == "" {
		pj.Name = j.ID
	}
	if j.RunsOn != nil {
		pj.RunsOn = append(pj.RunsOn, j.RunsOn.Labels...)
		if j.RunsOn.Group != "" {
			pj.RunsOn = append(pj.RunsOn, "group:"+j.RunsOn.Group)
		}
	}
	if j.Container != nil {
		pj.Image = j.Container.Image
	}
	if j.Strategy != nil && j.Strategy.Matrix != nil {
		if HasExpressions(j.Strategy.Matrix) {
			pj.MatrixDynamic = true
		} else {
			combos, err := ExpandMatrix(j.Strategy.Matrix, Literal)
			if err != nil {
				return nil, errs.Wrap("job "+j.ID, errs.Invalid, err)
			}
			pj.Matrix = combos
		}
	}
	for i, s := range j.Steps {
		if s.Control != "" || s.Background != "" && s.Background != "false" {
			// GitHub's newest schema has background steps; running them
			// needs concurrent steps in one job, which the executor lacks.
			what := "background: " + s.Background
			if s.Control != "" {
				what = s.Control + ":"
			}
			return nil, errs.E("job "+j.ID, errs.Invalid, "%d:%d: step %d uses %s: background steps (background, wait, wait-all, cancel, parallel) are not supported by Conveyor yet", s.Pos.Line, s.Pos.Col, i+1, what)
		}
		pj.Steps = append(pj.Steps, &Step{ID: s.ID, Name: StepName(s, i), Kind: StepKind(s.Uses), Uses: s.Uses})
	}
	return pj, nil
}

// StepKind classifies a step by its uses: value.
func StepKind(uses string) string {
	switch {
	case uses == "":
		return "run"
	case strings.HasPrefix(uses, "docker://"):
		return "docker"
	case strings.HasPrefix(uses, "./") || strings.HasPrefix(uses, "../"):
		return "local-action"
	case IsCheckout(uses):
		return "checkout"
	}
	return "remote-action"
}

// IsCheckout reports whether uses names actions/checkout (any ref).
func IsCheckout(uses string) bool {
	name, _, _ := strings.Cut(uses, "@")
	return strings.EqualFold(name, "actions/checkout")
}

// StepName is the display name of a step as GitHub shows it.
func StepName(s *workflow.Step, index int) string {
	switch {
	case s.Name != "":
		return s.Name
	case s.Uses != "":
		return s.Uses
	case s.Run != "":
		line, _, _ := strings.Cut(strings.TrimSpace(s.Run), "\n")
		return "Run " + line
	}
	return "step " + itoa(index+1)
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// Order returns the job ids of a workflow plan in an order where every job
// comes after its needs (ties by file order); an error names a cycle.
func (w *Workflow) Order() ([]string, error) {
	idx := map[string]int{}
	for i, j := range w.Jobs {
		idx[j.ID] = i
	}
	state := map[string]int{}
	var out []string
	var visit func(id string, path []string) error
	visit = func(id string, path []string) error {
		switch state[id] {
		case 1:
			for i, p := range path {
				if p == id {
					path = path[i:]
					break
				}
			}
			return errs.E("plan", errs.Invalid, "dependency cycle: %s -> %s", strings.Join(path, " -> "), id)
		case 2:
			return nil
		}
		state[id] = 1
		j := w.Jobs[idx[id]]
		needs := append([]string{}, j.Needs...)
		sort.SliceStable(needs, func(a, b int) bool { return idx[needs[a]] < idx[needs[b]] })
		for _, n := range needs {
			if _, ok := idx[n]; !ok {
				return errs.E("plan", errs.Invalid, "job %q needs unknown job %q", id, n)
			}
			if err := visit(n, append(path, id)); err != nil {
				return err
			}
		}
		state[id] = 2
		out = append(out, id)
		return nil
	}
	for _, j := range w.Jobs {
		if err := visit(j.ID, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}
