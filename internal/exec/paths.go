package exec

import (
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// checkoutDir resolves actions/checkout's path: input as actions/checkout
// does: relative to the workspace, or absolute (GOPATH layouts write
// ${{ github.workspace }}/src/...), and in both cases under the workspace.
// sandboxWS is the workspace as steps see it, hostWS as Conveyor does; the
// result is the host folder.
func checkoutDir(hostWS, sandboxWS, p string) (string, error) {
	if p == "" {
		return hostWS, nil
	}
	ws := path.Clean(filepath.ToSlash(sandboxWS))
	abs := filepath.ToSlash(p)
	if !path.IsAbs(abs) {
		abs = path.Join(ws, abs)
	}
	abs = path.Clean(abs)
	if abs != ws && !strings.HasPrefix(abs, ws+"/") {
		return "", errs.E("checkout", errs.Invalid, "Repository path '%s' is not under '%s'", abs, ws)
	}
	return filepath.Join(hostWS, filepath.FromSlash(strings.TrimPrefix(abs, ws))), nil
}

// checkWorkdir says plainly that a step's working directory is missing,
// where the process would fail with "fork/exec /usr/bin/bash: no such file
// or directory". dir is the sandbox's view; only a folder Conveyor can see
// is checked (the job folder, or any path when the sandbox is the host).
func (jr *jobRun) checkWorkdir(wd, dir string) error {
	host, ok := jr.toHost(dir)
	if !ok {
		return nil
	}
	st, err := os.Stat(host)
	switch {
	case err != nil:
		return errs.E("working-directory", errs.NotFound, "working-directory %q does not exist (%s): create it in an earlier step or fix the path", wd, dir)
	case !st.IsDir():
		return errs.E("working-directory", errs.Invalid, "working-directory %q is not a directory (%s)", wd, dir)
	}
	return nil
}

// toHost maps a sandbox path to the host's view, when the host can see it.
func (jr *jobRun) toHost(p string) (string, bool) {
	sb := strings.TrimSuffix(jr.box.dirs.Sandbox, "/")
	if sb == "" {
		return "", false
	}
	if filepath.Clean(jr.box.dirs.Host) == filepath.Clean(sb) {
		return p, true // the host backend: the sandbox is the host
	}
	rel, ok := strings.CutPrefix(path.Clean(p), sb+"/")
	if !ok {
		return "", false
	}
	return filepath.Join(jr.box.dirs.Host, filepath.FromSlash(rel)), true
}
