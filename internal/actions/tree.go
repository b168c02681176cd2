package actions

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// MetadataLimit is the most bytes read of one action.yml or workflow file
// of a fetched tree.
const MetadataLimit = 1 << 20

// ReadTreeFile reads rel (a slash path) in the tree dir: a regular file of
// at most MetadataLimit bytes, reached without leaving dir (no .., no
// symbolic link out of it).
func ReadTreeFile(dir, rel string) ([]byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, errs.Wrap("read", errs.NotFound, err)
	}
	defer root.Close()
	rel = path.Clean(rel)
	// Stat before open: opening a FIFO would block.
	if st, err := root.Stat(rel); err == nil && !st.Mode().IsRegular() {
		return nil, errs.E("read", errs.Invalid, "%s is not a regular file", rel)
	}
	f, err := root.Open(rel)
	if err != nil {
		kind := errs.Invalid
		if errors.Is(err, fs.ErrNotExist) {
			kind = errs.NotFound
		}
		return nil, errs.Wrap("read", kind, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, errs.Wrap("read", errs.Unavailable, err)
	}
	if !st.Mode().IsRegular() {
		return nil, errs.E("read", errs.Invalid, "%s is not a regular file", rel)
	}
	if st.Size() > MetadataLimit {
		return nil, errs.E("read", errs.TooLarge, "%s is %d bytes, over the limit of %d", rel, st.Size(), MetadataLimit)
	}
	b, err := io.ReadAll(io.LimitReader(f, MetadataLimit+1))
	if err != nil {
		return nil, errs.Wrap("read", errs.Unavailable, err)
	}
	if len(b) > MetadataLimit {
		return nil, errs.E("read", errs.TooLarge, "%s is over the limit of %d bytes", rel, MetadataLimit)
	}
	return b, nil
}

// Supported runs.using values.
var supportedUsing = []string{"node12", "node16", "node20", "node24", "composite", "docker"}

// LoadAction reads and checks the action.yml (or action.yaml) of the
// action at sub (a slash path, "" for the root) of a tree. name is the
// action as the workflow wrote it, for messages.
func LoadAction(dir, sub, name string) (*workflow.Action, error) {
	var b []byte
	var file string
	for _, n := range []string{"action.yml", "action.yaml"} {
		f := path.Join(sub, n)
		data, err := ReadTreeFile(dir, f)
		if err == nil {
			b, file = data, f
			break
		}
		if !errs.Is(err, errs.NotFound) {
			return nil, errs.Wrap("action "+name, errs.KindOf(err), err)
		}
	}
	if file == "" {
		where := "the repository's root"
		if sub != "" {
			where = sub + "/"
		}
		return nil, errs.E("action", errs.NotFound, "%s: can't find 'action.yml' or 'action.yaml' in %s; check the path between owner/repo and @", name, where)
	}
	a, probs := workflow.ParseAction(b, name+"/"+path.Base(file))
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
	b, err := ReadTreeFile(dir, r.Path)
	if err != nil {
		return nil, errs.Wrap("uses "+r.String(), errs.KindOf(err), err)
	}
	wf, probs := workflow.Parse(b, r.Repository()+"/"+r.Path)
	if len(probs) > 0 {
		return nil, errs.Wrap("uses "+r.String(), errs.Invalid, probs)
	}
	return wf, nil
}
