// Package docker runs each job in a container of its own on a Docker
// Engine, services in containers beside it on a per-job network (a job
// without services is on the default bridge), and the job's steps through
// Conveyor's step runner (the container's main process) so a step costs no
// exec API round trip. On a local engine the runner binary and the job
// folder are bind-mounted; on a remote one they are copied (remote.go).
package docker

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/jobsync"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// LabelJob is put, with the job's ID, on everything the backend creates.
const LabelJob = "conveyor.job"

const (
	// DefaultSandboxDir is where the job directory is mounted.
	DefaultSandboxDir = "/__w"
	// runnerPath is where the conveyor binary is mounted, read-only.
	runnerPath = "/__conveyor/conveyor"
	// DefaultPidsLimit applies when a job sets none.
	DefaultPidsLimit = 4096
)

// Options configure the docker backend.
type Options struct {
	// Client talks to the engine; nil: from the environment (DOCKER_HOST).
	Client client.APIClient
	// RunnerBinary is a static conveyor binary mounted into job containers
	// as their main process; "": this executable.
	RunnerBinary string
	// SandboxDir is where the job directory is mounted; "": /__w.
	SandboxDir string
	// HelloTimeout bounds the wait for the step runner to start before
	// falling back to docker exec; 0: 5s.
	HelloTimeout time.Duration
	// HealthTimeout bounds the wait for services to become healthy; 0: 2m.
	HealthTimeout time.Duration
	// Engine says whether the engine shares this machine's files (bind
	// mounts) or not (copies); EngineAuto: from the engine's address.
	Engine Engine
	// Node is a node program of this machine that job containers get at
	// /__conveyor/node/bin/node for JavaScript actions, for images without
	// a suitable node of their own (see backend.NodeProvider); "": none.
	// The C library and loader it needs come along (in lib/ beside), so
	// that it also runs in images without that C library.
	Node string
	// NodeVersion is what Node says to --version, when known.
	NodeVersion string
	// ToolCache is mounted at /opt/hostedtoolcache (RUNNER_TOOL_CACHE) in
	// job containers: a volume name (made on first use, kept across jobs)
	// or an absolute path of the engine's machine. "": none.
	ToolCache string
}

// Backend is the docker backend. It is safe for concurrent use.
type Backend struct {
	cli   client.APIClient
	opts  Options
	owner string // LabelOwner's value
	// reapHost, set by tests only, is the host ReapOrphans takes for its own.
	reapHost string
	remote   bool // copy the runner and the job folder instead of bind mounts
	// memDefault is the memory limit of containers that set none.
	memDefault memoryDefault
	// fw enforces network policies other than open.
	fw firewall
	// facts are the engine's runtimes.
	facts engineFacts
	// loader runs a dynamically linked runner binary in any image (nil:
	// static); loaderErr says why a dynamic one cannot be (RunnerNote).
	loader    *runnerLoader
	loaderErr error
	// nodeLoader runs Options.Node through this machine's loader and
	// libraries, in any image (nil: static, or they were not found).
	nodeLoader *runnerLoader
}

var _ backend.Backend = (*Backend)(nil)

// New returns a docker backend. It does not contact the engine; see Ping.
func New(opts Options) (*Backend, error) {
	if opts.Client == nil {
		c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			return nil, errs.Wrap("docker: client", errs.Unavailable, err)
		}
		opts.Client = c
	}
	if strings.HasPrefix(opts.Client.DaemonHost(), "ssh://") {
		// The docker CLI dials ssh:// through its connection helper (an
		// ssh subprocess); the API client alone cannot.
		return nil, errs.E("docker: client", errs.Unavailable,
			"DOCKER_HOST %s: ssh:// needs the docker CLI's connection helper, which Conveyor does not use; forward the engine's socket (ssh -NL /tmp/docker.sock:/var/run/docker.sock HOST), set DOCKER_HOST=unix:///tmp/docker.sock and pass --docker-engine remote", opts.Client.DaemonHost())
	}
	if opts.RunnerBinary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, errs.Wrap("docker: runner binary", errs.Invalid, err)
		}
		opts.RunnerBinary = exe
	}
	if opts.SandboxDir == "" {
		opts.SandboxDir = DefaultSandboxDir
	}
	if opts.HelloTimeout == 0 {
		opts.HelloTimeout = 5 * time.Second
	}
	if opts.HealthTimeout == 0 {
		opts.HealthTimeout = 2 * time.Minute
	}
	remote := false
	switch opts.Engine {
	case EngineLocal:
	case EngineRemote:
		remote = true
	case EngineAuto:
		remote = !localDaemon(opts.Client.DaemonHost())
	default:
		return nil, errs.E("docker: engine", errs.Invalid, "%q: want local or remote", opts.Engine)
	}
	b := &Backend{cli: opts.Client, opts: opts, owner: selfOwner(), remote: remote}
	b.loader, b.loaderErr = findRunnerLoader(opts.RunnerBinary)
	if opts.Node != "" {
		b.nodeLoader, _ = findRunnerLoader(opts.Node) // not found: no loader mode
	}
	return b, nil
}

