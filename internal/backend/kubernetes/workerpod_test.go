package kubernetes

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/stepwait"
	"github.com/conveyor-ci/conveyor/internal/imageconfig"
)

// A worker pod runs the one-job worker as its main process with the
// worker's environment and no standard input; the install container and
// the services are native sidecars, a service's health check its startup
// probe too (the worker starts once services are healthy); the pod has
// the labels the sweeper finds server jobs by.
func TestWorkerPodSpec(t *testing.T) {
	b, err := New(Options{Config: &rest.Config{Host: "http://127.0.0.1:1"}, RunnerBinary: "/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	job := &backend.JobSpec{ID: "7-8-1", Name: "build", JobDir: "-", Image: "img:1",
		Services: []backend.Service{{Name: "db", Image: "db:1", Options: "--health-cmd 'pg_isready' --health-interval 2s"}},
		Tenant:   backend.Tenant{Org: "acme", Repo: "acme/app", OrgID: 1, RunID: 7, JobID: 8, Lease: 9}}
	pod, err := b.workerPodSpec(job, WorkerPod{Job: job, Args: []string{"agent", "one-job"},
		Env: map[string]string{"CONVEYOR_JOB_ID": "8", "CONVEYOR_JOB_CREDENTIAL": "cvw_x"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("containers: %+v", pod.Spec.Containers)
	}
	main := pod.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range main.Env {
		env[e.Name] = e.Value
	}
	if main.Name != jobContainer || main.Stdin || !slices.Equal(main.Args, []string{"agent", "one-job"}) ||
		!strings.Contains(strings.Join(main.Command, " "), runnerPath+` "$@"`) ||
		env["CONVEYOR_JOB_ID"] != "8" || env["CONVEYOR_JOB_DATA"] != DefaultSandboxDir+"/conveyor" ||
		main.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
		t.Errorf("main container: %+v", main)
	}
	if len(pod.Spec.InitContainers) != 2 {
		t.Fatalf("init containers: %+v", pod.Spec.InitContainers)
	}
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Errorf("%s is not a native sidecar", c.Name)
		}
	}
	svc := pod.Spec.InitContainers[1]
	if svc.Name != "svc-db" || svc.StartupProbe == nil || svc.ReadinessProbe == nil || svc.StartupProbe.FailureThreshold < 100 {
		t.Errorf("service sidecar: %+v", svc)
	}
	for _, l := range []string{LabelJobID, LabelOrgID, LabelLease, LabelRun, LabelManaged} {
		if pod.Labels[l] == "" {
			t.Errorf("pod lacks label %s: %v", l, pod.Labels)
		}
	}
}

// With step containers (docker:// steps whose image config the registry
// gave), a worker pod has them beside the worker, the steps volume in
// both, the runner's install as an init container (their command is the
// installed binary), and the worker is told their folders and the images'
// ENTRYPOINT and CMD; its own environment map is left as it was.
func TestWorkerPodSpecStepContainers(t *testing.T) {
	b, err := New(Options{Config: &rest.Config{Host: "http://127.0.0.1:1"}, RunnerBinary: "/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	job := &backend.JobSpec{ID: "7-8-1", Name: "build", JobDir: "-", Image: "img:1",
		Tenant: backend.Tenant{Org: "acme", Repo: "acme/app", OrgID: 1, RunID: 7, JobID: 8, Lease: 9}}
	ws := []*waiter{{name: "image-1", image: "reg/a:1", cfg: imageconfig.Config{Entrypoint: []string{"/e"}, Cmd: []string{"c"}}}, {name: "image-2", image: "reg/b:1"}}
	wenv := map[string]string{"CONVEYOR_JOB_ID": "8"}
	pod, err := b.workerPodSpec(job, WorkerPod{Job: job, Args: []string{"agent", "one-job"}, Env: wenv}, ws)
	if err != nil {
		t.Fatal(err)
	}
	if len(wenv) != 1 {
		t.Errorf("the worker's env map was changed: %v", wenv)
	}
	if len(pod.Spec.Containers) != 3 || pod.Spec.Containers[0].Name != jobContainer || pod.Spec.Containers[1].Image != "reg/a:1" ||
		!slices.Equal(pod.Spec.Containers[2].Command[:4], []string{runnerPath, "step-wait", "--dir", stepsDir + "/image-2"}) {
		t.Fatalf("containers: %+v", pod.Spec.Containers)
	}
	for _, c := range pod.Spec.Containers {
		if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == volSteps && m.MountPath == stepsDir }) {
			t.Errorf("%s lacks the steps volume: %+v", c.Name, c.VolumeMounts)
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == installContainer && c.RestartPolicy != nil {
			t.Errorf("the install container is a sidecar: step containers would start before their binary")
		}
	}
	var got string
	for _, e := range pod.Spec.Containers[0].Env {
		if e.Name == stepwait.EnvContainers {
			got = e.Value
		}
	}
	cs, err := stepwait.ParseContainers(got)
	if err != nil || len(cs) != 2 || cs[0].Image != "reg/a:1" || cs[0].Dir != stepsDir+"/image-1" || !slices.Equal(cs[0].Entrypoint, []string{"/e"}) ||
		!slices.Equal(cs[0].Cmd, []string{"c"}) || cs[1].Image != "reg/b:1" {
		t.Errorf("the worker's step containers %q: %+v %v", got, cs, err)
	}
}

