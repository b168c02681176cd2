package agent

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/stepwait"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// StepContainers is a backend (the host backend of a job pod's main
// container) whose sandboxes run the steps of the images that have a
// step container in that container: the step is handed over with its
// wait files (package stepwait) from this process, no process started
// per step. Steps of other images go to the backend's own sandbox (which
// cannot run containers in a pod: the step fails with its clear error).
// When the sandbox is torn down, the step containers are told to exit.
type StepContainers struct {
	backend.Backend
	Containers []stepwait.Container
	// Grace is how long a cancelled step may take to end (the step
	// container's SIGTERM, grace period, SIGKILL); 0: 15 s.
	Grace time.Duration
}

// Setup implements backend.Backend.
func (b StepContainers) Setup(ctx context.Context, job *backend.JobSpec, log io.Writer) (backend.Sandbox, error) {
	sb, err := b.Backend.Setup(ctx, job, log)
	if err != nil || len(b.Containers) == 0 {
		return sb, err
	}
	return &stepSandbox{Sandbox: sb, cs: b.Containers, grace: b.Grace, next: map[string]int{}, lost: map[string]bool{}}, nil
}

// stepSandbox is a sandbox with the pod's step containers.
type stepSandbox struct {
	backend.Sandbox
	cs    []stepwait.Container
	grace time.Duration
	mu    sync.Mutex
	next  map[string]int  // by dir: steps handed over so far
	lost  map[string]bool // by dir: the container failed
}

var (
	_ backend.ContainerRunner = (*stepSandbox)(nil)
	_ backend.NodeProvider    = (*stepSandbox)(nil)
	_ backend.Describer       = (*stepSandbox)(nil)
)

// Nodes implements backend.NodeProvider: the wrapped sandbox's.
func (s *stepSandbox) Nodes(ctx context.Context) ([]backend.Node, error) {
	if np, ok := s.Sandbox.(backend.NodeProvider); ok {
		return np.Nodes(ctx)
	}
	return []backend.Node{{Argv: []string{"node"}}}, nil
}

// Describe implements backend.Describer: the wrapped sandbox's, and the
// step containers.
func (s *stepSandbox) Describe() string {
	d := "host processes"
	if ds, ok := s.Sandbox.(backend.Describer); ok {
		d = ds.Describe()
	}
	images := make([]string, len(s.cs))
	for i, c := range s.cs {
		images[i] = c.Image
	}
	return d + "; image steps in step containers of the pod (" + strings.Join(images, ", ") + ")"
}

func (s *stepSandbox) container(image string) *stepwait.Container {
	for i := range s.cs {
		if s.cs[i].Image == image {
			return &s.cs[i]
		}
	}
	return nil
}

// RunContainer implements backend.ContainerRunner: c runs in its image's
// step container, with the exit codes and cancel of the attach layout's
// step-run.
func (s *stepSandbox) RunContainer(ctx context.Context, c *backend.ContainerStep, out io.Writer) (int, error) {
	sc := s.container(c.Image)
	if sc == nil {
		if cr, ok := s.Sandbox.(backend.ContainerRunner); ok {
			return cr.RunContainer(ctx, c, out)
		}
		return -1, errs.E("image step", errs.Unavailable, "%s has no step container in this job's pod (its image was not announced before the job or its configuration could not be looked up), and the pod cannot start containers", c.Image)
	}
	op := "image step " + c.Image
	argv := sc.Argv(c.Entrypoint, c.Args)
	if len(argv) == 0 {
		return -1, errs.E(op, errs.Invalid, "the image has no ENTRYPOINT or CMD and the step gives no entrypoint")
	}
	s.mu.Lock()
	if s.lost[sc.Dir] {
		s.mu.Unlock()
		return -1, errs.E(op, errs.Unavailable, "its step container failed earlier in this job")
	}
	s.next[sc.Dir]++
	n := s.next[sc.Dir]
	s.mu.Unlock()
	grace := s.grace
	if grace <= 0 {
		grace = 15 * time.Second
	}
	code, err := stepwait.Run(ctx, sc.Dir, n, &stepwait.Spec{Argv: argv, Env: c.Env, Dir: c.Dir}, out, stepwait.RunOptions{Grace: grace})
	switch {
	case ctx.Err() != nil:
		if err != nil && code == stepwait.CodeLost {
			s.setLost(sc.Dir)
		}
		return -1, ctx.Err()
	case err != nil && code == stepwait.CodeLost:
		s.setLost(sc.Dir)
		return -1, errs.Wrap(op, errs.Unavailable, fmt.Errorf("the step container failed: %w", err))
	case err != nil:
		// The program could not start (CodeNotStart): the step's
		// output says why, as step-run does.
		fmt.Fprintln(out, "conveyor:", err)
	}
	return code, nil
}

func (s *stepSandbox) setLost(dir string) {
	s.mu.Lock()
	s.lost[dir] = true
	s.mu.Unlock()
}

// BuildImage implements backend.ContainerRunner: a pod cannot build.
func (s *stepSandbox) BuildImage(ctx context.Context, contextDir, dockerfile, tag string, out io.Writer) error {
	if cr, ok := s.Sandbox.(backend.ContainerRunner); ok {
		return cr.BuildImage(ctx, contextDir, dockerfile, tag, out)
	}
	return errs.E("build image", errs.Unavailable, "a Dockerfile action needs a Docker engine: this job's pod cannot build images")
}

// Teardown implements backend.Sandbox: the step containers are told to
// exit (those whose steps were skipped still wait), then the sandbox is
// torn down.
func (s *stepSandbox) Teardown(ctx context.Context) error {
	dirs := make([]string, len(s.cs))
	for i, c := range s.cs {
		dirs[i] = c.Dir
	}
	endErr := stepwait.End(dirs...)
	if err := s.Sandbox.Teardown(ctx); err != nil {
		return err
	}
	return endErr
}
