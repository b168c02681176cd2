// Package backend defines the sandbox a job runs in. Implementations live in
// sub-packages: host (child processes, for development), docker (one container
// per job), and fake (scripted, for tests of the executor).
//
// Contract for every implementation:
//   - Setup makes a fresh sandbox for exactly one job; a Backend is safe for
//     concurrent use (the executor sets up several jobs at once).
//   - A Sandbox runs one process at a time (steps of a job are sequential).
//   - Exec returns promptly when ctx ends, having killed the process and all
//     of its children; it never blocks on a dead process or container.
//   - Teardown always runs (the executor defers it), is safe to call twice, and
//     removes everything Setup made: processes, containers, networks, volumes.
package backend

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Backend makes one fresh sandbox per job.
type Backend interface {
	// Name is a short identifier: "host", "docker", "fake".
	Name() string
	// Setup creates the job's sandbox. On error, nothing is left behind.
	// Output (image pulls, service start-up) goes to log.
	Setup(ctx context.Context, job *JobSpec, log io.Writer) (Sandbox, error)
}

// ErrNoRoom, wrapped in a Setup error, says the backend could not place
// the sandbox in time (a pod still Pending past its deadline): the
// cluster has no room or cannot start pods, and the job may run
// elsewhere.
var ErrNoRoom = errors.New("no room for the sandbox")

// Sandbox is one job's isolated environment.
type Sandbox interface {
	// Exec runs one process to completion and returns its exit code. stdout
	// and stderr go, merged in order, to out as they are produced.
	Exec(ctx context.Context, p *Process, out io.Writer) (exitCode int, err error)
	// Dirs tells where the job directory is: the executor writes files under
	// Dirs().Host, processes in the sandbox see the same files under
	// Dirs().Sandbox.
	Dirs() Dirs
	// Teardown removes the sandbox. Safe to call twice.
	Teardown(ctx context.Context) error
}

// Describer is an optional Sandbox ability: a line saying how steps run
// (for example "step runner in container abc123" or "docker exec").
type Describer interface {
	Describe() string
}

// ContainerRunner is an optional Sandbox ability used for container actions
// (uses: docker://image, or an action with runs.using: docker): run one step
// in a container of its own, with the job directory mounted at the same
// Dirs().Sandbox path as the job's processes see it, on the job's network.
type ContainerRunner interface {
	RunContainer(ctx context.Context, c *ContainerStep, out io.Writer) (exitCode int, err error)
	// BuildImage builds contextDir (a host path) with the given Dockerfile
	// (relative to contextDir) and tags it.
	BuildImage(ctx context.Context, contextDir, dockerfile, tag string, out io.Writer) error
}

// NodeProvider is an optional Sandbox ability: the Node.js programs that
// may run JavaScript actions (runs.using: node12|16|20|24), best first.
// The executor checks their versions and picks one. Sandboxes without it
// offer "node" of unknown version.
type NodeProvider interface {
	// Nodes may make a program available first (a remote engine copies
	// Conveyor's node into the container on the first call that needs it).
	Nodes(ctx context.Context) ([]Node, error)
}

// Node is a Node.js program of a sandbox.
type Node struct {
	// Argv starts a Process's argv: ["node"] is the one on the sandbox's
	// base PATH (before any step changed it); a longer one runs node
	// through a loader.
	Argv []string
	// Version is what `node --version` says (v20.11.1) when the backend
	// knows it for sure; "": the executor asks the program.
	Version string
}

// Dirs is the job directory as seen from both sides.
type Dirs struct {
	Host    string
	Sandbox string
	// ToolCache is RUNNER_TOOL_CACHE as the sandbox sees it: a folder that
	// outlives the job (setup-* actions install toolchains there once per
	// machine). "": none, the executor gives each job a folder of its own.
	ToolCache string
}

// Process is one command to run in a sandbox.
type Process struct {
	Argv []string
	// Env is added to the sandbox's base environment (the host's for the
	// host backend, the image's for containers).
	Env map[string]string
	// PathPrepend holds directories put before the base PATH, first first
	// (from GITHUB_PATH).
	PathPrepend []string
	// Dir is the working directory, as the sandbox sees it.
	Dir string
	// Fallback, when set, runs instead of Argv when Argv[0] is not found in
	// the sandbox's PATH (PathPrepend and Env's PATH included). The default
	// run: shell is bash -e where the sandbox has bash and sh -e elsewhere;
	// the sandbox decides per process without a shell started to ask.
	Fallback []string
	// NoFiles says the process reads and writes nothing of the job
	// directory (node --version): a sandbox that copies the job folder
	// around each process (a remote Docker engine) may skip that.
	NoFiles bool
}

// ContainerStep is a step that runs in a container of its own.
type ContainerStep struct {
	Image      string
	Entrypoint []string // empty: the image's
	Args       []string // empty: the image's CMD
	Env        map[string]string
	Dir        string // working directory (sandbox path); empty: the image's
}

