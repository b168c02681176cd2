// Package stepwait runs a job's steps in other containers of the job's
// pod through wait files on a volume the containers share (Tekton's
// entrypoint, the seeds' "step controller + wait files").
//
// A step container, started with the pod, runs Wait: it waits for the
// file N.spec in its folder (N = 1, 2, ...: one container serves the
// steps of its image in turn), runs the spec's argv with its env and
// working directory, its output (stdout and stderr merged) appended to
// N.out, and writes N.exit (the exit code, or why the program could not
// start) when the step's processes have ended. N.cancel asks it to end
// the step: SIGTERM to the step's process group, SIGKILL after the grace
// period. The file "end" tells it to exit once idle (a container whose
// steps were skipped lets the pod end cleanly).
//
// The job container's side is Run (conveyor step-run, started by the
// step runner): it writes N.spec, follows N.out to its standard output as
// it grows, and exits with the step's code once N.exit is there; its
// cancel (SIGTERM from the step runner) writes N.cancel. No Kubernetes API
// call is made per step: files and polling at a few milliseconds only.
//
// Every file is written to a temporary name and renamed, so a reader
// never sees half of one.
package stepwait

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Poll is how often both sides look for the other's files.
const Poll = 3 * time.Millisecond

// heartbeat is how often Wait touches its "alive" file; Run gives up on a
// step container whose file is older than deadAfter (the container died:
// out of memory, deleted).
const (
	heartbeat = time.Second
	deadAfter = 15 * time.Second
)

// Exit codes of Run for what is not the step's own code (as `docker run`:
// 125 the engine failed, 127 the program could not be started).
const (
	CodeLost     = 125
	CodeNotStart = 127
)

// Spec is one step for a step container.
type Spec struct {
	// Argv is the program and its arguments (the image's ENTRYPOINT and
	// CMD already applied); a name without a slash is found in PATH (of
	// Env when it sets one, else the container's).
	Argv []string `json:"argv"`
	// Env is added to the container's environment (the image's).
	Env map[string]string `json:"env,omitempty"`
	// Dir is the working directory; "": the container's.
	Dir string `json:"dir,omitempty"`
}

// Result is a step's end, as N.exit holds it.
type Result struct {
	Code int `json:"code"`
	// Error says why the program could not start (Code is then
	// CodeNotStart).
	Error string `json:"error,omitempty"`
}

// Names of the files of step n in a step container's folder.
func specFile(dir string, n int) string   { return filepath.Join(dir, strconv.Itoa(n)+".spec") }
func outFile(dir string, n int) string    { return filepath.Join(dir, strconv.Itoa(n)+".out") }
func exitFile(dir string, n int) string   { return filepath.Join(dir, strconv.Itoa(n)+".exit") }
func cancelFile(dir string, n int) string { return filepath.Join(dir, strconv.Itoa(n)+".cancel") }
func endFile(dir string) string           { return filepath.Join(dir, "end") }
func aliveFile(dir string) string         { return filepath.Join(dir, "alive") }

// prepare makes dir, writable by every container's user (they may run as
// different users).
func prepare(dir string) error {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return errs.Wrap("stepwait: folder", errs.Unavailable, err)
	}
	if err := os.Chmod(dir, 0o777); err != nil && !os.IsPermission(err) {
		return errs.Wrap("stepwait: folder", errs.Unavailable, err)
	}
	return nil
}

// writeFile writes data to name atomically (a temporary file renamed),
// readable by every container's user.
func writeFile(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o666); err != nil {
		return errs.Wrap("stepwait: write "+filepath.Base(name), errs.Unavailable, err)
	}
	_ = os.Chmod(tmp, 0o666)
	if err := os.Rename(tmp, name); err != nil {
		return errs.Wrap("stepwait: write "+filepath.Base(name), errs.Unavailable, err)
	}
	return nil
}

func writeJSON(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return errs.Wrap("stepwait: encode", errs.Invalid, err)
	}
	return writeFile(name, b)
}

func readJSON(name string, v any) error {
	b, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errs.E("stepwait: read "+filepath.Base(name), errs.Invalid, "%v", err)
	}
	return nil
}

func exists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// End tells the step containers of dirs to exit once idle.
func End(dirs ...string) error {
	for _, d := range dirs {
		if err := prepare(d); err != nil {
			return err
		}
		if err := writeFile(endFile(d), nil); err != nil {
			return err
		}
	}
	return nil
}

// ReadResult reads step n's result in dir, if it has ended.
func ReadResult(dir string, n int) (Result, bool, error) {
	var r Result
	err := readJSON(exitFile(dir, n), &r)
	if os.IsNotExist(err) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	return r, true, nil
}

func (r Result) String() string {
	if r.Error != "" {
		return fmt.Sprintf("exit code %d: %s", r.Code, r.Error)
	}
	return fmt.Sprintf("exit code %d", r.Code)
}