// How a worker pod's end reads: the worker's exit, Kubernetes' reason
// (OOMKilled, the pod's deadline) and its last words; images that cannot
// be pulled fail the start.
func TestWorkerEnd(t *testing.T) {
	pod := func(phase corev1.PodPhase, reason string, st ...corev1.ContainerStatus) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: corev1.PodStatus{Phase: phase, Reason: reason, ContainerStatuses: st}}
	}
	ended := func(code int32, reason, msg string) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: jobContainer, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: msg}}}
	}
	oom := pod(corev1.PodRunning, "", ended(137, "OOMKilled", "step output"))
	if done, _ := workerEnded(oom); !done || workerEnd(oom).String() != "exit code 137 (OOMKilled): step output" {
		t.Errorf("OOM: %v", workerEnd(oom))
	}
	dl := pod(corev1.PodFailed, "DeadlineExceeded", ended(137, "Error", ""))
	if done, _ := workerEnded(dl); !done || !strings.Contains(workerEnd(dl).String(), "DeadlineExceeded") {
		t.Errorf("deadline: %v", workerEnd(dl))
	}
	gone := pod(corev1.PodFailed, "DeadlineExceeded")
	if done, _ := workerEnded(gone); !done || workerEnd(gone).ExitCode != -1 || workerEnd(gone).Reason != "DeadlineExceeded" {
		t.Errorf("deadline before the worker: %v", workerEnd(gone))
	}
	pull := pod(corev1.PodPending, "", corev1.ContainerStatus{Name: jobContainer, Image: "x:1",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "not found"}}})
	if _, err := workerStarted(pull); err == nil || !strings.Contains(err.Error(), "ErrImagePull") {
		t.Errorf("pull error: %v", err)
	}
	running := pod(corev1.PodRunning, "", corev1.ContainerStatus{Name: jobContainer, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}})
	if ok, err := workerStarted(running); !ok || err != nil {
		t.Errorf("running: %v %v", ok, err)
	}
	if done, _ := workerEnded(running); done {
		t.Error("a running worker counts as ended")
	}
}

// On the test cluster: a worker pod runs the conveyor binary streamed
// into it with the worker's arguments and environment, and is gone
// afterwards; an install stream that drops gets a fresh pod; a worker
// that fails says how, with its last output.
func TestRunWorkerPod(t *testing.T) {
	kb := newBackend(t, Options{})
	made := cutAfter(kb, 1)
	job := newJob(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var log bytes.Buffer
	end, err := kb.RunWorkerPod(ctx, WorkerPod{Job: job, Args: []string{"version"}}, &log)
	if err != nil || end.ExitCode != 0 {
		t.Fatalf("%v %v; log:\n%s", end, err, log.String())
	}
	if made.Load() != 2 || !strings.Contains(log.String(), "making the pod again (try 2 of 3)") || !strings.Contains(log.String(), "(worker layout") {
		t.Errorf("%d pods; log:\n%s", made.Load(), log.String())
	}
	assertGone(t, kb, job.ID)

	job = newJob(t)
	end, err = kb.RunWorkerPod(ctx, WorkerPod{Job: job, Args: []string{"agent", "one-job"}}, io.Discard)
	if err != nil || end.ExitCode != 2 || !strings.Contains(end.Message, "CONVEYOR_JOB_ID") {
		t.Errorf("a worker without its job: %v %v", end, err)
	}
	assertGone(t, kb, job.ID)
}
