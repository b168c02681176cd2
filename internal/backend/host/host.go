// Package host is the development backend: a job's steps run as child
// processes on this machine, in the job directory, without isolation.
package host

import (
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/runner"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Options configure the host backend.
type Options struct {
	// Containers, when set, runs container actions (docker:// steps and
	// Dockerfile actions) for host jobs; usually the docker backend.
	Containers ContainerEngine
	// Runner, when set, is the argv of an out-of-process step runner
	// (`conveyor entrypoint`) started per job. Steps then outlive nothing:
	// if this process dies, even by kill -9, the runner sees its input
	// close and kills every process group of the job. The server and agents
	// set it; without it the runner serves in-process.
	Runner []string
	// Node is the node program for JavaScript actions; "": "node" from
	// the PATH of the job's processes.
	Node string
	// NodeVersion is what Node says to --version, when known (it spares
	// each job asking).
	NodeVersion string
	// ToolCache is the folder setup-* actions install toolchains into
	// (RUNNER_TOOL_CACHE), kept across jobs; made if missing. "": a
	// folder of each job's own.
	ToolCache string
}

// ContainerEngine runs one-off containers with a host directory mounted;
// the docker backend implements it.
type ContainerEngine interface {
	RunContainerMounted(ctx context.Context, c *backend.ContainerStep, hostDir, sandboxDir string, out io.Writer) (int, error)
	BuildImage(ctx context.Context, contextDir, dockerfile, tag string, out io.Writer) error
}

// Backend runs jobs on the host.
type Backend struct {
	opts Options
	// warm holds an out-of-process runner started ahead of the next job
	// (Options.Runner), so a job's start does not wait for an exec and a
	// handshake. It dies with this process like any runner.
	warm chan *runnerProc
}

var _ backend.Backend = (*Backend)(nil)

// New returns a host backend.
func New(opts Options) *Backend { return &Backend{opts: opts, warm: make(chan *runnerProc, 1)} }

// Name implements backend.Backend.
func (b *Backend) Name() string { return "host" }

// Setup implements backend.Backend. The sandbox is the job directory itself.
func (b *Backend) Setup(ctx context.Context, job *backend.JobSpec, _ io.Writer) (backend.Sandbox, error) {
	if len(job.Services) > 0 {
		names := make([]string, len(job.Services))
		for i, s := range job.Services {
			names[i] = s.Name
		}
		return nil, errs.E("host: setup", errs.Invalid, "job %q has services (%s): the host backend cannot run services; use the docker backend", job.Name, strings.Join(names, ", "))
	}
	if job.JobDir == "" {
		return nil, errs.E("host: setup", errs.Invalid, "job %q has no job directory", job.Name)
	}
	if p, err := backend.ParseNetworkPolicy(string(job.Network)); err != nil || p != backend.NetworkOpen {
		return nil, errs.E("host: setup", errs.Invalid, "job %q has network policy %q: the host backend cannot confine a job's network; use the docker backend", job.Name, job.Network)
	}
	if job.Runtime != "" {
		return nil, errs.E("host: setup", errs.Invalid, "job %q asks for runtime %q: the host backend runs no containers; use the docker backend", job.Name, job.Runtime)
	}
	if b.opts.ToolCache != "" {
		if err := os.MkdirAll(b.opts.ToolCache, 0o755); err != nil {
			return nil, errs.Wrap("host: tool cache", errs.Unavailable, err)
		}
	}
	s := &Sandbox{dir: job.JobDir, served: make(chan struct{}), node: b.opts.Node, nodeVersion: b.opts.NodeVersion, toolCache: b.opts.ToolCache}
	if len(b.opts.Runner) > 0 {
		p := b.takeWarm()
		if p == nil {
			var err error
			if p, err = startRunner(ctx, b.opts.Runner); err != nil {
				return nil, err
			}
		}
		go b.prewarm()
		s.client, s.stop = p.client, p.stop
		go func() {
			<-p.waited
			close(s.served)
		}()
		return b.wrap(s), nil
	}
	// Steps go through the step runner's process handling in-process
	// (runner.Local), so the host and container backends share one
	// implementation of it: own process group, merged output, group kill
	// on cancel, everything killed at the end.
	s.local = runner.NewLocal()
	s.stop = func() {
		s.local.Close()
		close(s.served)
	}
	return b.wrap(s), nil
}

func (b *Backend) wrap(s *Sandbox) backend.Sandbox {
	if b.opts.Containers != nil {
		return &containerSandbox{Sandbox: s, engine: b.opts.Containers}
	}
	return s
}

// runnerProc is a started out-of-process runner, connected.
type runnerProc struct {
	client *runner.Client
	stop   func()        // closes its input: it kills what is left and exits
	waited chan struct{} // closed when it has exited
}

// takeWarm returns the runner started ahead, if one is there and alive.
func (b *Backend) takeWarm() *runnerProc {
	select {
	case p := <-b.warm:
		select {
		case <-p.waited: // died meanwhile
			return nil
		default:
			return p
		}
	default:
		return nil
	}
}

// prewarm starts a runner for the next job unless one is waiting.
func (b *Backend) prewarm() {
	if len(b.warm) > 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := startRunner(ctx, b.opts.Runner)
	if err != nil {
		return // the next job starts its own, and says why if it cannot
	}
	select {
	case b.warm <- p:
	default:
		p.stop() // another was put there meanwhile
	}
}

// helloTimeout bounds the start of the step runner, a fresh process of
// this binary: milliseconds normally, but a race-instrumented build on a
// machine at load 20 was seen to take over 10 s.
const helloTimeout = 30 * time.Second

// startRunner starts the out-of-process step runner and connects to it.
// Steps name their directory; the runner's own is the system's temporary
// one, as it may be started before its job is known.
func startRunner(ctx context.Context, argv []string) (*runnerProc, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = os.TempDir()
	// Its own process group: a terminal's Ctrl-C reaches this process,
	// which cancels steps through the protocol; the runner only dies when
	// its input closes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, errs.Wrap("host: setup", errs.Unavailable, err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, errs.Wrap("host: setup", errs.Unavailable, err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, errs.E("host: setup", errs.Unavailable, "starting the step runner %v: %v", argv, err)
	}
	p := &runnerProc{waited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.waited)
	}()
	p.stop = func() {
		in.Close() // the runner kills what is left and exits
		select {
		case <-p.waited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.waited
		}
	}
	hctx, hcancel := context.WithTimeout(ctx, helloTimeout)
	defer hcancel()
	c, err := runner.NewClient(hctx, out, in, in)
	if err != nil {
		p.stop()
		return nil, err
	}
	p.client = c
	return p, nil
}

