package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/runner"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// limits combines the job's resource limits (caps set by the operator) with
// the container's options (which may only lower them).
func limits(r backend.Resources, o *createOptions) container.Resources {
	lower := func(a, b int64) int64 {
		if a == 0 || (b != 0 && b < a) {
			return b
		}
		return a
	}
	res := container.Resources{
		NanoCPUs: lower(int64(r.CPUs*1e9), int64(o.cpus*1e9)),
		Memory:   lower(r.MemoryBytes, o.memory),
	}
	pids := r.PidsLimit
	if pids == 0 {
		pids = DefaultPidsLimit
	}
	res.PidsLimit = &pids
	return res
}

func envList(m map[string]string) []string {
	l := make([]string, 0, len(m))
	for k, v := range m {
		l = append(l, k+"="+v)
	}
	return l
}

// volumes splits docker-style volume specs: "src:dst[:mode]" become binds,
// a bare "/dst" an anonymous volume.
func volumes(specs []string) (binds []string, anon map[string]struct{}) {
	for _, v := range specs {
		if strings.Contains(v, ":") {
			binds = append(binds, v)
			continue
		}
		if anon == nil {
			anon = map[string]struct{}{}
		}
		anon[v] = struct{}{}
	}
	return binds, anon
}

func ports(specs []string) (nat.PortSet, nat.PortMap, error) {
	if len(specs) == 0 {
		return nil, nil, nil
	}
	set, bind, err := nat.ParsePortSpecs(specs)
	if err != nil {
		return nil, nil, errs.Wrap("docker: ports", errs.Invalid, err)
	}
	return set, bind, nil
}

// jobContainerConfig is the job container's configuration; runnerMode
// selects the step runner as main process, otherwise an idle shell.
func (s *Sandbox) jobContainerConfig(ctx context.Context, ctr *backend.Container, o *createOptions, runnerMode bool) (*container.Config, *container.HostConfig, *network.NetworkingConfig, error) {
	exposed, bindings, err := ports(ctr.Ports)
	if err != nil {
		return nil, nil, nil, err
	}
	binds, anon := volumes(ctr.Volumes)
	workdir := s.b.opts.SandboxDir
	if o.workdir != "" {
		workdir = o.workdir
	}
	cfg := &container.Config{
		Image:        s.image,
		Hostname:     o.hostname,
		User:         o.user,
		Env:          append(envList(ctr.Env), o.env...),
		WorkingDir:   workdir,
		Labels:       s.b.labels(s.job.ID),
		ExposedPorts: exposed,
		Volumes:      anon,
		Healthcheck:  o.health,
	}
	hc := &container.HostConfig{
		NetworkMode:  container.NetworkMode(s.network), // "": the default bridge
		Binds:        binds,
		PortBindings: bindings,
		Resources:    limits(s.job.Resources, o),
		ShmSize:      o.shmSize,
	}
	s.b.harden(ctx, hc, s.job.Runtime)
	if s.b.remote {
		// The engine cannot see the job folder: a volume of the container
		// holds its copy (see jobSync), which one-off containers share.
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		cfg.Volumes[s.b.opts.SandboxDir] = struct{}{}
	} else {
		hc.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: s.job.JobDir, Target: s.b.opts.SandboxDir}}
	}
	hc.Mounts = append(hc.Mounts, s.toolMounts(binds)...)
	if runnerMode {
		cfg.Entrypoint = s.b.loader.argv()
		cfg.Cmd = nil
		cfg.OpenStdin, cfg.StdinOnce = true, true
		cfg.AttachStdin, cfg.AttachStdout, cfg.AttachStderr = true, true, true
		// The protocol stream is not a log: writing every byte of output
		// to the engine's log driver as well would halve throughput.
		hc.LogConfig = container.LogConfig{Type: "none"}
		if !s.b.remote { // remote: copied in before the start (copyRunner)
			hc.Mounts = append(hc.Mounts, mount.Mount{
				Type: mount.TypeBind, Source: s.b.opts.RunnerBinary, Target: runnerPath, ReadOnly: true,
			})
			hc.Mounts = append(hc.Mounts, s.b.loader.mounts()...)
		}
	} else {
		// Idle as PID 1 until removed: kill -1 (used to cancel a step)
		// spares it, and its wait reaps orphaned processes.
		cfg.Entrypoint = []string{"sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait; done"}
		cfg.Cmd = nil
	}
	var nc *network.NetworkingConfig
	if s.network != "" { // aliases exist only on user-defined networks
		aliases := append([]string{"job"}, o.aliases...)
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			s.network: {Aliases: aliases},
		}}
	}
	return cfg, hc, nc, nil
}

