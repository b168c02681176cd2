package lint

import (
	"strings"

	"github.com/conveyor-ci/conveyor/internal/actions"
)

// remoteUses checks remote uses: (owner/repo[/path]@ref) as the action
// resolver will read them, so that what it would refuse at run time is
// reported at file:line:col: a ".." in the path, a version git would take
// for an option, a step naming a workflow file or a job naming an action.
func (l *linter) remoteUses() {
	remote := func(uses string) bool {
		if uses == "" || actions.IsLocal(uses) || strings.HasPrefix(uses, "docker://") || strings.Contains(uses, "${{") {
			return false
		}
		// GitHub's parser takes any owner and repository name (its run
		// fails to fetch one that cannot exist); so does lint: the
		// resolver says so at run time, before the first step.
		name, _, _ := strings.Cut(uses, "@")
		parts := strings.SplitN(name, "/", 3)
		return len(parts) < 2 || actions.ValidName(parts[0]) && actions.ValidName(parts[1])
	}
	for _, j := range l.w.Jobs {
		if remote(j.Uses) {
			if r, err := actions.Parse(j.Uses); err != nil {
				l.errPos(j.UsesPos, "%s", usesMessage(err))
			} else if !r.IsWorkflow() {
				l.errPos(j.UsesPos, "%q: a job's uses: names a reusable workflow, owner/repo/.github/workflows/x.yml@ref", j.Uses)
			}
		}
		for _, s := range j.Steps {
			if !remote(s.Uses) {
				continue
			}
			if r, err := actions.Parse(s.Uses); err != nil {
				l.errPos(s.UsesPos, "%s", usesMessage(err))
			} else if r.IsWorkflow() {
				l.errPos(s.UsesPos, "%s is a reusable workflow: call it with jobs.<id>.uses, not a step's uses", s.Uses)
			}
		}
	}
}