// RunnerNote is a warning for the user when the runner binary cannot run
// in job containers (steps then fall back to docker exec, many times
// slower), with the fix; "" when it can.
func (b *Backend) RunnerNote() string {
	if b.loaderErr == nil {
		return ""
	}
	return fmt.Sprintf("conveyor: %v: Docker steps will use docker exec, many times slower; build a static conveyor: CGO_ENABLED=0 go install github.com/conveyor-ci/conveyor/cmd/conveyor@latest", b.loaderErr)
}

// Client returns the engine client.
func (b *Backend) Client() client.APIClient { return b.cli }

// Ping checks that an engine answers.
func (b *Backend) Ping(ctx context.Context) error {
	p, err := b.cli.Ping(ctx)
	if err != nil {
		return errs.Wrap("docker: ping", errs.Unavailable, err)
	}
	// Pin the API version from this answer: without it the client pings
	// again before its first request (and may race to do so from several
	// goroutines).
	b.cli.NegotiateAPIVersionPing(p)
	return nil
}

// Name implements backend.Backend.
func (b *Backend) Name() string { return "docker" }

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

func resourceName(jobID, suffix string) string {
	n := "conveyor-" + unsafeName.ReplaceAllString(jobID, "-")
	if suffix != "" {
		n += "-" + unsafeName.ReplaceAllString(suffix, "-")
	}
	return n
}

// Setup implements backend.Backend: network, services (healthy), then the
// job container with the step runner. On error it removes what it made.
func (b *Backend) Setup(ctx context.Context, job *backend.JobSpec, log io.Writer) (_ backend.Sandbox, err error) {
	if log == nil {
		log = io.Discard
	}
	js, err := parseJobSetup(job)
	if err != nil {
		return nil, err
	}
	s := &Sandbox{b: b, job: *job, image: js.image}
	defer func() {
		if err != nil {
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			_ = s.Teardown(tctx)
		}
	}()
	policy, err := b.preflight(ctx, job, log)
	if err != nil {
		return nil, err
	}
	// A per-job network only when something must be reachable by name:
	// services, or network aliases asked for. Otherwise the job container
	// is on the engine's default bridge (it reaches the network as on
	// GitHub's runners), which spares creating and removing a network and
	// the embedded DNS of a user-defined one.
	// A network policy other than open needs a network of its own too: its
	// rules name the network's bridge.
	if len(job.Services) > 0 || len(js.opts.aliases) > 0 || policy != backend.NetworkOpen {
		if err := s.makeNetwork(ctx, policy); err != nil {
			return nil, err
		}
	}
	if err := s.startServices(ctx, job.Services, js.svcOpts, log); err != nil {
		return nil, err
	}
	if err := s.startJobContainer(ctx, &js.ctr, js.opts, log); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.complete = true
	s.mu.Unlock()
	return s, nil
}

// jobSetup is what Setup takes from a JobSpec before it touches the engine.
type jobSetup struct {
	image   string
	ctr     backend.Container
	opts    *createOptions   // the job container's
	svcOpts []*createOptions // one a service, in order
}