// startJobContainer starts the job container with the step runner, or, if
// the runner does not say hello, with an idle process for docker exec.
func (s *Sandbox) startJobContainer(ctx context.Context, ctr *backend.Container, o *createOptions, log io.Writer) error {
	s.user = o.user
	reason, err := s.startRunner(ctx, ctr, o, log)
	if err != nil {
		return err
	}
	if reason == "" {
		return nil
	}
	fmt.Fprintf(log, "Step runner unavailable (%s); running steps with docker exec\n", reason)
	cfg, hc, nc, err := s.jobContainerConfig(ctx, ctr, o, false)
	if err != nil {
		return err
	}
	id, err := s.create(ctx, "docker: create job container", cfg, hc, nc, resourceName(s.job.ID, "job"), true, ctr.Credentials, log)
	if err != nil {
		return err
	}
	s.containerID = id
	if err := s.b.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return errs.Wrap("docker: start job container", kindOf(err), err)
	}
	if s.b.remote {
		s.sync = newJobSync(s.b, id, s.job.JobDir, s.b.opts.SandboxDir)
	}
	info, err := s.b.cli.ContainerInspect(ctx, id)
	if err != nil {
		return errs.Wrap("docker: inspect job container", kindOf(err), err)
	}
	s.basePath = runner.DefaultPath
	for _, kv := range info.Config.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			s.basePath = v
		}
	}
	s.steps = &execStepper{s: s}
	s.describe = "docker exec in container " + short(id) + " (step runner unavailable: " + reason + ")"
	return nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// startRunner tries the step runner. It returns a reason when the runner
// cannot be used (the container is then removed) and an error when the
// job cannot run at all.
func (s *Sandbox) startRunner(ctx context.Context, ctr *backend.Container, o *createOptions, log io.Writer) (reason string, err error) {
	id, reason, err := s.createRunnerContainer(ctx, ctr, o, log)
	if id == "" {
		return reason, err
	}
	c, reason, err := s.connectRunner(ctx, id)
	if c == nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = s.b.cli.ContainerRemove(rctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil {
			return "", err
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return reason, nil
	}
	s.containerID = id
	s.steps = &runnerStepper{c: c}
	if s.b.remote {
		s.sync = newJobSync(s.b, id, s.job.JobDir, s.b.opts.SandboxDir)
	}
	s.describe = fmt.Sprintf("step runner (conveyor %s) in container %s", c.Hello().Version, short(id))
	if s.b.remote {
		s.describe += " (remote engine: runner and job folder copied)"
	}
	return "", nil
}

// createRunnerContainer creates the job container with the step runner as
// its main process. With no container made, it returns why (a reason: fall
// back to docker exec; an error: the job cannot run).
func (s *Sandbox) createRunnerContainer(ctx context.Context, ctr *backend.Container, o *createOptions, log io.Writer) (id, reason string, err error) {
	if fi, err := os.Stat(s.b.opts.RunnerBinary); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Sprintf("no runner binary at %s", s.b.opts.RunnerBinary), nil
	}
	cfg, hc, nc, err := s.jobContainerConfig(ctx, ctr, o, true)
	if err != nil {
		return "", "", err
	}
	name := resourceName(s.job.ID, "job")
	id, err = s.create(ctx, "docker: create job container", cfg, hc, nc, name, true, ctr.Credentials, log)
	if err != nil {
		var ee *errs.Error
		if errors.As(err, &ee) && ee.Op == "docker: create job container" && errs.Is(err, errs.Invalid) { // e.g. the binary's mount refused
			return "", "create: " + err.Error(), nil
		}
		return "", "", err
	}
	return id, "", nil
}

// connectRunner copies the runner in (remote engine), attaches to the
// created container, starts it and waits for the runner's hello. Without a
// client it returns why: a reason (fall back) or an error (the job cannot
// run); the caller then removes the container.
func (s *Sandbox) connectRunner(ctx context.Context, id string) (*runner.Client, string, error) {
	if s.b.remote {
		if err := s.b.copyRunner(ctx, id); err != nil {
			return nil, "copy the runner in: " + err.Error(), nil
		}
	}
	att, err := s.b.cli.ContainerAttach(ctx, id, container.AttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return nil, "", errs.Wrap("docker: attach job container", kindOf(err), err)
	}
	if err := s.b.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		att.Close()
		return nil, "start: " + err.Error(), nil
	}
	c, reason := s.hello(ctx, att)
	if c == nil {
		att.Close()
	}
	return c, reason, nil
}

