package kubernetes

// The wait-file layout: the steps announced in JobSpec.ImageSteps whose
// image's configuration the registry gives run in step containers of the
// job's pod, one per image, started with the pod. A step container's
// command is the conveyor binary on the runner volume (`conveyor
// step-wait`), which waits for its steps' spec files on a volume shared
// with the job container (see package stepwait). The step runner, in the
// job container, hands each step over with `conveyor step-run` over the
// one attach stream the job already has: no API call per step. The
// image's ENTRYPOINT and CMD, which a container command replaces, come
// from the registry (Options.Images): Kubernetes does not expose them.
//
// Steps of other images, and every step when the registry cannot be
// asked, run as ephemeral containers (imagestep.go).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/runner"
	"github.com/conveyor-ci/conveyor/internal/backend/stepwait"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/imageconfig"
)

const (
	volSteps = "conveyor-steps"
	// stepsDir holds a folder per step container, in the job container
	// and in each step container.
	stepsDir = "/__conveyor-steps"
)

// ImageConfigs gives an image's configuration from its registry
// (*imageconfig.Resolver).
type ImageConfigs interface {
	Config(ctx context.Context, ref string) (imageconfig.Config, error)
}

// waiter is a step container of the pod: it serves the steps of image.
type waiter struct {
	name  string // the container's name
	image string
	cfg   imageconfig.Config
	next  int  // steps handed to it so far
	lost  bool // it failed: the image's next steps are ephemeral
}

func (w *waiter) dir() string { return stepsDir + "/" + w.name }

// argv is the step's program as the container would run it, by
// Kubernetes' rules (those of docker run): the step's entrypoint or the
// image's; the step's args, else the image's CMD unless the step gave an
// entrypoint.
func (w *waiter) argv(c *backend.ContainerStep) []string {
	return w.container().Argv(c.Entrypoint, c.Args)
}

// container is w as the pod's worker gets it (worker layout).
func (w *waiter) container() *stepwait.Container {
	return &stepwait.Container{Image: w.image, Dir: w.dir(), Entrypoint: w.cfg.Entrypoint, Cmd: w.cfg.Cmd}
}

// planWaiters looks up the configuration of each image announced in
// job.ImageSteps (in parallel, each bounded by the resolver's timeout);
// an image whose lookup fails keeps the ephemeral path, said at debug
// level.
func (b *Backend) planWaiters(ctx context.Context, job *backend.JobSpec) []*waiter {
	if b.opts.Images == nil || len(job.ImageSteps) == 0 {
		return nil
	}
	var images []string
	seen := map[string]bool{}
	for _, p := range job.ImageSteps {
		if p.Image != "" && !seen[p.Image] {
			seen[p.Image] = true
			images = append(images, p.Image)
		}
	}
	ws := make([]*waiter, len(images))
	var wg sync.WaitGroup
	for i, img := range images {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg, err := b.opts.Images.Config(ctx, img)
			if err != nil {
				b.log().DebugContext(ctx, "kubernetes: image step in an ephemeral container: no image config", "job", job.ID, "image", img, "err", err)
				return
			}
			ws[i] = &waiter{image: img, cfg: cfg}
		}()
	}
	wg.Wait()
	var out []*waiter
	for _, w := range ws {
		if w != nil {
			w.name = fmt.Sprintf("image-%d", len(out)+1)
			out = append(out, w)
		}
	}
	return out
}

func (b *Backend) log() *slog.Logger {
	if b.opts.Log != nil {
		return b.opts.Log
	}
	return slog.New(slog.DiscardHandler)
}

// addWaiters adds the step containers to pod, and the steps volume to
// it and to the job container.
func (b *Backend) addWaiters(pod *corev1.Pod, ws []*waiter) {
	if len(ws) == 0 {
		return
	}
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: volSteps, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	mount := corev1.VolumeMount{Name: volSteps, MountPath: stepsDir}
	var res corev1.ResourceRequirements
	for i := range pod.Spec.Containers {
		if c := &pod.Spec.Containers[i]; c.Name == jobContainer {
			c.VolumeMounts = append(c.VolumeMounts, mount)
			res = stepResources(c.Resources)
		}
	}
	for _, w := range ws {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{
			Name:            w.name,
			Image:           w.image,
			ImagePullPolicy: b.opts.PullPolicy,
			// Args stay empty: Kubernetes then ignores the image's CMD too.
			Command:         []string{runnerPath, "step-wait", "--dir", w.dir(), "--grace", b.opts.GracePeriod.String()},
			Resources:       res,
			SecurityContext: hardened(b.opts.RunAsUser),
			VolumeMounts: []corev1.VolumeMount{
				{Name: volWorkspace, MountPath: b.opts.SandboxDir},
				{Name: volRunner, MountPath: runnerDir, ReadOnly: true},
				mount,
			},
		})
	}
}