// parseJobSetup checks a JobSpec and parses its containers' options.
func parseJobSetup(job *backend.JobSpec) (*jobSetup, error) {
	if job.ID == "" || job.JobDir == "" {
		return nil, errs.E("docker: setup", errs.Invalid, "job %q needs an ID and a job directory", job.Name)
	}
	js := &jobSetup{image: job.Image}
	if job.Container != nil {
		js.ctr = *job.Container
		if js.image == "" {
			js.image = js.ctr.Image
		}
	}
	if js.image == "" {
		return nil, errs.E("docker: setup", errs.Invalid, "job %q has no image", job.Name)
	}
	opts, err := parseOptions(js.ctr.Options)
	if err != nil {
		return nil, errs.Wrap("docker: job "+job.Name, errs.Invalid, err)
	}
	if opts.entrypoint != nil {
		return nil, errs.E("docker: job "+job.Name, errs.Invalid, "--entrypoint cannot be set for a job container (its main process is the step runner); it is allowed for services")
	}
	js.opts = opts
	js.svcOpts = make([]*createOptions, len(job.Services))
	for i, s := range job.Services {
		if js.svcOpts[i], err = parseOptions(s.Options); err != nil {
			return nil, errs.Wrap("docker: service "+s.Name, errs.Invalid, err)
		}
	}
	return js, nil
}

// preflight pulls the services' images and checks that the engine can give
// the job its network policy and runtime; it returns the parsed policy.
func (b *Backend) preflight(ctx context.Context, job *backend.JobSpec, log io.Writer) (backend.NetworkPolicy, error) {
	// The job's image is not inspected first: creating its container says
	// when it is missing (see create), one round trip fewer.
	for _, svc := range job.Services {
		if err := b.ensureImage(ctx, svc.Image, svc.Credentials, log); err != nil {
			return "", err
		}
	}
	policy, err := backend.ParseNetworkPolicy(string(job.Network))
	if err != nil {
		return "", err
	}
	if policy != backend.NetworkOpen {
		if err := b.fw.check(b.remote); err != nil {
			return "", err
		}
	}
	if err := b.checkRuntime(ctx, job.Runtime); err != nil {
		return "", err
	}
	return policy, nil
}

// makeNetwork creates the job's own network; under a policy other than
// open its bridge gets a name of ours and the policy's firewall rules, and
// under none it is internal (no route out).
func (s *Sandbox) makeNetwork(ctx context.Context, policy backend.NetworkPolicy) error {
	name := resourceName(s.job.ID, "")
	s.setNetwork(name)
	opts := network.CreateOptions{Driver: "bridge", Labels: s.b.labels(s.job.ID)}
	if policy != backend.NetworkOpen {
		opts.Options = map[string]string{"com.docker.network.bridge.name": bridgeName(s.job.ID)}
		opts.Internal = policy == backend.NetworkNone
	}
	if _, err := s.b.cli.NetworkCreate(ctx, name, opts); err != nil {
		return errs.Wrap("docker: create network", kindOf(err), err)
	}
	if policy == backend.NetworkOpen {
		return nil
	}
	if err := s.b.fw.apply(ctx, bridgeName(s.job.ID), policy); err != nil {
		return err
	}
	s.mu.Lock()
	s.policy = policy
	s.mu.Unlock()
	return nil
}

// kindOf maps an engine error to an errs kind.
func kindOf(err error) errs.Kind {
	switch {
	case cerrdefs.IsNotFound(err):
		return errs.NotFound
	case cerrdefs.IsInvalidArgument(err):
		return errs.Invalid
	case cerrdefs.IsConflict(err):
		return errs.Conflict
	case cerrdefs.IsUnauthorized(err), cerrdefs.IsPermissionDenied(err):
		return errs.Unauthorized
	case cerrdefs.IsCanceled(err):
		return errs.Canceled
	case cerrdefs.IsDeadlineExceeded(err):
		return errs.Timeout
	case client.IsErrConnectionFailed(err), cerrdefs.IsUnavailable(err):
		return errs.Unavailable
	}
	return errs.Other
}

