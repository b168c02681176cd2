package docker

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/jobsync"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// RunContainer implements backend.ContainerRunner: a one-off container on
// the job's network with the job directory at the same path as the job's
// steps see it.
func (s *Sandbox) RunContainer(ctx context.Context, c *backend.ContainerStep, out io.Writer) (int, error) {
	// Its removal may fail: Teardown then looks for leftovers by label.
	s.mu.Lock()
	s.dirty = true
	s.mu.Unlock()
	if s.sync == nil {
		return s.b.runOneOff(ctx, c, s.oneOff(s.job.JobDir, ""), out)
	}
	// Remote engine: the job container's volume is the job folder.
	if err := s.sync.Push(ctx); err != nil {
		return -1, err
	}
	code, err := s.b.runOneOff(ctx, c, s.oneOff("", s.containerID), out)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jobsync.PullTimeout(ctx))
	defer cancel()
	if perr := s.sync.Pull(pctx); err == nil && perr != nil {
		return code, perr
	}
	return code, err
}

// BuildImage implements backend.ContainerRunner.
func (s *Sandbox) BuildImage(ctx context.Context, contextDir, dockerfile, tag string, out io.Writer) error {
	return s.b.BuildImage(ctx, contextDir, dockerfile, tag, out)
}

// RunContainerMounted runs a one-off container with hostDir mounted at
// sandboxDir on the default network; the host backend uses it.
func (b *Backend) RunContainerMounted(ctx context.Context, c *backend.ContainerStep, hostDir, sandboxDir string, out io.Writer) (int, error) {
	if b.remote {
		return -1, errs.E("docker: container step", errs.Invalid,
			"a container step of a job on the host needs a local Docker engine (this one is remote, so %s cannot be mounted); run the job in a container (runs-on mapped to an image, or container:) or use a local engine", hostDir)
	}
	return b.runOneOff(ctx, c, oneOff{hostDir: hostDir, sandboxDir: sandboxDir, jobID: "host"}, out)
}

// oneOff is where a one-off container runs and what it sees.
type oneOff struct {
	hostDir, sandboxDir string // hostDir bind-mounted at sandboxDir, or
	volumesFrom         string // the volumes of this container (a remote engine's job container)
	network, jobID      string
	res                 backend.Resources
	runtime             string
}

// oneOff is a one-off container beside the job's: same network, limits
// and runtime.
func (s *Sandbox) oneOff(hostDir, volumesFrom string) oneOff {
	return oneOff{hostDir: hostDir, sandboxDir: s.b.opts.SandboxDir, volumesFrom: volumesFrom,
		network: s.network, jobID: s.job.ID, res: s.job.Resources, runtime: s.job.Runtime}
}

// runOneOff runs c as at says.
func (b *Backend) runOneOff(ctx context.Context, c *backend.ContainerStep, at oneOff, out io.Writer) (int, error) {
	if err := b.ensureImage(ctx, c.Image, nil, out); err != nil {
		return -1, err
	}
	cfg := &container.Config{
		Image:        c.Image,
		Entrypoint:   c.Entrypoint,
		Cmd:          c.Args,
		Env:          envList(c.Env),
		WorkingDir:   c.Dir,
		Labels:       b.labels(at.jobID),
		AttachStdout: true, AttachStderr: true,
	}
	hc := &container.HostConfig{
		NetworkMode: container.NetworkMode(at.network),
		Resources:   limits(at.res, &createOptions{}),
	}
	b.harden(ctx, hc, at.runtime)
	if at.volumesFrom != "" {
		hc.VolumesFrom = []string{at.volumesFrom}
	} else {
		hc.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: at.hostDir, Target: at.sandboxDir}}
	}
	created, err := b.cli.ContainerCreate(ctx, cfg, hc, nil, nil, "")
	if err != nil {
		return -1, errs.Wrap("docker: create container", kindOf(err), err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = b.cli.ContainerRemove(rctx, created.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	}()
	att, err := b.cli.ContainerAttach(ctx, created.ID, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return -1, errs.Wrap("docker: attach", kindOf(err), err)
	}
	defer att.Close()
	waitc, werrc := b.cli.ContainerWait(ctx, created.ID, container.WaitConditionNextExit)
	if err := b.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return -1, errs.Wrap("docker: start container", kindOf(err), err)
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = stdcopy.StdCopy(out, out, att.Reader)
	}()
	select {
	case r := <-waitc:
		// Let the output finish, but never wait on it for ever.
		select {
		case <-copied:
		case <-time.After(5 * time.Second):
		}
		if r.Error != nil {
			return -1, errs.E("docker: wait", errs.Other, "%s", r.Error.Message)
		}
		return int(r.StatusCode), nil
	case err := <-werrc:
		if ctx.Err() != nil {
			return -1, ctx.Err()
		}
		return -1, errs.Wrap("docker: wait", kindOf(err), err)
	case <-ctx.Done():
		return -1, ctx.Err() // the deferred removal kills it
	}
}

// BuildImage builds contextDir with dockerfile (relative to it) and tags
// the result; the build's output goes to out.
func (b *Backend) BuildImage(ctx context.Context, contextDir, dockerfile, tag string, out io.Writer) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarDir(contextDir, pw)) }()
	defer pr.Close()
	resp, err := b.cli.ImageBuild(ctx, pr, build.ImageBuildOptions{
		Tags: []string{tag}, Dockerfile: filepath.ToSlash(dockerfile),
		Remove: true, ForceRemove: true,
	})
	if err != nil {
		return errs.Wrap("docker: build", kindOf(err), err)
	}
	defer resp.Body.Close()
	if err := drainJSON(resp.Body, out); err != nil {
		return errs.Wrap("docker: build "+tag, errs.Invalid, err)
	}
	return nil
}

// drainJSON copies an engine progress stream to w as text and returns the
// error it reports.
func drainJSON(r io.Reader, w io.Writer) error {
	return jsonmessage.DisplayJSONMessagesStream(r, w, 0, false, nil)
}

// tarDir writes dir as a tar stream.
func tarDir(dir string, w io.Writer) error {
	tw := tar.NewWriter(w)
	err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() && !strings.HasSuffix(hdr.Name, "/") {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
