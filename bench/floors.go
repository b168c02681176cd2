package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// dockerClient connects once, the way the docker CLI does (DOCKER_HOST...).
func (h *harness) dockerClient() *client.Client {
	if h.docker != nil {
		return h.docker
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		h.fail("docker client: %v", err)
	}
	ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		h.fail("no Docker engine answers: %v", err)
	}
	if _, err := cli.ImageInspect(ctx, h.image); err != nil {
		if cerrdefs.IsNotFound(err) {
			h.fail("image %s is missing: run `./scripts/test.sh --env` or pass -image", h.image)
		}
		h.fail("image %s: %v", h.image, err)
	}
	h.docker = cli
	return cli
}

// sleeperContainer is a container started once from the image, running
// sleep, for the raw `docker exec` floors.
func (h *harness) sleeperContainer() string {
	if h.sleeper != "" {
		return h.sleeper
	}
	cli := h.dockerClient()
	created, err := cli.ContainerCreate(h.ctx, &container.Config{
		Image: h.image, Cmd: []string{"sleep", "86400"}, Labels: map[string]string{"conveyor.bench": "1"},
	}, &container.HostConfig{AutoRemove: true, NetworkMode: "none"}, nil, nil, "") // exec cost does not depend on the network
	if err != nil {
		h.fail("create sleeper: %v", err)
	}
	h.sleeper = created.ID
	if err := cli.ContainerStart(h.ctx, created.ID, container.StartOptions{}); err != nil {
		h.fail("start sleeper: %v", err)
	}
	return h.sleeper
}

func (h *harness) close() {
	if h.docker == nil {
		return
	}
	if h.sleeper != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_ = h.docker.ContainerRemove(ctx, h.sleeper, container.RemoveOptions{Force: true})
		cancel()
	}
	h.docker.Close()
}

// rawExec is `docker exec CTR cmd...` through the API: exec create, attach
// (which starts it), drain stdout/stderr, inspect the exit code.
func (h *harness) rawExec(cmd ...string) time.Duration {
	cli := h.dockerClient()
	ctr := h.sleeperContainer()
	t0 := time.Now()
	e, err := cli.ContainerExecCreate(h.ctx, ctr, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		h.fail("exec create: %v", err)
	}
	att, err := cli.ContainerExecAttach(h.ctx, e.ID, container.ExecAttachOptions{})
	if err != nil {
		h.fail("exec attach: %v", err)
	}
	_, err = stdcopy.StdCopy(io.Discard, io.Discard, att.Reader)
	att.Close()
	if err != nil {
		h.fail("exec output: %v", err)
	}
	info, err := cli.ContainerExecInspect(h.ctx, e.ID)
	if err != nil {
		h.fail("exec inspect: %v", err)
	}
	d := time.Since(t0)
	if info.Running || info.ExitCode != 0 {
		h.fail("exec %v: running=%v exit code %d", cmd, info.Running, info.ExitCode)
	}
	return d
}

// rawRun is `docker run --rm IMAGE true` through the API: create, start,
// wait, remove.
func (h *harness) rawRun() time.Duration {
	h.dockerClient() // made (and pinged) before the clock starts
	t0 := time.Now()
	if code := h.dockerRun("true"); code != 0 {
		h.fail("docker run true: exit code %d", code)
	}
	return time.Since(t0)
}

// rawRunN is n `docker run --rm IMAGE sh -c SCRIPT` at once through the API
// (create, start, wait, remove each), to the last one's removal: what the
// engine alone makes of n containers at once on this machine.
func (h *harness) rawRunN(n int, script string) time.Duration {
	h.dockerClient() // made (and pinged) before the clock starts
	t0 := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.dockerRun("sh", "-c", script)
		}()
	}
	wg.Wait()
	return time.Since(t0)
}

// dockerRun creates, starts, waits for and removes one container of the
// bench image running cmd, and returns its exit code.
func (h *harness) dockerRun(cmd ...string) int64 {
	cli := h.dockerClient()
	created, err := cli.ContainerCreate(h.ctx, &container.Config{
		Image: h.image, Cmd: cmd, Labels: map[string]string{"conveyor.bench": "1"},
	}, &container.HostConfig{}, nil, nil, "")
	if err != nil {
		h.fail("create: %v", err)
	}
	waitc, errc := cli.ContainerWait(h.ctx, created.ID, container.WaitConditionNextExit)
	if err := cli.ContainerStart(h.ctx, created.ID, container.StartOptions{}); err != nil {
		h.fail("start: %v", err)
	}
	var code int64
	select {
	case w := <-waitc:
		code = w.StatusCode
	case err := <-errc:
		h.fail("wait: %v", err)
	}
	if err := cli.ContainerRemove(h.ctx, created.ID, container.RemoveOptions{}); err != nil {
		h.fail("remove: %v", err)
	}
	return code
}

// rawHost is a fork/exec of sh -c SCRIPT with its output drained through a
// pipe (what a runner has to do) and thrown away.
func (h *harness) rawHost(script string) time.Duration {
	return h.rawArgv("sh", "-c", script)
}

// rawArgv is a fork/exec of argv, output drained as by rawHost.
func (h *harness) rawArgv(argv ...string) time.Duration {
	t0 := time.Now()
	cmd := exec.CommandContext(h.ctx, argv[0], argv[1:]...)
	cmd.Stdout = io.Discard // a pipe read by a goroutine
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		h.fail("%q: %v", argv, err)
	}
	return time.Since(t0)
}
