package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/jobsync"
	"github.com/conveyor-ci/conveyor/internal/backend/runner"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// helloTimeout bounds the wait for the runner's hello once attached.
const helloTimeout = 30 * time.Second

// Sandbox is one job's pod.
type Sandbox struct {
	b        *Backend
	job      *backend.JobSpec
	ns, name string
	created  bool

	mu       sync.Mutex // one Exec at a time (the job folder's sync)
	c        *runner.Client
	stop     context.CancelFunc // ends the attach stream
	attached chan struct{}      // closed when the attach stream has ended
	sync     *jobsync.Sync
	// imageSteps counts the image steps run (their containers' names).
	imageSteps int
	// waiters are the pod's step containers (wait-file layout).
	waiters []*waiter

	downOnce sync.Once
	downErr  error
}

var (
	_ backend.Sandbox   = (*Sandbox)(nil)
	_ backend.Describer = (*Sandbox)(nil)
)

// Namespace is the pod's namespace.
func (s *Sandbox) Namespace() string { return s.ns }

// Pod is the pod's name (in Namespace).
func (s *Sandbox) Pod() string { return s.name }

// Dirs implements backend.Sandbox.
func (s *Sandbox) Dirs() backend.Dirs {
	return backend.Dirs{Host: s.job.JobDir, Sandbox: s.b.opts.SandboxDir}
}

// Describe implements backend.Describer.
func (s *Sandbox) Describe() string {
	return fmt.Sprintf("step runner (conveyor %s) in pod %s/%s, one attach stream", s.c.Hello().Version, s.ns, s.name)
}

// start installs the runner, waits for the containers and attaches.
func (s *Sandbox) start(ctx context.Context, log io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, s.b.opts.StartTimeout)
	defer cancel()
	fmt.Fprintf(log, "Created pod %s/%s\n", s.ns, s.name)
	if err := s.waitScheduled(ctx); err != nil {
		return err
	}
	if err := s.install(ctx); err != nil {
		return err
	}
	if _, err := s.waitPod(ctx, "the job container and services to be ready", allReady); err != nil {
		return err
	}
	if len(s.job.Services) > 0 {
		fmt.Fprintf(log, "Services ready: %d sidecar container(s)\n", len(s.job.Services))
	}
	if err := s.attach(ctx); err != nil {
		return err
	}
	s.sync = jobsync.New("kubernetes", s.job.JobDir, &podTransport{s: s})
	return nil
}

// waitScheduled waits for the install container to run, within
// PendingTimeout: a pod still Pending past it fails with ErrNoRoom.
func (s *Sandbox) waitScheduled(ctx context.Context) error {
	const what = "the runner's install container to start"
	d := s.b.opts.PendingTimeout
	if d <= 0 {
		_, err := s.waitPod(ctx, what, installRunning)
		return err
	}
	pctx, cancel := context.WithTimeoutCause(ctx, d, errPending)
	defer cancel()
	_, err := s.waitPod(pctx, what, installRunning)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(pctx), errPending) {
		return errs.Wrap("kubernetes: pod "+s.name, errs.Unavailable, fmt.Errorf("%w: still Pending after %s: %v", backend.ErrNoRoom, d, err))
	}
	return err
}

var errPending = errors.New("pending deadline")

// attach opens the one stream to the step runner for the whole job.
func (s *Sandbox) attach(ctx context.Context) error {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	diag := &runner.Tail{Max: 4096}
	actx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	s.attached = make(chan struct{})
	go func() {
		defer close(s.attached)
		err := s.b.stream(actx, s.ns, s.name, jobContainer, "attach", nil, inR, outW, diag)
		if err == nil {
			err = io.EOF
		}
		outW.CloseWithError(err)
		inR.CloseWithError(err)
	}()
	closer := runner.CloserFunc(func() error {
		inW.Close()
		stop()
		return nil
	})
	// The runner waits for one byte before its hello (--await).
	go func() { _, _ = inW.Write([]byte{'\n'}) }()
	hctx, cancel := context.WithTimeout(ctx, helloTimeout)
	defer cancel()
	c, err := runner.NewClient(hctx, outR, inW, closer)
	if err != nil {
		_ = closer.Close()
		msg := err.Error()
		if d := strings.TrimSpace(diag.String()); d != "" {
			msg += ": " + d
		}
		return errs.E("kubernetes: attach the step runner", errs.KindOf(err), "%s", msg)
	}
	s.c = c
	return nil
}

// Exec implements backend.Sandbox: the job folder's changes go in, the
// step runs, the folder comes back, all over the one attach stream.
func (s *Sandbox) Exec(ctx context.Context, p *backend.Process, out io.Writer) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req := &runner.Request{Argv: p.Argv, Env: p.Env, Dir: p.Dir, PathPrepend: p.PathPrepend, Fallback: p.Fallback}
	if p.NoFiles {
		return s.c.Run(ctx, req, out)
	}
	if err := s.sync.Push(ctx); err != nil {
		return -1, err
	}
	code, err := s.c.Run(ctx, req, out)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jobsync.PullTimeout(ctx))
	defer cancel()
	if perr := s.sync.Pull(pctx); err == nil && perr != nil {
		return code, perr
	}
	return code, err
}

// RunOnly runs p over the attach stream without the job folder's sync:
// for benchmarks of the runner's own cost.
func (s *Sandbox) RunOnly(ctx context.Context, p *backend.Process, out io.Writer) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.Run(ctx, &runner.Request{Argv: p.Argv, Env: p.Env, Dir: p.Dir, PathPrepend: p.PathPrepend}, out)
}

