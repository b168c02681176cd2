package exec

import (
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// stepFileVars are the files every step gets, by variable, with the stem of
// their file name under the job's files/ folder.
var stepFileVars = [...]struct{ name, stem string }{
	{"GITHUB_OUTPUT", "output"},
	{"GITHUB_ENV", "env"},
	{"GITHUB_PATH", "path"},
	{"GITHUB_STATE", "state"},
	{"GITHUB_STEP_SUMMARY", "summary"},
}

// Files of a finished step are recycled for the next one: once read and
// emptied they are renamed to the next step's names (each step still gets
// fresh, empty files of its own names) instead of being created anew.
// Creating a file costs an inode, which on ext4 without a journal means a
// scan past every recently freed inode: most of a step's CPU time on a
// machine where job folders come and go (see docs/benchmarks.md).
type spareFiles struct {
	step       map[string]string // variable -> host path of an empty file
	script     string            // host path of the last script file
	scriptPerm os.FileMode       // its permissions when it was created
}

// stepFiles makes fresh GITHUB_OUTPUT/ENV/PATH/STATE/STEP_SUMMARY files for
// a step and returns their host paths by variable name.
func (jr *jobRun) stepFiles(n int) (map[string]string, error) {
	out := make(map[string]string, len(stepFileVars))
	dir := filepath.Join(jr.box.dir, "files")
	suffix := "_" + strconv.Itoa(n)
	for _, f := range stepFileVars {
		p := filepath.Join(dir, f.stem+suffix)
		out[f.name] = p
		if old := jr.steps.spare.step[f.name]; old != "" {
			delete(jr.steps.spare.step, f.name)
			if os.Rename(old, p) == nil {
				continue
			}
		}
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			return nil, errs.Wrap("step files", errs.Unavailable, err)
		}
		os.Chmod(p, 0o666)
	}
	return out, nil
}

// takeStepFile returns what the step wrote to its file of variable name (nil
// when nothing or when the file is gone) and, when the file is still the
// regular, world-writable file it was given, empties it and keeps it for
// the next step. A file the step replaced (a symlink, another owner's file)
// is only read.
func (jr *jobRun) takeStepFile(p, name string) []byte {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil
	}
	if !fi.Mode().IsRegular() {
		b, _ := os.ReadFile(p)
		return b
	}
	var b []byte
	if fi.Size() > 0 {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			b, _ = os.ReadFile(p)
			return b
		}
		b, err = io.ReadAll(f)
		terr := f.Truncate(0)
		f.Close()
		if err != nil || terr != nil {
			return b
		}
	}
	if fi.Mode().Perm() == 0o666 {
		if jr.steps.spare.step == nil {
			jr.steps.spare.step = make(map[string]string, len(stepFileVars))
		}
		jr.steps.spare.step[name] = p
	}
	return b
}

// writeScript writes a step's script file at host path p. It renames the
// previous step's script file to p, when that is still a plain file with
// the permissions it was made with, and writes over it in place: no new
// inode, and no data block freed and allocated again as with O_TRUNC.
func (jr *jobRun) writeScript(p string, script []byte) error {
	if old := jr.steps.spare.script; old != "" {
		jr.steps.spare.script = ""
		if fi, err := os.Lstat(old); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == jr.steps.spare.scriptPerm && os.Rename(old, p) == nil {
			if overwrite(p, script, fi.Size()) == nil {
				jr.steps.spare.script = p
				return nil
			}
			os.Remove(p)
		}
	}
	if err := os.WriteFile(p, script, 0o755); err != nil {
		return errs.Wrap("run", errs.Unavailable, err)
	}
	if fi, err := os.Lstat(p); err == nil {
		jr.steps.spare.script, jr.steps.spare.scriptPerm = p, fi.Mode().Perm()
	}
	return nil
}

// overwrite makes the file at p (size bytes long) hold b.
func overwrite(p string, b []byte, size int64) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, 0)
	if err == nil && size > int64(len(b)) {
		err = f.Truncate(int64(len(b)))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