// ensureImage pulls ref unless it is already present.
func (b *Backend) ensureImage(ctx context.Context, ref string, cred *backend.Credentials, log io.Writer) error {
	if _, err := b.cli.ImageInspect(ctx, ref); err == nil {
		return nil
	} else if !cerrdefs.IsNotFound(err) {
		return errs.Wrap("docker: image "+ref, kindOf(err), err)
	}
	fmt.Fprintf(log, "Pulling image %s\n", ref)
	po := image.PullOptions{}
	if cred != nil && cred.Username != "" {
		auth, err := registry.EncodeAuthConfig(registry.AuthConfig{Username: cred.Username, Password: cred.Password})
		if err != nil {
			return errs.Wrap("docker: credentials", errs.Invalid, err)
		}
		po.RegistryAuth = auth
	}
	rc, err := b.cli.ImagePull(ctx, ref, po)
	if err == nil {
		err = drainJSON(rc, io.Discard)
		rc.Close()
	}
	if err != nil {
		return errs.E("docker: image", errs.NotFound, "image %q is not available locally and could not be pulled: %v", ref, err)
	}
	return nil
}

// Sandbox is one job's container, services and network.
type Sandbox struct {
	b       *Backend
	job     backend.JobSpec
	image   string
	network string
	policy  backend.NetworkPolicy // set once its firewall rules exist

	containerID string
	user        string
	basePath    string // the container's PATH, for exec mode
	steps       stepper
	describe    string
	sync        *jobsync.Sync // remote engine: the job folder's copies; nil: bind-mounted
	nodeMu      sync.Mutex
	nodeCopied  bool // remote engine: Options.Node is in the container

	mu         sync.Mutex
	tornDown   bool
	containers []string // every container made for the job, for Teardown
	// complete: Setup succeeded, so containers holds all it made; unless
	// a one-off container ran (dirty), Teardown need not look for more.
	complete, dirty bool
}

// setNetwork records the job's network before it is made, so that
// Teardown removes it even if its creation fails half-way.
func (s *Sandbox) setNetwork(name string) {
	s.mu.Lock()
	s.network = name
	s.mu.Unlock()
}

// track records a container made for the job.
func (s *Sandbox) track(id string) {
	s.mu.Lock()
	s.containers = append(s.containers, id)
	s.mu.Unlock()
}

// create makes a container of the job and tracks it. With pull, an image
// that is missing is pulled (with cred) and the creation tried again. Errors
// are wrapped with op.
func (s *Sandbox) create(ctx context.Context, op string, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig, name string, pull bool, cred *backend.Credentials, log io.Writer) (string, error) {
	created, err := s.b.cli.ContainerCreate(ctx, cfg, hc, nc, nil, name)
	if err != nil && pull && cerrdefs.IsNotFound(err) {
		if perr := s.b.ensureImage(ctx, cfg.Image, cred, log); perr != nil {
			return "", perr
		}
		created, err = s.b.cli.ContainerCreate(ctx, cfg, hc, nc, nil, name)
	}
	if err != nil {
		return "", errs.Wrap(op, kindOf(err), err)
	}
	s.track(created.ID)
	return created.ID, nil
}

var (
	_ backend.Sandbox         = (*Sandbox)(nil)
	_ backend.Describer       = (*Sandbox)(nil)
	_ backend.ContainerRunner = (*Sandbox)(nil)
	_ backend.NodeProvider    = (*Sandbox)(nil)
)

// stepper runs steps in the job container: the step runner or docker exec.
type stepper interface {
	run(ctx context.Context, p *backend.Process, out io.Writer) (int, error)
	close()
}

// Dirs implements backend.Sandbox.
func (s *Sandbox) Dirs() backend.Dirs {
	return backend.Dirs{Host: s.job.JobDir, Sandbox: s.b.opts.SandboxDir, ToolCache: s.toolCacheDir()}
}

// Describe implements backend.Describer.
func (s *Sandbox) Describe() string { return s.describe }

// ContainerID is the job container's ID.
func (s *Sandbox) ContainerID() string { return s.containerID }

// Network is the job's network name.
func (s *Sandbox) Network() string { return s.network }

