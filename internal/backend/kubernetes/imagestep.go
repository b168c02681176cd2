package kubernetes

// Steps that need another image (uses: docker://image, Docker actions)
// run as ephemeral containers of the job's pod: the pods/ephemeralcontainers
// subresource (GA since Kubernetes 1.25, what `kubectl debug` uses) adds a
// container to the running pod with the step's image. Kubernetes applies
// the image's own ENTRYPOINT and CMD when the step gives none, so no
// registry is asked for the image's configuration. The container shares
// the job container's process namespace (targetContainerName), so the
// step runner can signal it on cancel; it mounts the job folder at the
// same path as the job container, its output is the container's log
// (followed through the API) and its exit code the step's.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/jobsync"
	"github.com/conveyor-ci/conveyor/internal/backend/runner"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

var _ backend.ContainerRunner = (*Sandbox)(nil)

// stepKillTimeout bounds a cancelled image step's end: SIGTERM, the pod's
// grace period, SIGKILL, then the wait for the container to be seen
// terminated.
const stepKillTimeout = 15 * time.Second

// RunContainer implements backend.ContainerRunner: the step runs in an
// ephemeral container of the job's pod with the job folder at the same
// path as the job's other steps see it. Its output is the container's
// log, streamed as it comes; on cancel the step runner signals the
// container's processes (SIGTERM, then SIGKILL after the grace period).
func (s *Sandbox) RunContainer(ctx context.Context, c *backend.ContainerStep, out io.Writer) (int, error) {
	if c.Image == "" {
		return -1, errs.E("kubernetes: image step", errs.Invalid, "no image")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sync.Push(ctx); err != nil {
		return -1, err
	}
	var code int
	var err error
	if w := s.waiterFor(c.Image); w != nil {
		code, err = s.runInWaiter(ctx, w, c, out)
	} else {
		code, err = s.runImageStep(ctx, c, out)
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jobsync.PullTimeout(ctx))
	defer cancel()
	if perr := s.sync.Pull(pctx); err == nil && perr != nil {
		return code, perr
	}
	return code, err
}

// BuildImage implements backend.ContainerRunner: the kubernetes backend
// has no image builder (the nodes pull images; building one in the
// cluster needs a builder and a registry to push to), so a Dockerfile
// action is refused with what to do instead.
func (s *Sandbox) BuildImage(ctx context.Context, contextDir, dockerfile, tag string, out io.Writer) error {
	return errs.E("kubernetes: build "+dockerfile, errs.Unavailable,
		"the kubernetes backend cannot build a Dockerfile action's image (the cluster's nodes pull images, nothing builds them); "+
			"build and push the image, then use it as `runs.image: docker://IMAGE` in the action, or run this job on the docker backend")
}

// runImageStep adds the step's ephemeral container, streams its log and
// waits for its exit code.
func (s *Sandbox) runImageStep(ctx context.Context, c *backend.ContainerStep, out io.Writer) (int, error) {
	s.imageSteps++
	name := fmt.Sprintf("step-%d", s.imageSteps)
	if err := s.addEphemeral(ctx, s.ephemeralContainer(name, c)); err != nil {
		return -1, err
	}
	// Start: the image is pulled (or found) and the process started, within
	// StartTimeout.
	sctx, cancel := context.WithTimeout(ctx, s.b.opts.StartTimeout)
	p, err := s.waitPod(sctx, "image step "+c.Image+" to start", stepState(name, false))
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			s.stopImageStep(ctx, name, p)
			return -1, ctx.Err()
		}
		if errs.Is(err, errs.Timeout) {
			// It may start later: it must not run beside the next steps.
			s.stopImageStep(ctx, name, p)
		}
		return -1, err
	}
	if err := s.followLog(ctx, name, out); err != nil && ctx.Err() == nil {
		fmt.Fprintf(out, "conveyor: the log of %s ended early: %v\n", name, err)
	}
	p, err = s.waitPod(ctx, "image step "+c.Image+" to end", stepState(name, true))
	if err != nil {
		if ctx.Err() != nil {
			s.stopImageStep(ctx, name, p)
			return -1, ctx.Err()
		}
		return -1, err
	}
	st, _ := ephemeralStatus(p, name)
	t := st.State.Terminated
	if t.ExitCode != 0 && (t.Reason == "StartError" || t.Reason == "ContainerCannotRun") {
		return -1, errs.E("kubernetes: image step "+c.Image, errs.Invalid, "the container could not start: %s", terminated(t))
	}
	if t.Reason == "OOMKilled" {
		fmt.Fprintf(out, "conveyor: image step %s was killed: out of memory\n", c.Image)
	}
	return int(t.ExitCode), nil
}

// ephemeralContainer is the step's container. Kubernetes expands $(VAR)
// in command, args and env values; they are escaped so that the step
// sees them as written, as Docker does.
func (s *Sandbox) ephemeralContainer(name string, c *backend.ContainerStep) corev1.EphemeralContainer {
	env := envVars(c.Env, nil)
	for i := range env {
		env[i].Value = escapeExpansion(env[i].Value)
	}
	return corev1.EphemeralContainer{
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name:                     name,
			Image:                    c.Image,
			ImagePullPolicy:          s.b.opts.PullPolicy,
			Command:                  escapeAll(c.Entrypoint),
			Args:                     escapeAll(c.Args),
			WorkingDir:               c.Dir,
			Env:                      env,
			SecurityContext:          hardened(s.b.opts.RunAsUser),
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			VolumeMounts:             []corev1.VolumeMount{{Name: volWorkspace, MountPath: s.b.opts.SandboxDir}},
		},
		// In the job container's process namespace: the step runner, its
		// PID 1, sees the step's processes and can signal them.
		TargetContainerName: jobContainer,
	}
}

