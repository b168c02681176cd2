package kubernetes

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/stepwait"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// The worker layout. Setup's pod is driven from outside: the executor of
// the Conveyor process that made it runs each step over one attach
// stream. A worker pod drives itself: its main container runs the
// one-job worker (conveyor agent one-job), which fetches the job and its
// source from the server, runs the steps as processes of its own
// container (a process spawn per step, no API call) and reports to the
// server with a credential valid for that job only. The backend only
// makes the pod, streams the static binary in as for Setup, waits for
// the worker to end and deletes the pod:
//   - the runner install container and the services are native sidecars
//     (Kubernetes 1.29 and later; see WorkerPods); a service's health
//     check is also its startup probe, so that the worker starts once the
//     services are healthy;
//   - the workspace is the emptyDir at SandboxDir, which the services
//     share, as in Setup's pod;
//   - the worker's last output is its termination message, so that a
//     worker that dies says why without a log read.

// WorkerPod is a job whose pod runs its steps itself.
type WorkerPod struct {
	// Job is the pod's job: image, services, resources, tenant (labels
	// and namespace), placement and timeout as for Setup. Its JobDir is
	// not used.
	Job *backend.JobSpec
	// Args follow the conveyor binary in the main container: the one-job
	// worker's command line.
	Args []string
	// Env is the worker's environment: the server's URL, the job, its
	// lease and its credential.
	Env map[string]string
}

// WorkerEnd is how a worker pod's main container ended.
type WorkerEnd struct {
	ExitCode int32
	// Reason is Kubernetes' (OOMKilled, DeadlineExceeded, Error...);
	// Message the worker's last output or the pod's message.
	Reason, Message string
}

// String describes the end for a job's log.
func (e WorkerEnd) String() string {
	s := fmt.Sprintf("exit code %d", e.ExitCode)
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// WorkerPods reports whether the cluster runs worker pods: they need
// native sidecars (Kubernetes 1.29 and later).
func (b *Backend) WorkerPods(ctx context.Context) bool { return b.sidecars(ctx) }

// RunWorkerPod makes wp's pod, streams the runner binary in, waits until
// its worker ends (or ctx ends) and deletes the pod, always. An error
// says the worker never ran (a bad image, a pod that stays Pending past
// PendingTimeout: ErrNoRoom, StartTimeout passed) or could not be
// watched; otherwise WorkerEnd says how it ended.
func (b *Backend) RunWorkerPod(ctx context.Context, wp WorkerPod, log io.Writer) (_ WorkerEnd, err error) {
	if log == nil {
		log = io.Discard
	}
	job := *wp.Job
	if job.JobDir == "" {
		job.JobDir = "-" // none: the worker makes its folders in the pod
	}
	ws := b.planWaiters(ctx, &job)
	spec, err := b.workerPodSpec(&job, wp, ws)
	if err != nil {
		return WorkerEnd{}, err
	}
	if !b.WorkerPods(ctx) {
		return WorkerEnd{}, errs.E("kubernetes: worker pod", errs.Invalid, "the worker layout needs native sidecars (Kubernetes 1.29 or later)")
	}
	if err := b.preparePod(ctx, spec, &job); err != nil {
		return WorkerEnd{}, err
	}
	if len(ws) > 0 {
		fmt.Fprintf(log, "Step containers: %d (images %s)\n", len(ws), waiterImages(ws))
	}
	var end WorkerEnd
	err = withFreshPods(ctx, log, func() (err error) {
		end, err = b.runWorkerPod(ctx, &job, spec, log)
		return err
	})
	return end, err
}

// runWorkerPod makes one pod of spec and runs it to its end; the pod is
// deleted (and gone) before it returns.
func (b *Backend) runWorkerPod(ctx context.Context, job *backend.JobSpec, spec *corev1.Pod, log io.Writer) (_ WorkerEnd, err error) {
	s := &Sandbox{b: b, job: job, ns: spec.Namespace, name: spec.Name}
	defer func() {
		if derr := b.deletePod(context.WithoutCancel(ctx), s.ns, s.name); derr != nil && err == nil {
			err = derr
		}
	}()
	if err := b.createPod(ctx, spec.DeepCopy()); err != nil {
		return WorkerEnd{}, err
	}
	fmt.Fprintf(log, "Created pod %s/%s (worker layout: the pod runs the steps)\n", s.ns, s.name)
	if err := s.startWorker(ctx); err != nil {
		return WorkerEnd{}, err
	}
	p, err := s.waitPod(ctx, "the worker to end", workerEnded)
	if err != nil {
		return WorkerEnd{}, err
	}
	return workerEnd(p), nil
}

// startWorker waits for the pod to be scheduled, streams the binary in
// and waits for the worker to start, within StartTimeout.
func (s *Sandbox) startWorker(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.b.opts.StartTimeout)
	defer cancel()
	if err := s.waitScheduled(ctx); err != nil {
		return err
	}
	if err := s.install(ctx); err != nil {
		return err
	}
	_, err := s.waitPod(ctx, "the worker to start", workerStarted)
	return err
}