// Exec implements backend.Sandbox.
func (s *Sandbox) Exec(ctx context.Context, p *backend.Process, out io.Writer) (int, error) {
	s.mu.Lock()
	down := s.tornDown
	s.mu.Unlock()
	if down || s.steps == nil {
		return -1, errs.E("docker: exec", errs.Invalid, "sandbox of job %q is torn down", s.job.Name)
	}
	folder := s.sync // nil: bind-mounted, or the process uses no files
	if p.NoFiles {
		folder = nil
	}
	if folder != nil {
		if err := folder.Push(ctx); err != nil {
			return -1, err
		}
	}
	code, err := s.steps.run(ctx, p, out)
	if folder != nil {
		// Even after a cancelled step: the executor reads its files.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jobsync.PullTimeout(ctx))
		perr := folder.Pull(pctx)
		cancel()
		if err == nil && perr != nil {
			return code, perr
		}
	}
	if err != nil && ctx.Err() != nil {
		return code, ctx.Err()
	}
	return code, err
}

// Teardown implements backend.Sandbox: it removes the job's containers
// (each with one forced removal: no stop first), then anything else
// labelled with the job's ID, then the job's network if it has one. It is
// idempotent and works after a partial Setup.
func (s *Sandbox) Teardown(ctx context.Context) error {
	s.mu.Lock()
	s.tornDown = true
	steps := s.steps
	ids := append([]string(nil), s.containers...)
	netName := s.network
	sweep := !s.complete || s.dirty
	s.mu.Unlock()
	if steps != nil {
		steps.close()
	}
	// Clean up even when the caller's context has ended.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	s.mu.Lock()
	policy := s.policy
	s.mu.Unlock()
	if policy != "" {
		// After the containers and the network: nothing is left that the
		// rules would have to hold back.
		defer s.b.fw.remove(ctx, bridgeName(s.job.ID), policy)
	}
	if sweep {
		return s.b.removeJob(ctx, s.job.ID, ids, netName != "")
	}
	// Everything is known: no listing, one round trip per container (at
	// once), then the network.
	err := s.b.removeContainers(ctx, ids)
	if netName != "" {
		if nerr := s.b.cli.NetworkRemove(ctx, netName); nerr != nil && !cerrdefs.IsNotFound(nerr) && err == nil {
			err = errs.Wrap("docker: teardown", kindOf(nerr), nerr)
		}
	}
	return err
}

// removeContainers removes containers at once, forced.
func (b *Backend) removeContainers(ctx context.Context, ids []string) error {
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := b.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
			// A container that stopped between the engine's check and its
			// kill ("Could not kill running container ... is not running")
			// is removed by asking again.
			for try := 0; try < 3 && err != nil && strings.Contains(err.Error(), "is not running"); try++ {
				err = b.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
			}
			if err == nil || cerrdefs.IsNotFound(err) || cerrdefs.IsConflict(err) { // conflict: removal already in progress
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if first == nil {
				first = errs.Wrap("docker: teardown", kindOf(err), err)
			}
		}()
	}
	wg.Wait()
	return first
}

// removeJob removes the given containers at once, then whatever else is
// labelled with the job ("" for every job: crash clean-up), and, with
// withNetwork, the job's networks.
func (b *Backend) removeJob(ctx context.Context, jobID string, ids []string, withNetwork bool) error {
	var first error
	keep := func(err error) {
		if err != nil && !cerrdefs.IsNotFound(err) && first == nil {
			first = errs.Wrap("docker: teardown", kindOf(err), err)
		}
	}
	if err := b.removeContainers(ctx, ids); err != nil {
		first = err
	}
	label := LabelJob
	if jobID != "" {
		label += "=" + jobID
	}
	f := filters.NewArgs(filters.Arg("label", label))
	// What Setup could not track (a creation that failed on the client's
	// side after the engine made it): one list, usually empty.
	cs, err := b.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	keep(err)
	left := make([]string, 0, len(cs))
	for _, c := range cs {
		left = append(left, c.ID)
	}
	if err := b.removeContainers(ctx, left); err != nil && first == nil {
		first = err
	}
	if !withNetwork && jobID != "" {
		return first
	}
	ns, err := b.cli.NetworkList(ctx, network.ListOptions{Filters: f})
	keep(err)
	for _, n := range ns {
		keep(b.cli.NetworkRemove(ctx, n.ID))
	}
	return first
}

// CleanupAll removes whatever any job left behind (after a crash).
func (b *Backend) CleanupAll(ctx context.Context) error { return b.removeJob(ctx, "", nil, true) }
