package lint

import (
	"strings"

	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// calls is the state of one walk through the tree of reusable workflows a
// file calls: like GitHub, the memory budget and the job count are shared by
// the whole tree.
type calls struct {
	limits workflow.Limits
	bytes  int
	jobs   int
	named  map[string]bool    // file names already charged
	parsed map[string]*called // by uses, parsed once
	stop   bool               // a limit of the whole tree was hit
	errAt  func(file string, pos workflow.Pos, format string, args ...any)
}

type called struct {
	w     *workflow.Workflow
	probs workflow.Problems
	bytes int // what its tree costs each time it is called
}

// reusable checks calls of reusable workflows, when Options.Resolve can
// provide them, and the workflows those call in turn: their workflow_call
// declaration (inputs, secrets), the permissions they ask for against those
// their caller allows, how deep they nest, and the limits of the tree.
func (l *linter) reusable() {
	if l.opts.Resolve == nil || l.w.Node == nil {
		return
	}
	c := &calls{
		limits: l.opts.Limits.WithDefaults(),
		bytes:  workflow.ResultBytes(l.w.File, l.w.Node),
		jobs:   len(l.w.Jobs),
		named:  map[string]bool{l.w.File: true},
		parsed: map[string]*called{},
		errAt: func(file string, pos workflow.Pos, format string, args ...any) {
			l.probs = append(l.probs, &workflow.Problem{File: file, Pos: pos, Message: sprintf(format, args...)})
		},
	}
	for _, j := range l.w.Jobs {
		if j.Uses == "" {
			continue
		}
		max := j.Permissions
		if max == nil {
			max = l.w.Permissions
		}
		l.call(c, l.w.File, j, max, 1)
		if c.stop {
			return
		}
	}
}

// call checks job j of file, which calls a reusable workflow at the given
// depth (1 for a job of the file being linted). max is the most the called
// workflow may ask for: the permissions written for j or inherited from its
// callers; nil leaves it to the policy.
func (l *linter) call(c *calls, file string, j *workflow.Job, max *workflow.Permissions, depth int) {
	if depth > c.limits.MaxNestedCalls {
		c.errAt(file, j.UsesPos, "Nested reusable workflow depth exceeded %d.", c.limits.MaxNestedCalls)
		c.stop = true
		return
	}
	cw := l.load(c, j.Uses)
	if cw == nil {
		return
	}
	if c.charge(j.Uses, cw) {
		c.errAt(file, j.UsesPos, "Error from called workflow %s: Maximum object size exceeded", j.Uses)
		c.stop = true
		return
	}
	if len(cw.probs) > 0 {
		c.errAt(file, j.UsesPos, "Error from called workflow %s: %s", j.Uses, cw.probs[0].Message)
		return
	}
	w := cw.w
	t := w.Trigger("workflow_call")
	if t == nil {
		c.errAt(file, j.UsesPos, "The workflow '%s' is not callable: it has no workflow_call trigger", j.Uses)
		return
	}
	checkCall(c, file, j, t)
	l.checkPermissions(c, file, j, w, max)

	c.jobs += len(w.Jobs)
	if m := c.limits.MaxJobs; m > 0 && c.jobs > m {
		c.errAt(file, j.UsesPos, "%s", workflow.TooManyJobs(m))
		c.stop = true
		return
	}

	// A nested call may have what its job writes, else what the called
	// workflow writes, else what this call had.
	inherit := max
	if w.Permissions != nil {
		inherit = w.Permissions
	}
	for _, cj := range w.Jobs {
		if cj.Uses == "" {
			continue
		}
		next := cj.Permissions
		if next == nil {
			next = inherit
		}
		l.call(c, j.Uses, cj, next, depth+1)
		if c.stop {
			return
		}
	}
}

// load returns the workflow uses names, resolved and parsed once per walk;
// nil when Options.Resolve cannot provide it.
func (l *linter) load(c *calls, uses string) *called {
	if cw := c.parsed[uses]; cw != nil {
		return cw
	}
	data, ok := l.opts.Resolve(uses)
	if !ok {
		return nil
	}
	w, probs := workflow.ParseLimits(data, uses, c.limits)
	cw := &called{w: w, probs: probs}
	if w.Node != nil {
		cw.bytes = workflow.TreeBytes(w.Node)
	}
	c.parsed[uses] = cw
	return cw
}

// charge adds a call of cw to the tree's memory budget and says whether
// that exceeds MaxResultSize: each call loads the file again and is
// charged again; its name once.
func (c *calls) charge(uses string, cw *called) bool {
	if !c.named[uses] {
		c.named[uses] = true
		c.bytes += workflow.NameBytes(uses)
	}
	c.bytes += cw.bytes
	return c.bytes > c.limits.MaxResultSize
}

// checkPermissions checks the permissions the called workflow w and each
// of its jobs ask for against max (nil: the policy's), at the calling job j.
func (l *linter) checkPermissions(c *calls, file string, j *workflow.Job, w *workflow.Workflow, max *workflow.Permissions) {
	allowed := policyGrant(l.opts.PermissionsPolicy)
	if max != nil {
		allowed = grantOf(max)
	}
	if w.Permissions != nil {
		if asked, only := exceeds(grantOf(w.Permissions), allowed); asked != nil {
			c.errAt(file, j.Pos, "Error calling workflow '%s'. The workflow '%s' is requesting '%s', but is only allowed '%s'.", j.Uses, j.Uses, strings.Join(asked, ", "), strings.Join(only, ", "))
		}
	}
	for _, cj := range w.Jobs {
		if cj.Permissions == nil {
			continue
		}
		if asked, only := exceeds(grantOf(cj.Permissions), allowed); asked != nil {
			c.errAt(file, j.Pos, "Error calling workflow '%s'. The nested job '%s' is requesting '%s', but is only allowed '%s'.", j.Uses, jobName(cj), strings.Join(asked, ", "), strings.Join(only, ", "))
		}
	}
}

// checkCall checks the with: and secrets: of job j against the
// workflow_call trigger t of the workflow it calls.
func checkCall(c *calls, file string, j *workflow.Job, t *workflow.Trigger) {
	with := map[string]bool{}
	for _, kv := range j.With {
		with[kv.Key] = true
		found := false
		for _, in := range t.Inputs {
			if in.Name == kv.Key {
				found = true
			}
		}
		if !found {
			c.errAt(file, kv.Pos, "Invalid input, %s is not defined in the referenced workflow.", kv.Key)
		}
	}
	for _, in := range t.Inputs {
		if in.Required && !in.HasDefault && !with[in.Name] {
			c.errAt(file, j.UsesPos, "Input %s is required, but not provided while calling.", in.Name)
		}
	}
	if j.SecretsInherit {
		return
	}
	given := map[string]bool{}
	for _, kv := range j.Secrets {
		given[kv.Key] = true
	}
	for _, s := range t.Secrets {
		if s.Required && !given[s.Name] {
			c.errAt(file, j.UsesPos, "Secret %s is required, but not provided while calling.", s.Name)
		}
	}
}

// jobName is how GitHub names a job in messages: its name when written
// plainly, else its id.
func jobName(j *workflow.Job) string {
	if j.Name != "" && !strings.Contains(j.Name, "${{") {
		return j.Name
	}
	return j.ID
}