// stepResources are a step container's: the job's limits (a step may use
// what a step of the job container may), with small requests (it idles
// while the job container works, and the other way round).
func stepResources(job corev1.ResourceRequirements) corev1.ResourceRequirements {
	if len(job.Limits) == 0 {
		return corev1.ResourceRequirements{}
	}
	req := corev1.ResourceList{}
	if _, ok := job.Limits[corev1.ResourceCPU]; ok {
		req[corev1.ResourceCPU] = resource.MustParse("10m")
	}
	if _, ok := job.Limits[corev1.ResourceMemory]; ok {
		req[corev1.ResourceMemory] = resource.MustParse("16Mi")
	}
	return corev1.ResourceRequirements{Limits: job.Limits.DeepCopy(), Requests: req}
}

// waiterFailed says whether err (a pod's start) is about one of ws's
// containers (its image cannot be pulled, it does not start).
func waiterFailed(err error, ws []*waiter) bool {
	var ce *containerError
	if !errors.As(err, &ce) {
		return false
	}
	for _, w := range ws {
		if ce.name == w.name {
			return true
		}
	}
	return false
}

// waiterFor is the pod's step container for image, if it has one.
func (s *Sandbox) waiterFor(image string) *waiter {
	for _, w := range s.waiters {
		if w.image == image && !w.lost {
			return w
		}
	}
	return nil
}

// runInWaiter hands the step to w through the step runner (conveyor
// step-run in the job container) and returns its exit code. A cancelled
// step is waited for, boundedly, so that it does not run beside the next.
func (s *Sandbox) runInWaiter(ctx context.Context, w *waiter, c *backend.ContainerStep, out io.Writer) (int, error) {
	op := "kubernetes: image step " + c.Image
	argv := w.argv(c)
	if len(argv) == 0 {
		return -1, errs.E(op, errs.Invalid, "the image has no ENTRYPOINT or CMD and the step gives no entrypoint")
	}
	spec, err := json.Marshal(stepwait.Spec{Argv: argv, Env: c.Env, Dir: c.Dir})
	if err != nil {
		return -1, errs.Wrap(op, errs.Invalid, err)
	}
	w.next++
	n := strconv.Itoa(w.next)
	// Served inside the step runner (a builtin) when it has it; the same
	// command line otherwise.
	grace := s.b.opts.GracePeriod + 2*time.Second // the step container's TERM, grace, KILL
	req := &runner.Request{Builtin: stepwait.BuiltinName, Argv: []string{runnerPath, "step-run", "--dir", w.dir(), "--n", n, "--grace", grace.String()}}
	code, err := s.c.RunInput(ctx, req, bytes.NewReader(spec), out)
	switch {
	case ctx.Err() != nil:
		if !s.stepEnded(ctx, w, n, stepKillTimeout) {
			w.lost = true
		}
		return -1, ctx.Err()
	case err != nil:
		w.lost = true
		return -1, err
	case code == stepwait.CodeLost && !s.stepEnded(ctx, w, n, time.Millisecond):
		// Not the step's own 125: the step container is gone or its
		// files unusable (step-run said why in the step's output).
		w.lost = true
		return -1, errs.E(op, errs.Unavailable, "the step container %s failed (see the step's output)", w.name)
	}
	return code, nil
}

// stepEnded asks, through the step runner, whether step n of w has
// ended, waiting up to d for it.
func (s *Sandbox) stepEnded(ctx context.Context, w *waiter, n string, d time.Duration) bool {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d+10*time.Second)
	defer cancel()
	req := &runner.Request{Builtin: stepwait.BuiltinName, Argv: []string{runnerPath, "step-run", "--dir", w.dir(), "--n", n, "--await", d.String()}}
	code, err := s.c.Run(actx, req, io.Discard)
	return err == nil && code == 0
}

// endWaiters tells the step containers to exit (those whose steps were
// skipped still wait), so that the pod ends cleanly; bounded, best
// effort: the pod's deletion ends them anyway.
func (s *Sandbox) endWaiters(ctx context.Context) {
	if len(s.waiters) == 0 || s.c == nil {
		return
	}
	args := []string{runnerPath, "step-run", "--end"}
	for _, w := range s.waiters {
		args = append(args, w.dir())
	}
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, _ = s.c.Run(ectx, &runner.Request{Builtin: stepwait.BuiltinName, Argv: args}, io.Discard)
}

// ImageConfigs checks that the configuration of each of images can be
// looked up (Options.Images), as their step containers need: the worker
// layout runs a job's docker:// steps only then. The lookup's cache makes
// the pod's own lookups (planWaiters) cheap.
func (b *Backend) ImageConfigs(ctx context.Context, images []string) error {
	if b.opts.Images == nil {
		return errs.E("kubernetes: image config", errs.Unavailable, "no registry lookup is configured")
	}
	for _, img := range images {
		if _, err := b.opts.Images.Config(ctx, img); err != nil {
			return errs.Wrap("kubernetes: image config of "+img, errs.KindOf(err), err)
		}
	}
	return nil
}
