package lint

import (
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// reusable checks calls of reusable workflows against their workflow_call
// declaration, when Options.Resolve can provide it.
func (l *linter) reusable() {
	if l.opts.Resolve == nil {
		return
	}
	for _, j := range l.w.Jobs {
		if j.Uses == "" {
			continue
		}
		data, ok := l.opts.Resolve(j.Uses)
		if !ok {
			continue
		}
		called, probs := workflow.Parse(data, j.Uses)
		if len(probs) > 0 {
			l.errPos(j.UsesPos, "Error from called workflow %s: %s", j.Uses, probs[0].Message)
			continue
		}
		t := called.Trigger("workflow_call")
		if t == nil {
			l.errPos(j.UsesPos, "The workflow '%s' is not callable: it has no workflow_call trigger", j.Uses)
			continue
		}
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
				l.errPos(kv.Pos, "Invalid input, %s is not defined in the referenced workflow.", kv.Key)
			}
		}
		for _, in := range t.Inputs {
			if in.Required && !in.HasDefault && !with[in.Name] {
				l.errPos(j.UsesPos, "Input %s is required, but not provided while calling.", in.Name)
			}
		}
		if j.SecretsInherit {
			continue
		}
		given := map[string]bool{}
		for _, kv := range j.Secrets {
			given[kv.Key] = true
		}
		for _, s := range t.Secrets {
			if s.Required && !given[s.Name] {
				l.errPos(j.UsesPos, "Secret %s is required, but not provided while calling.", s.Name)
			}
		}
	}
}
