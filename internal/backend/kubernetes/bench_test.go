package kubernetes

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/testenv/stepreg"
)

// Per-step cost in a job pod, three ways, on the test cluster
// (CONVEYOR_TEST_KUBECONFIG; see docs/benchmarks.md):
//
//	go test -run '^$' -bench . -benchtime 50x ./internal/backend/kubernetes/
//
// StepRunner: `true` over the one attach stream (the runner's own cost);
// StepWithSync: a whole backend Exec (the job folder pushed and pulled
// around the step, what the executor pays); StepExecAPI: one exec API call
// per step (kubectl exec through client-go), the floor a backend without a
// step runner pays; StepPodPerStep: Woodpecker's layout, a pod per step
// sharing the workspace through a volume (a hostPath here, as the test
// cluster has no storage provisioner for a PVC).
func BenchmarkStepRunner(b *testing.B) {
	sb := benchSandbox(b)
	benchSteps(b, func(ctx context.Context) (int, error) {
		return sb.RunOnly(ctx, &backend.Process{Argv: []string{"true"}}, io.Discard)
	})
}

func BenchmarkStepWithSync(b *testing.B) {
	sb := benchSandbox(b)
	benchSteps(b, func(ctx context.Context) (int, error) {
		return sb.Exec(ctx, &backend.Process{Argv: []string{"true"}}, io.Discard)
	})
}

func BenchmarkStepExecAPI(b *testing.B) {
	sb := benchSandbox(b)
	benchSteps(b, func(ctx context.Context) (int, error) {
		return sb.ExecAPI(ctx, []string{"true"}, io.Discard)
	})
}

// JobStart: Setup of a job pod and its first step done; RawPodStart: a pod
// of the same image running `true`, created and watched until Succeeded.
// Both without the deletion.
func BenchmarkJobStart(b *testing.B) { benchJobStart(b, newBackend(b, Options{}), nil) }

// JobStartInitContainer: the same with the runner installed by a plain
// init container (clusters before 1.29): the job container starts only
// after the binary is in.
func BenchmarkJobStartInitContainer(b *testing.B) {
	kb := newBackend(b, Options{})
	kb.sidecar.once.Do(func() {})
	kb.sidecar.ok = false
	benchJobStart(b, kb, nil)
}

// JobStartStepContainer: a job announcing an image step whose config the
// registry gives: its pod has a step container (wait-file layout), and
// the runner is installed by an init container (the step container's
// command is the installed binary).
func BenchmarkJobStartStepContainer(b *testing.B) {
	reg := stepreg.New(b)
	benchJobStart(b, newBackend(b, Options{Images: reg.Resolver()}), []string{reg.Ref})
}

func benchJobStart(b *testing.B, kb *Backend, images []string) {
	b.StopTimer()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		job := jobWithSteps(b, images...)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		b.StartTimer()
		sb, err := kb.Setup(ctx, job, nil)
		if err == nil {
			_, err = sb.Exec(ctx, &backend.Process{Argv: []string{"true"}}, io.Discard)
		}
		b.StopTimer()
		if sb != nil {
			_ = sb.Teardown(ctx)
		}
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStepPodPerStep(b *testing.B) {
	ws := &corev1.HostPathVolumeSource{Path: b.TempDir(), Type: ptr(corev1.HostPathDirectoryOrCreate)}
	benchPods(b, "steppod", corev1.Container{Command: []string{"sh", "-c", "true"}, WorkingDir: "/w",
		VolumeMounts: []corev1.VolumeMount{{Name: "ws", MountPath: "/w"}}},
		corev1.Volume{Name: "ws", VolumeSource: corev1.VolumeSource{HostPath: ws}})
}

func BenchmarkRawPodStart(b *testing.B) {
	benchPods(b, "rawpod", corev1.Container{Command: []string{"true"}})
}

// benchPods times, per iteration, a pod of the job image running c
// (with vols) from its creation until it has Succeeded; the deletion is
// not timed.
func benchPods(b *testing.B, prefix string, c corev1.Container, vols ...corev1.Volume) {
	kb := newBackend(b, Options{})
	if err := kb.ensureNamespace(context.Background(), kb.opts.Namespace, ""); err != nil {
		b.Fatal(err)
	}
	c.Name, c.Image, c.ImagePullPolicy = "c", newJob(b).Image, corev1.PullNever
	b.StopTimer()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("conveyor-%s-%d-%d", prefix, time.Now().UnixNano(), i)
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelManaged: managedBy}},
			Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever, AutomountServiceAccountToken: ptr(false),
				TerminationGracePeriodSeconds: ptr(int64(1)), Volumes: vols, Containers: []corev1.Container{c},
			},
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		b.StartTimer()
		_, err := kb.cs.CoreV1().Pods(kb.opts.Namespace).Create(ctx, pod, metav1.CreateOptions{})
		if err == nil {
			_, err = kb.waitPod(ctx, kb.opts.Namespace, name, "the pod to succeed", func(p *corev1.Pod) (bool, error) {
				if p.Status.Phase == corev1.PodFailed {
					return false, fmt.Errorf("pod failed: %s", p.Status.Message)
				}
				return p.Status.Phase == corev1.PodSucceeded, nil
			})
		}
		b.StopTimer()
		_ = kb.deletePod(ctx, kb.opts.Namespace, name)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
}

func benchSandbox(b *testing.B) *Sandbox {
	b.Helper()
	kb := newBackend(b, Options{})
	return setupJob(b, kb, newJob(b))
}

func benchSteps(b *testing.B, step func(context.Context) (int, error)) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if code, err := step(ctx); err != nil || code != 0 {
			b.Fatalf("step: %d %v", code, err)
		}
	}
}