// Teardown implements backend.Sandbox: it ends the attach stream, deletes
// the pod and waits until it is gone. Safe to call twice.
func (s *Sandbox) Teardown(ctx context.Context) error {
	s.downOnce.Do(func() {
		s.endWaiters(ctx)
		if s.c != nil {
			_ = s.c.Close()
		}
		if s.stop != nil {
			s.stop()
			select {
			case <-s.attached:
			case <-time.After(5 * time.Second):
			}
		}
		if s.created {
			s.downErr = s.b.deletePod(ctx, s.ns, s.name)
		}
	})
	return s.downErr
}

// deletePod deletes a pod and waits, a minute at most, until it is gone.
func (b *Backend) deletePod(ctx context.Context, ns, name string) error {
	const op = "kubernetes: delete pod"
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	pods := b.cs.CoreV1().Pods(ns)
	grace := int64(b.opts.GracePeriod.Seconds())
	err := pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return errs.Wrap(op+" "+name, kindOf(err), err)
	}
	for {
		_, err := pods.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return errs.E(op+" "+name, errs.Timeout, "pod still there after a minute")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// podTransport is jobsync's transport through the step runner: tar in
// the job container, fed and read over the attach stream.
type podTransport struct{ s *Sandbox }

func (t *podTransport) CopyIn(ctx context.Context, r io.Reader) error {
	var diag runner.Tail
	diag.Max = 4096
	dir := t.s.b.opts.SandboxDir
	code, err := t.s.c.RunInput(ctx, &runner.Request{Argv: []string{"tar", "-x", "-f", "-", "-C", dir}}, r, &diag)
	if err != nil {
		return err
	}
	if code != 0 {
		return errs.E("kubernetes: tar -x", errs.Other, "exit code %d: %s", code, strings.TrimSpace(diag.String()))
	}
	return nil
}

func (t *podTransport) CopyOut(ctx context.Context) (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	dir := t.s.b.opts.SandboxDir
	go func() {
		// stderr would corrupt the archive: tar's warnings are dropped.
		code, err := t.s.c.Run(ctx, &runner.Request{Argv: []string{"sh", "-c", `exec tar -c -f - -C "$1" . 2>/dev/null`, "sh", dir}}, pw)
		if err == nil && code > 1 { // GNU tar: 1 is "some files changed while read"
			err = errs.E("kubernetes: tar -c", errs.Other, "exit code %d", code)
		}
		if err == nil {
			err = io.EOF
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// installRunning: the install container is running (ready to receive).
func installRunning(p *corev1.Pod) (bool, error) {
	if err := podFailed(p); err != nil {
		return false, err
	}
	for _, st := range p.Status.InitContainerStatuses {
		if st.Name != installContainer {
			continue
		}
		if err := containerFailed(st); err != nil {
			return false, err
		}
		if st.State.Terminated != nil {
			return false, errs.E("kubernetes: install the runner", errs.Other, "install container exited before the runner was sent: %s", terminated(st.State.Terminated))
		}
		return st.State.Running != nil, nil
	}
	return false, nil
}

// allReady: every container runs and is ready (services with a health
// check pass it).
func allReady(p *corev1.Pod) (bool, error) {
	if err := podFailed(p); err != nil {
		return false, err
	}
	for _, st := range p.Status.InitContainerStatuses {
		if t := st.State.Terminated; t != nil && t.ExitCode != 0 {
			return false, errs.E("kubernetes: install the runner", errs.Other, "install container failed: %s", terminated(t))
		}
	}
	if len(p.Status.ContainerStatuses) < len(p.Spec.Containers) {
		return false, nil
	}
	ready := true
	for _, st := range p.Status.ContainerStatuses {
		if err := containerFailed(st); err != nil {
			return false, err
		}
		if t := st.State.Terminated; t != nil {
			what := "container " + st.Name
			if st.Name != jobContainer {
				what = "service container " + st.Name
			}
			return false, &containerError{name: st.Name, err: errs.E("kubernetes: start", errs.Other, "%s exited before the job started: %s", what, terminated(t))}
		}
		ready = ready && st.Ready && st.State.Running != nil
	}
	return ready, nil
}

func terminated(t *corev1.ContainerStateTerminated) string {
	s := fmt.Sprintf("exit code %d", t.ExitCode)
	if t.Reason != "" {
		s += " (" + t.Reason + ")"
	}
	if m := strings.TrimSpace(t.Message); m != "" {
		s += ": " + m
	}
	return s
}

func podFailed(p *corev1.Pod) error {
	switch p.Status.Phase {
	case corev1.PodFailed, corev1.PodSucceeded:
		msg := p.Status.Reason
		if p.Status.Message != "" {
			msg += ": " + p.Status.Message
		}
		return errs.E("kubernetes: pod "+p.Name, errs.Other, "pod ended (%s) before the job started: %s", p.Status.Phase, msg)
	}
	return nil
}

// containerFailed turns waiting reasons that will not heal by themselves
// into errors (a wrong image name, a pull that fails, a bad spec).
func containerFailed(st corev1.ContainerStatus) error {
	w := st.State.Waiting
	if w == nil {
		return nil
	}
	switch w.Reason {
	case "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName":
		return &containerError{name: st.Name, err: errs.E("kubernetes: image "+st.Image, errs.NotFound, "container %s: %s: %s", st.Name, w.Reason, w.Message)}
	case "CreateContainerConfigError", "CreateContainerError", "RunContainerError", "CrashLoopBackOff":
		return &containerError{name: st.Name, err: errs.E("kubernetes: container "+st.Name, errs.Other, "%s: %s", w.Reason, w.Message)}
	}
	return nil
}

// containerError is err about the pod's container name, which callers
// find with errors.As (Setup makes the pod again without a step container
// that cannot start).
type containerError struct {
	name string
	err  error
}

func (e *containerError) Error() string { return e.err.Error() }
func (e *containerError) Unwrap() error { return e.err }