// Sandbox is one host job.
type Sandbox struct {
	dir         string
	node        string         // Options.Node
	nodeVersion string         // Options.NodeVersion
	toolCache   string         // Options.ToolCache
	client      *runner.Client // the out-of-process runner (Options.Runner)
	local       *runner.Local  // else
	stop        func()
	served      chan struct{}
	once        sync.Once
}

var (
	_ backend.Sandbox      = (*Sandbox)(nil)
	_ backend.Describer    = (*Sandbox)(nil)
	_ backend.NodeProvider = (*Sandbox)(nil)
)

// Dirs implements backend.Sandbox.
func (s *Sandbox) Dirs() backend.Dirs {
	return backend.Dirs{Host: s.dir, Sandbox: s.dir, ToolCache: s.toolCache}
}

// Nodes implements backend.NodeProvider: the configured node only, so that
// --node is what runs actions even when another node is on the PATH.
func (s *Sandbox) Nodes(context.Context) ([]backend.Node, error) {
	if s.node != "" {
		return []backend.Node{{Argv: []string{s.node}, Version: s.nodeVersion}}, nil
	}
	return []backend.Node{{Argv: []string{"node"}}}, nil
}

// Describe implements backend.Describer.
func (s *Sandbox) Describe() string { return "host processes in " + s.dir }

// Exec implements backend.Sandbox.
func (s *Sandbox) Exec(ctx context.Context, p *backend.Process, out io.Writer) (int, error) {
	req := &runner.Request{Argv: p.Argv, Env: p.Env, Dir: p.Dir, PathPrepend: p.PathPrepend, Fallback: p.Fallback}
	if req.Dir == "" {
		req.Dir = s.dir
	}
	var code int
	var err error
	if s.local != nil {
		code, err = s.local.Run(ctx, req, out)
	} else {
		code, err = s.client.Run(ctx, req, out)
	}
	if err != nil && ctx.Err() != nil {
		return code, ctx.Err()
	}
	return code, err
}

// Teardown kills every process the job started (background ones included)
// and leaves the job directory to the executor.
func (s *Sandbox) Teardown(ctx context.Context) error {
	s.once.Do(s.stop)
	select {
	case <-s.served:
		return nil
	case <-ctx.Done():
		return errs.Wrap("host: teardown", errs.Timeout, ctx.Err())
	case <-time.After(10 * time.Second):
		return errs.E("host: teardown", errs.Timeout, "processes did not end")
	}
}

type containerSandbox struct {
	*Sandbox
	engine ContainerEngine
}

var _ backend.ContainerRunner = (*containerSandbox)(nil)

// RunContainer implements backend.ContainerRunner: the job directory is
// mounted at its own host path, which is what host steps see.
func (s *containerSandbox) RunContainer(ctx context.Context, c *backend.ContainerStep, out io.Writer) (int, error) {
	return s.engine.RunContainerMounted(ctx, c, s.dir, s.dir, out)
}

// BuildImage implements backend.ContainerRunner.
func (s *containerSandbox) BuildImage(ctx context.Context, contextDir, dockerfile, tag string, out io.Writer) error {
	return s.engine.BuildImage(ctx, contextDir, dockerfile, tag, out)
}
