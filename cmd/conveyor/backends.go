package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/docker"
	"github.com/conveyor-ci/conveyor/internal/backend/host"
)

type backends struct {
	main, host, containers backend.Backend
	close                  func()
}

// openBackends picks the job backend: docker when asked or (auto) when an
// engine answers, else the host with a one-line notice. With an engine,
// host jobs can still run docker actions and container: jobs.
func openBackends(ctx context.Context, name, engine string, stderr io.Writer, tools toolOptions) (*backends, error) {
	return openBackendsWith(ctx, name, engine, stderr, nil, tools)
}

// engineFlagHelp documents --docker-engine.
const engineFlagHelp = "docker engine: auto (local for a unix socket, remote for tcp:// or ssh://), local (bind-mount the runner and job folder) or remote (copy them in and out; env CONVEYOR_DOCKER_ENGINE)"

// outOfProcessRunner is the host backend's step runner for long-lived
// processes (server, agent): this binary's entrypoint, so that steps die
// with the process that started them, even on kill -9.
func outOfProcessRunner() []string {
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	return []string{exe, "entrypoint"}
}

// openBackendsWith is openBackends with the host backend's runner argv.
func openBackendsWith(ctx context.Context, name, engine string, stderr io.Writer, runner []string, tools toolOptions) (*backends, error) {
	switch name {
	case "auto", "docker", "host":
	default:
		return nil, fmt.Errorf("--backend %q: want auto, docker or host", name)
	}
	eng, err := docker.ParseEngine(engine)
	if err != nil {
		return nil, fmt.Errorf("--docker-engine %q: want auto, local or remote", engine)
	}
	// Once per process, not once per job (run: while git is asked).
	tools.nodeVersion = tools.askNodeVersion(ctx)
	d, err := docker.New(docker.Options{Engine: eng, Node: tools.containerNode(), NodeVersion: tools.nodeVersion, ToolCache: tools.volume})
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err = d.Ping(pctx)
		cancel()
	}
	if err != nil {
		if name == "docker" {
			return nil, fmt.Errorf("docker backend: no Docker engine answers: %v", err)
		}
		h := host.New(host.Options{Runner: runner, Node: tools.node, NodeVersion: tools.nodeVersion, ToolCache: tools.toolCache})
		if name == "auto" {
			fmt.Fprintln(stderr, "conveyor: no Docker engine answers; running jobs on the host")
		}
		return &backends{main: h, host: h, close: func() {}}, nil
	}
	if note := d.RunnerNote(); note != "" {
		fmt.Fprintln(stderr, note)
	}
	reaped := reapOrphans(ctx, d, stderr)
	h := host.New(host.Options{Containers: d, Runner: runner, Node: tools.node, NodeVersion: tools.nodeVersion, ToolCache: tools.toolCache})
	if name == "host" {
		return &backends{main: h, host: h, containers: d, close: reaped}, nil
	}
	return &backends{main: d, host: h, containers: d, close: reaped}, nil
}

// reapOrphans removes, in the background, the containers and networks
// left by Conveyor processes of this host that died (kill -9) before their
// teardown. The returned func waits for it (a few seconds at most).
func reapOrphans(ctx context.Context, d *docker.Backend, stderr io.Writer) func() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		n, err := d.ReapOrphans(rctx)
		if n > 0 {
			fmt.Fprintf(stderr, "conveyor: removed %d containers and networks left by a Conveyor process that died\n", n)
		}
		if err != nil {
			fmt.Fprintln(stderr, "conveyor: removing what a dead Conveyor process left:", err)
		}
	}()
	return func() {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
	}
}
