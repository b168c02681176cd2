package lint

import (
	"errors"

	"github.com/conveyor-ci/conveyor/internal/actions"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// localUses refuses local uses: (./path) of jobs and steps that leave the
// repository: absolute paths and "..", before anything reads them.
func (l *linter) localUses() {
	check := func(uses string, pos workflow.Pos) {
		if !actions.IsLocal(uses) {
			return
		}
		if _, err := actions.LocalPath(uses); err != nil {
			l.errPos(pos, "%s", usesMessage(err))
		}
	}
	for _, j := range l.w.Jobs {
		if j.Uses != "" {
			check(j.Uses, j.UsesPos)
		}
		for _, s := range j.Steps {
			check(s.Uses, s.UsesPos)
		}
	}
}

// usesMessage is the error without its operation prefix.
func usesMessage(err error) string {
	var e *errs.Error
	if errors.As(err, &e) {
		return e.Err.Error()
	}
	return err.Error()
}