// JobSpec is what a backend needs to make a job's sandbox.
type JobSpec struct {
	// ID is unique per job attempt; backends use it to name what they make.
	ID string
	// Name is for display (job name with matrix values).
	Name string
	// JobDir is a host directory the executor made for this job (workspace,
	// temp files, GITHUB_* files). The sandbox makes it available at
	// Dirs().Sandbox (the same path for the host backend).
	JobDir string
	// Image is the container image for the job (from runs-on via the
	// platform mapping, or from container.image). Ignored by host.
	Image string
	// Container holds the rest of a job's container: settings.
	Container *Container
	// Services are started before the first step and reachable by name.
	Services []Service
	// Resources are per-job limits (zero: no limit).
	Resources Resources
	// Network is the job's network policy ("" is NetworkOpen). A backend
	// that cannot enforce a policy refuses the job (Invalid or Unavailable).
	Network NetworkPolicy
	// Runtime is the OCI runtime of the job's containers (e.g. runsc for
	// gVisor, kata-runtime); "" is the engine's default. A backend without
	// it refuses the job.
	Runtime string
	// Tenant is whom the job runs for (zero for conveyor run); backends
	// that keep tenants apart (kubernetes: a namespace per organisation)
	// place and label the sandbox by it.
	Tenant Tenant
	// Placement says which machines may run the sandbox (from the
	// runs-on labels' profiles): the kubernetes backend makes it the
	// pod's nodeSelector and tolerations; backends of one machine ignore
	// it.
	Placement Placement
	// Timeout is the job's timeout-minutes as the executor enforces it
	// (0: not known). A backend that bounds a sandbox's life itself
	// (kubernetes: activeDeadlineSeconds) allows this plus room for the
	// cleanup steps and the teardown that follow a timeout.
	Timeout time.Duration
	// ImageSteps are the job's steps known, before its first step, to
	// need another image (uses: docker://IMAGE, Docker actions fetched in
	// advance). A backend that starts containers with the sandbox
	// (kubernetes: step containers of the pod, ordered by wait files) may
	// prepare them; the others ignore it. RunContainer must still accept
	// any image.
	ImageSteps []ImageStepPlan
}

// ImageStepPlan is a step announced in JobSpec.ImageSteps.
type ImageStepPlan struct {
	// Step names the step for messages (its id, or its position).
	Step string
	// Image is the image as RunContainer will get it (no docker://).
	Image string
}

// Placement says which machines may run a sandbox.
type Placement struct {
	// NodeSelector are node labels the machine must carry.
	NodeSelector map[string]string
	// Tolerations let the sandbox run on machines with matching taints.
	Tolerations []Toleration
}

// Toleration lets a sandbox run on machines with a matching taint, as
// Kubernetes' toleration does.
type Toleration struct {
	Key string
	// Operator is Equal (Value must match) or Exists (any value).
	Operator string
	Value    string
	// Effect is NoSchedule, PreferNoSchedule, NoExecute or "" (all).
	Effect string
	// Seconds is how long a NoExecute taint is tolerated (nil: forever).
	Seconds *int64
}

// Tenant names a server job's organisation, repository, run and job
// (store IDs) and its lease's fencing token.
type Tenant struct {
	Org, Repo                  string
	OrgID, RunID, JobID, Lease int64
	// MaxJobs is the organisation's quota of concurrent jobs (0: none).
	MaxJobs int
}

// NetworkPolicy says what a job's sandbox may reach.
type NetworkPolicy string

const (
	// NetworkOpen: anything the machine reaches, as on GitHub's runners.
	NetworkOpen NetworkPolicy = "open"
	// NetworkNoPrivate: public addresses only: private, link-local and
	// carrier-grade NAT ranges and the machine's own addresses are denied;
	// the job's own services stay reachable.
	NetworkNoPrivate NetworkPolicy = "no-private"
	// NetworkNone: nothing but the job's own services.
	NetworkNone NetworkPolicy = "none"
)

// ParseNetworkPolicy reads a policy name ("" is NetworkOpen).
func ParseNetworkPolicy(s string) (NetworkPolicy, error) {
	switch p := NetworkPolicy(s); p {
	case "", NetworkOpen:
		return NetworkOpen, nil
	case NetworkNoPrivate, NetworkNone:
		return p, nil
	}
	return "", errs.E("network policy", errs.Invalid, "unknown network policy %q (open, no-private or none)", s)
}

// Container is a job's container: section, expressions already evaluated.
type Container struct {
	Image       string
	Env         map[string]string
	Options     string // docker create options, e.g. "--cpus 1 --hostname h"
	Volumes     []string
	Ports       []string
	Credentials *Credentials
}

// Service is one entry of a job's services: section.
type Service struct {
	Name        string // the key; the service is reachable by this host name
	Image       string
	Env         map[string]string
	Options     string
	Volumes     []string
	Ports       []string
	Credentials *Credentials
}

// Credentials for a private registry.
type Credentials struct {
	Username string
	Password string
}

// Resources are limits for a job's sandbox.
type Resources struct {
	CPUs        float64 // e.g. 1.5; 0: no limit
	MemoryBytes int64   // 0: no limit
	PidsLimit   int64   // 0: backend default
}
