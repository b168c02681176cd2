package kubernetes

import (
	"context"
	"errors"
	"io"
	"os"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

func openFile(name string) (*os.File, error) { return os.Open(name) }

// stream runs an attach (argv nil) or exec (argv set) stream to a
// container of a pod: WebSocket first, SPDY for API servers without it.
// It returns when the stream ends (the process's output closed).
func (b *Backend) stream(ctx context.Context, ns, pod, container, sub string, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	req := b.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource(sub)
	if sub == "exec" {
		req.VersionedParams(&corev1.PodExecOptions{
			Container: container, Command: argv,
			Stdin: stdin != nil, Stdout: stdout != nil, Stderr: stderr != nil,
		}, scheme.ParameterCodec)
	} else {
		req.VersionedParams(&corev1.PodAttachOptions{
			Container: container, Stdin: stdin != nil, Stdout: stdout != nil, Stderr: stderr != nil,
		}, scheme.ParameterCodec)
	}
	spdy, err := remotecommand.NewSPDYExecutor(b.cfg, "POST", req.URL())
	if err != nil {
		return errs.Wrap("kubernetes: "+sub, errs.Invalid, err)
	}
	ws, err := remotecommand.NewWebSocketExecutor(b.cfg, "GET", req.URL().String())
	if err != nil {
		return errs.Wrap("kubernetes: "+sub, errs.Invalid, err)
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return errs.Wrap("kubernetes: "+sub, errs.Invalid, err)
	}
	return ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr})
}

// ExecAPI runs argv in the pod's job container with one exec API call (the
// way kubectl exec does): what a backend without a step runner would pay
// per step. For benchmarks and diagnostics.
func (s *Sandbox) ExecAPI(ctx context.Context, argv []string, out io.Writer) (int, error) {
	err := s.b.stream(ctx, s.ns, s.name, jobContainer, "exec", argv, nil, out, out)
	var ce utilexec.CodeExitError
	if errors.As(err, &ce) {
		return ce.Code, nil
	}
	if err != nil {
		return -1, errs.Wrap("kubernetes: exec", kindOf(err), err)
	}
	return 0, nil
}

// waitPod waits until cond holds for the sandbox's pod, or fails, or ctx
// ends; it watches the pod rather than polling.
func (s *Sandbox) waitPod(ctx context.Context, what string, cond func(*corev1.Pod) (bool, error)) (*corev1.Pod, error) {
	return s.b.waitPod(ctx, s.ns, s.name, what, cond)
}

func (b *Backend) waitPod(ctx context.Context, ns, name, what string, cond func(*corev1.Pod) (bool, error)) (*corev1.Pod, error) {
	pods := b.cs.CoreV1().Pods(ns)
	timeout := func(last *corev1.Pod) error {
		if errors.Is(context.Cause(ctx), context.Canceled) {
			return ctx.Err()
		}
		msg := "timed out waiting for " + what
		if last != nil {
			msg += " (pod phase " + string(last.Status.Phase) + pendingReason(last) + ")"
		}
		return errs.E("kubernetes: pod "+name, errs.Timeout, "%s", msg)
	}
	for {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			if ctx.Err() != nil {
				return nil, timeout(nil)
			}
			return nil, errs.Wrap("kubernetes: pod "+name, kindOf(err), err)
		}
		if ok, err := cond(p); err != nil || ok {
			return p, err
		}
		w, err := pods.Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", name).String(),
			ResourceVersion: p.ResourceVersion,
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil, timeout(p)
			}
			return nil, errs.Wrap("kubernetes: watch pod "+name, kindOf(err), err)
		}
		got, ok, err := watchPod(ctx, w, cond)
		w.Stop()
		if err != nil || ok {
			return got, err
		}
		if ctx.Err() != nil {
			return nil, timeout(p)
		}
		// The watch ended (timeout, compaction): look again.
	}
}

// watchPod reads events until cond holds, fails, or the watch ends.
func watchPod(ctx context.Context, w watch.Interface, cond func(*corev1.Pod) (bool, error)) (*corev1.Pod, bool, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, false, nil
		case ev, open := <-w.ResultChan():
			if !open {
				return nil, false, nil
			}
			switch ev.Type {
			case watch.Deleted:
				return nil, false, errs.E("kubernetes: pod", errs.Other, "pod deleted while starting")
			case watch.Error:
				if st, ok := ev.Object.(*metav1.Status); ok && st.Code == 410 {
					return nil, false, nil
				}
				return nil, false, errs.Wrap("kubernetes: watch pod", errs.Unavailable, apierrors.FromObject(ev.Object))
			}
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			if done, err := cond(p); err != nil || done {
				return p, done, err
			}
		}
	}
}

// pendingReason says why a pod waits: unschedulable, a container waiting.
func pendingReason(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue && c.Message != "" {
			return ": " + c.Message
		}
	}
	for _, st := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if w := st.State.Waiting; w != nil && w.Reason != "" {
			return ": container " + st.Name + " " + w.Reason
		}
		if st.State.Running != nil && !st.Ready {
			return ": container " + st.Name + " not ready"
		}
	}
	return ""
}