// addEphemeral adds ec to the pod with one strategic-merge patch of the
// ephemeralcontainers subresource (RBAC: patch on pods/ephemeralcontainers).
func (s *Sandbox) addEphemeral(ctx context.Context, ec corev1.EphemeralContainer) error {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"ephemeralContainers": []corev1.EphemeralContainer{ec}}})
	if err != nil {
		return errs.Wrap("kubernetes: image step", errs.Invalid, err)
	}
	_, err = s.b.cs.CoreV1().Pods(s.ns).Patch(ctx, s.name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "ephemeralcontainers")
	const op = "kubernetes: add the image step's container to pod "
	switch {
	case apierrors.IsForbidden(err):
		return errs.E(op+s.name, errs.Forbidden, "%v (steps that need another image need patch on pods/ephemeralcontainers and get on pods/log: see the RBAC of docs/kubernetes.md)", err)
	case apierrors.IsNotFound(err):
		return errs.E(op+s.name, errs.Unavailable, "%v (the pod is gone, or the cluster does not serve pods/ephemeralcontainers: steps that need another image need Kubernetes 1.25 or later)", err)
	case err != nil:
		return errs.Wrap(op+s.name, kindOf(err), err)
	}
	return nil
}

// followLog copies the container's log, as it comes, to out until the
// container ends or ctx does.
func (s *Sandbox) followLog(ctx context.Context, name string, out io.Writer) error {
	rc, err := s.b.cs.CoreV1().Pods(s.ns).GetLogs(s.name, &corev1.PodLogOptions{Container: name, Follow: true}).Stream(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(out, rc)
	return err
}

// stopImageStep ends a cancelled step's processes through the step
// runner (SIGTERM, the grace period, SIGKILL) and waits, boundedly, for
// the container to be seen terminated. A container that never started
// has nothing to end; if it still cannot be signalled, the pod's deletion
// at teardown ends it.
func (s *Sandbox) stopImageStep(ctx context.Context, name string, last *corev1.Pod) {
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stepKillTimeout)
	defer cancel()
	if last == nil {
		last, _ = s.b.cs.CoreV1().Pods(s.ns).Get(kctx, s.name, metav1.GetOptions{})
	}
	st, _ := ephemeralStatus(last, name)
	if st.State.Terminated != nil {
		return
	}
	if st.ContainerID == "" {
		// Not started yet: wait for it to start (or fail) to learn its ID.
		p, err := s.waitPod(kctx, "cancelled image step to start", stepState(name, false))
		if err != nil {
			return
		}
		st, _ = ephemeralStatus(p, name)
	}
	id := containerID(st.ContainerID)
	if id == "" || st.State.Terminated != nil {
		return
	}
	for _, sig := range []string{"TERM", "KILL"} {
		_, _ = s.c.Run(kctx, &runner.Request{Argv: []string{"sh", "-c", killScript, "sh", id, sig}}, io.Discard)
		wctx, wcancel := context.WithTimeout(kctx, s.b.opts.GracePeriod)
		_, err := s.waitPod(wctx, "cancelled image step to end", stepState(name, true))
		wcancel()
		if err == nil {
			return
		}
	}
}

// killScript signals ($2) every process of the container whose ID is $1,
// found by its cgroup; it runs in the job container, which shares its
// process namespace with the step's, with shell built-ins only.
const killScript = `id=$1 sig=$2
for p in /proc/[0-9]*; do
	while read -r l; do
		case $l in *"$id"*) kill -"$sig" "${p#/proc/}" 2>/dev/null; break ;; esac
	done < "$p/cgroup" 2>/dev/null
done
exit 0`

// containerID is the runtime's ID of a container ("containerd://ID").
func containerID(s string) string {
	if _, id, ok := strings.Cut(s, "://"); ok {
		return id
	}
	return s
}

// ephemeralStatus is the status of the pod's ephemeral container name.
func ephemeralStatus(p *corev1.Pod, name string) (corev1.ContainerStatus, bool) {
	if p == nil {
		return corev1.ContainerStatus{}, false
	}
	for _, st := range p.Status.EphemeralContainerStatuses {
		if st.Name == name {
			return st, true
		}
	}
	return corev1.ContainerStatus{}, false
}

// stepState is a waitPod condition: the ephemeral container name has
// started (or already ended), or with ended, has ended.
func stepState(name string, ended bool) func(*corev1.Pod) (bool, error) {
	return func(p *corev1.Pod) (bool, error) {
		switch p.Status.Phase {
		case corev1.PodFailed, corev1.PodSucceeded:
			return false, errs.E("kubernetes: pod "+p.Name, errs.Other, "pod ended (%s) during an image step: %s %s", p.Status.Phase, p.Status.Reason, p.Status.Message)
		}
		st, ok := ephemeralStatus(p, name)
		if !ok {
			return false, nil
		}
		if err := containerFailed(st); err != nil {
			return false, err
		}
		if st.State.Terminated != nil {
			return true, nil
		}
		return !ended && st.State.Running != nil, nil
	}
}

// escapeExpansion makes Kubernetes' $(VAR) expansion leave s as it is:
// $$ becomes $, so every $ is doubled.
func escapeExpansion(s string) string { return strings.ReplaceAll(s, "$", "$$") }

func escapeAll(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = escapeExpansion(s)
	}
	return out
}