// workerPodSpec is Setup's pod with the worker as the main process and
// the services as native sidecars that gate it. With step containers ws
// (the wait-file layout's, for the job's announced docker:// steps), the
// runner's install is an init container, so that their command, the
// installed binary, is there when they start; the worker learns where
// their wait files are from stepwait.EnvContainers.
func (b *Backend) workerPodSpec(job *backend.JobSpec, wp WorkerPod, ws []*waiter) (*corev1.Pod, error) {
	spec, err := b.podSpec(job)
	if err != nil {
		return nil, err
	}
	if len(ws) == 0 {
		asSidecar(spec)
	}
	var services []corev1.Container
	for _, c := range spec.Spec.Containers {
		if c.Name != jobContainer {
			services = append(services, asServiceSidecar(c, b.opts.StartTimeout))
			continue
		}
		main := c
		main.Command = []string{"sh", "-c", `while [ ! -x ` + runnerPath + ` ]; do sleep 0.05 2>/dev/null || sleep 1; done; exec ` + runnerPath + ` "$@"`, "conveyor"}
		main.Args = wp.Args
		main.Stdin, main.StdinOnce = false, false
		main.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
		env := wp.Env
		if len(ws) > 0 {
			env = maps.Clone(env)
			if env == nil {
				env = map[string]string{}
			}
			cs := make([]stepwait.Container, len(ws))
			for i, w := range ws {
				cs[i] = *w.container()
			}
			env[stepwait.EnvContainers] = stepwait.FormatContainers(cs)
		}
		main.Env = append(main.Env, workerEnv(env, b.opts.SandboxDir)...)
		spec.Spec.Containers = []corev1.Container{main}
	}
	spec.Spec.InitContainers = append(spec.Spec.InitContainers, services...)
	b.addWaiters(spec, ws)
	return spec, nil
}

// asServiceSidecar makes a service container a native sidecar whose
// health check (its readiness probe) is also its startup probe, retried
// for up to start.
func asServiceSidecar(c corev1.Container, start time.Duration) corev1.Container {
	c.RestartPolicy = ptr(corev1.ContainerRestartPolicyAlways)
	if r := c.ReadinessProbe; r != nil {
		sp := r.DeepCopy()
		sp.FailureThreshold = max(int32(start.Seconds())/max(sp.PeriodSeconds, 1), 1)
		c.StartupProbe = sp
	}
	return c
}

// workerEnv is the worker's environment, sorted; its folders go in the
// workspace volume.
func workerEnv(env map[string]string, dir string) []corev1.EnvVar {
	all := map[string]string{"CONVEYOR_JOB_DATA": dir + "/conveyor"}
	maps.Copy(all, env)
	out := make([]corev1.EnvVar, 0, len(all))
	for _, k := range slices.Sorted(maps.Keys(all)) {
		out = append(out, corev1.EnvVar{Name: k, Value: all[k]})
	}
	return out
}

// workerStarted: the worker's container runs (or already ended). Images
// that cannot be pulled and pods that failed are errors.
func workerStarted(p *corev1.Pod) (bool, error) {
	if err := podFailed(p); err != nil {
		return false, err
	}
	for _, st := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
		if err := containerFailed(st); err != nil {
			return false, err
		}
		if t := st.State.Terminated; t != nil && st.Name != jobContainer && t.ExitCode != 0 {
			return false, errs.E("kubernetes: start", errs.Other, "container %s exited before the worker started: %s", st.Name, terminated(t))
		}
		if st.Name == jobContainer && (st.State.Running != nil || st.State.Terminated != nil) {
			return true, nil
		}
	}
	return false, nil
}

// workerEnded: the worker's container ended, or the pod did (its
// deadline passed).
func workerEnded(p *corev1.Pod) (bool, error) {
	if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
		return true, nil
	}
	for _, st := range p.Status.ContainerStatuses {
		if st.Name == jobContainer && st.State.Terminated != nil {
			return true, nil
		}
	}
	return false, nil
}

// workerEnd reads how the worker's container ended from its pod.
func workerEnd(p *corev1.Pod) WorkerEnd {
	for _, st := range p.Status.ContainerStatuses {
		if t := st.State.Terminated; st.Name == jobContainer && t != nil {
			e := WorkerEnd{ExitCode: t.ExitCode, Reason: t.Reason, Message: clipTail(t.Message, 2048)}
			if p.Status.Reason != "" && e.Reason != p.Status.Reason {
				e.Reason = join(e.Reason, p.Status.Reason)
			}
			return e
		}
	}
	return WorkerEnd{ExitCode: -1, Reason: p.Status.Reason, Message: p.Status.Message}
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}

// clipTail keeps the last n bytes of s.
func clipTail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
