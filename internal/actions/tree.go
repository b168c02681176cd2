package actions

import (
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// Supported runs.using values.
var supportedUsing = []string{"node12", "node16", "node20", "node24", "composite", "docker"}

// LoadAction reads and checks the action.yml (or action.yaml) of the
// action at sub (a slash path, "" for the root) of a tree. name is the
// action as the workflow wrote it, for messages.
func LoadAction(dir, sub, name string) (*workflow.Action, error) {
	if sub == "" {
		sub = "."
	}
	f, err := ReadActionFile(dir, sub)
	if errs.Is(err, errs.NotFound) {
		where := "the repository's root"
		if sub != "." {
			where = sub + "/"
		}
		return nil, errs.E("action", errs.NotFound, "%s: can't find 'action.yml' or 'action.yaml' in %s; check the path between owner/repo and @", name, where)
	}
	if err != nil {
		return nil, errs.Wrap("action "+name, errs.KindOf(err), err)
	}
	a, probs := workflow.ParseAction(f.Data, name+"/"+f.Name)
	if len(probs) > 0 {
		return nil, errs.Wrap("action "+name, errs.Invalid, probs)
	}
	if err := CheckRuns(a, name); err != nil {
		return nil, err
	}
	return a, nil
}

// CheckRuns says what keeps an action from running: an unknown
// runs.using, or a node action without main, a composite one without
// steps, a docker one without image.
func CheckRuns(a *workflow.Action, name string) error {
	using := strings.ToLower(a.Runs.Using)
	known := false
	for _, u := range supportedUsing {
		known = known || u == using
	}
	switch {
	case !known:
		return errs.E("action", errs.Invalid, "%s: runs.using %q is not supported (Conveyor runs %s); use a version of the action made for one of them",
			name, a.Runs.Using, strings.Join(supportedUsing, ", "))
	case strings.HasPrefix(using, "node") && a.Runs.Main == "":
		return errs.E("action", errs.Invalid, "%s: runs.main is missing for a %s action", name, using)
	case using == "docker" && a.Runs.Image == "":
		return errs.E("action", errs.Invalid, "%s: runs.image is missing for a docker action", name)
	}
	return nil
}

// LoadWorkflow reads and parses a reusable workflow of a fetched tree.
func LoadWorkflow(dir string, r Ref) (*workflow.Workflow, error) {
	b, err := ReadFile(dir, r.Path, MaxFileSize)
	if err != nil {
		return nil, errs.Wrap("uses "+r.String(), errs.KindOf(err), err)
	}
	wf, probs := workflow.Parse(b, r.Repository()+"/"+r.Path)
	if len(probs) > 0 {
		return nil, errs.Wrap("uses "+r.String(), errs.Invalid, probs)
	}
	return wf, nil
}
