package docker

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/container"

	"github.com/conveyor-ci/conveyor/internal/backend/jobsync"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Engine says whether the Docker engine shares this machine's files, which
// decides how the step runner and the job folder get into job containers.
type Engine string

const (
	// EngineAuto: local when the engine is reached through a unix socket
	// (or a Windows named pipe), remote otherwise (tcp://, ssh://, http://).
	EngineAuto Engine = ""
	// EngineLocal bind-mounts the runner binary (read-only) and the job
	// folder.
	EngineLocal Engine = "local"
	// EngineRemote copies the runner binary into each job container before
	// it starts, and the job folder in and out around each step (see
	// jobSync); nothing of this machine is bind-mounted.
	EngineRemote Engine = "remote"
)

// ParseEngine reads "auto" (or ""), "local" or "remote".
func ParseEngine(s string) (Engine, error) {
	switch s {
	case "", "auto":
		return EngineAuto, nil
	case "local":
		return EngineLocal, nil
	case "remote":
		return EngineRemote, nil
	}
	return "", errs.E("docker: engine", errs.Invalid, "%q: want auto, local or remote", s)
}

// localDaemon reports whether a daemon address (client.DaemonHost) is on
// this machine: a unix socket or a named pipe. A tcp:// address is taken
// for remote even when it is the loopback: it may be forwarded, and the
// copy path works everywhere.
func localDaemon(host string) bool {
	scheme, _, _ := strings.Cut(host, "://")
	return scheme == "unix" || scheme == "npipe"
}

// Remote reports whether the backend treats its engine as remote.
func (b *Backend) Remote() bool { return b.remote }

// copyRunner puts the runner binary at runnerPath in a created container
// (before it starts), with the loader and libraries of a dynamically
// linked one.
func (b *Backend) copyRunner(ctx context.Context, id string) error {
	files := map[string]string{runnerPath: b.opts.RunnerBinary}
	if b.loader != nil {
		for dst, src := range b.loader.files() {
			files[dst] = src
		}
	}
	return b.copyFiles(ctx, id, files)
}

// copyFiles puts host files (container path to host path) in container
// id, created or running: one tar through the API.
func (b *Backend) copyFiles(ctx context.Context, id string, files map[string]string) error {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := writeRunnerTar(tw, files)
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	return b.cli.CopyToContainer(ctx, id, "/", pr, container.CopyToContainerOptions{})
}

// writeRunnerTar writes files (container path to host path) and their
// folders, read-only and executable.
func writeRunnerTar(tw *tar.Writer, files map[string]string) error {
	dsts := make([]string, 0, len(files))
	for dst := range files {
		dsts = append(dsts, dst)
	}
	sort.Strings(dsts)
	dirs := map[string]bool{}
	for _, dst := range dsts {
		f, err := os.Open(files[dst])
		if err != nil {
			return err
		}
		fi, err := f.Stat()
		if err == nil {
			for _, d := range []string{path.Dir(path.Dir(dst)), path.Dir(dst)} {
				d = strings.TrimPrefix(d, "/")
				if d != "" && d != "." && !dirs[d] && err == nil {
					dirs[d] = true
					err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: fi.ModTime()})
				}
			}
		}
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(dst, "/"), Mode: 0o555, Size: fi.Size(), ModTime: fi.ModTime()})
		}
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// jobTransport is jobsync's transport through the engine's archive API.
type jobTransport struct {
	b      *Backend
	id     string // the job container
	ctrDir string
}

func newJobSync(b *Backend, id, hostDir, ctrDir string) *jobsync.Sync {
	return jobsync.New("docker", hostDir, &jobTransport{b: b, id: id, ctrDir: ctrDir})
}

func (t *jobTransport) CopyIn(ctx context.Context, r io.Reader) error {
	if err := t.b.cli.CopyToContainer(ctx, t.id, t.ctrDir, r, container.CopyToContainerOptions{}); err != nil {
		return errs.Wrap("docker: copy in", kindOf(err), err)
	}
	return nil
}

func (t *jobTransport) CopyOut(ctx context.Context) (io.ReadCloser, error) {
	rc, _, err := t.b.cli.CopyFromContainer(ctx, t.id, t.ctrDir+"/.")
	if err != nil {
		return nil, errs.Wrap("docker: copy out", kindOf(err), err)
	}
	return rc, nil
}