// hello waits, up to HelloTimeout, for the runner's hello on the attach
// stream; without it, it returns why with the runner's last diagnostics.
func (s *Sandbox) hello(ctx context.Context, att types.HijackedResponse) (*runner.Client, string) {
	// Docker multiplexes stdout and stderr on the attach stream; the
	// protocol is on stdout, the runner's diagnostics on stderr.
	pr, pw := io.Pipe()
	diag := &runner.Tail{Max: 4096}
	go func() {
		_, err := stdcopy.StdCopy(pw, diag, att.Reader)
		if err == nil {
			err = io.EOF
		}
		pw.CloseWithError(err)
	}()
	hctx, cancel := context.WithTimeout(ctx, s.b.opts.HelloTimeout)
	defer cancel()
	c, err := runner.NewClient(hctx, pr, att.Conn, runner.CloserFunc(func() error { att.Close(); return nil }))
	if err != nil {
		msg := err.Error()
		if d := strings.TrimSpace(diag.String()); d != "" {
			msg += ": " + d
		}
		return nil, msg
	}
	return c, ""
}

type runnerStepper struct{ c *runner.Client }

func (r *runnerStepper) run(ctx context.Context, p *backend.Process, out io.Writer) (int, error) {
	return r.c.Run(ctx, &runner.Request{Argv: p.Argv, Env: p.Env, Dir: p.Dir, PathPrepend: p.PathPrepend, Fallback: p.Fallback}, out)
}

func (r *runnerStepper) close() { _ = r.c.Close() }

// execStepper runs each step with the exec API: the fallback.
type execStepper struct{ s *Sandbox }

func (e *execStepper) close() {}

// execWrapper merges stderr into stdout at the source, so their order
// survives, and reports a missing command the way a shell does.
const execWrapper = `command -v "$1" >/dev/null 2>&1 || { echo "$1: executable file not found in PATH" >&2; exit 127; }; exec "$@" 2>&1`

func (e *execStepper) run(ctx context.Context, p *backend.Process, out io.Writer) (int, error) {
	s := e.s
	if len(p.Argv) == 0 {
		return -1, errs.E("docker: exec", errs.Invalid, "empty argv")
	}
	env := envList(p.Env)
	if len(p.PathPrepend) > 0 {
		env = append(env, "PATH="+strings.Join(p.PathPrepend, ":")+":"+s.basePath)
	}
	argv := p.Argv
	if len(p.Fallback) > 0 {
		argv = runner.FallbackArgv(p.Argv, p.Fallback)
	}
	cmd := append([]string{"sh", "-c", execWrapper, "sh"}, argv...)
	created, err := s.b.cli.ContainerExecCreate(ctx, s.containerID, container.ExecOptions{
		User: s.user, Env: env, WorkingDir: p.Dir, Cmd: cmd,
		AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return -1, errs.Wrap("docker: exec", kindOf(err), err)
	}
	att, err := s.b.cli.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return -1, errs.Wrap("docker: exec attach", kindOf(err), err)
	}
	defer att.Close()
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(out, out, att.Reader)
		copied <- err
	}()
	select {
	case err := <-copied:
		if err != nil {
			return -1, errs.Wrap("docker: exec output", errs.Unavailable, err)
		}
	case <-ctx.Done():
		// The exec API cannot signal an exec; kill every process in the
		// container but its init instead (steps are sequential).
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if k, err := s.b.cli.ContainerExecCreate(kctx, s.containerID, container.ExecOptions{
			User: s.user, Cmd: []string{"sh", "-c", "kill -TERM -1; sleep 1; kill -KILL -1"},
		}); err == nil {
			_ = s.b.cli.ContainerExecStart(kctx, k.ID, container.ExecStartOptions{Detach: true})
		}
		att.Close()
		select {
		case <-copied:
		case <-kctx.Done():
		}
		return -1, ctx.Err()
	}
	for {
		info, err := s.b.cli.ContainerExecInspect(ctx, created.ID)
		if err != nil {
			return -1, errs.Wrap("docker: exec inspect", kindOf(err), err)
		}
		if !info.Running {
			return info.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
