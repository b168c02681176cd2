package kubernetes

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/backendtest"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// A job's placement adds to the backend's node selector (winning for a
// label both give) and tolerations; its timeout bounds the pod's life
// with a margin, unless --pod-deadline is shorter.
func TestPodSpecPlacementAndDeadline(t *testing.T) {
	sixty := int64(60)
	b := &Backend{opts: Options{Namespace: "ns", SandboxDir: DefaultSandboxDir, GracePeriod: 2 * time.Second,
		NodeSelector: map[string]string{"pool": "ci", "zone": "a"},
		Tolerations:  []corev1.Toleration{{Key: "ci", Operator: corev1.TolerationOpExists}}}, owner: "h/1/2"}
	job := &backend.JobSpec{ID: "j", Name: "a", JobDir: "/tmp/x", Image: "img", Timeout: 10 * time.Minute,
		Placement: backend.Placement{NodeSelector: map[string]string{"zone": "b", "accelerator": "t4"},
			Tolerations: []backend.Toleration{{Key: "nvidia.com/gpu", Operator: "Exists", Effect: "NoSchedule"},
				{Key: "spot", Operator: "Equal", Value: "yes", Effect: "NoExecute", Seconds: &sixty}}}}
	p, err := b.podSpec(job)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"pool": "ci", "zone": "b", "accelerator": "t4"}; !reflect.DeepEqual(p.Spec.NodeSelector, want) {
		t.Errorf("node selector %v", p.Spec.NodeSelector)
	}
	want := []corev1.Toleration{{Key: "ci", Operator: corev1.TolerationOpExists},
		{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		{Key: "spot", Operator: corev1.TolerationOpEqual, Value: "yes", Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &sixty}}
	if !reflect.DeepEqual(p.Spec.Tolerations, want) {
		t.Errorf("tolerations %+v", p.Spec.Tolerations)
	}
	if b.opts.NodeSelector["zone"] != "a" || len(b.opts.Tolerations) != 1 {
		t.Errorf("the backend's own settings changed: %v %v", b.opts.NodeSelector, b.opts.Tolerations)
	}
	for _, tc := range []struct {
		podDeadline, timeout time.Duration
		want                 int64 // 0: none
	}{
		{0, 0, 0},
		{0, 10 * time.Minute, 900},
		{time.Hour, 10 * time.Minute, 900},
		{time.Hour, 6 * time.Hour, 3600},
		{time.Hour, 0, 3600},
	} {
		b.opts.ActiveDeadline, job.Timeout = tc.podDeadline, tc.timeout
		p, err := b.podSpec(job)
		if err != nil {
			t.Fatal(err)
		}
		got := int64(0)
		if d := p.Spec.ActiveDeadlineSeconds; d != nil {
			got = *d
		}
		if got != tc.want {
			t.Errorf("--pod-deadline %v, timeout %v: activeDeadlineSeconds %d, want %d", tc.podDeadline, tc.timeout, got, tc.want)
		}
	}
}

// On the real cluster: a job's runtime class, node selector, tolerations,
// machine limits and timeout are on its pod, and the pod runs with them;
// a RuntimeClass the cluster lacks is refused before a pod is made,
// naming those it has.
func TestLabelProfileOnCluster(t *testing.T) {
	b := newBackend(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// A RuntimeClass for the test cluster's containerd handler (runc).
	rcName := "conveyor-test-runc"
	rcAPI := b.cs.NodeV1().RuntimeClasses()
	_, err := rcAPI.Create(ctx, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: rcName}, Handler: "runc"}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer dcancel()
		_ = rcAPI.Delete(dctx, rcName, metav1.DeleteOptions{})
	})
	job := newJob(t)
	job.Runtime = rcName
	job.Resources = backend.Resources{CPUs: 0.5, MemoryBytes: 96 << 20}
	job.Timeout = 10 * time.Minute
	job.Placement = backend.Placement{NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
		Tolerations: []backend.Toleration{{Key: "conveyor.dev/test", Operator: "Exists", Effect: "NoSchedule"}}}
	sb := setupJob(t, b, job)
	pod, err := b.cs.CoreV1().Pods(b.opts.Namespace).Get(ctx, sb.Pod(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := pod.Spec
	if s.RuntimeClassName == nil || *s.RuntimeClassName != rcName || s.NodeSelector["kubernetes.io/os"] != "linux" ||
		s.ActiveDeadlineSeconds == nil || *s.ActiveDeadlineSeconds != 900 {
		t.Errorf("pod spec: runtime class %v, node selector %v, deadline %v", s.RuntimeClassName, s.NodeSelector, s.ActiveDeadlineSeconds)
	}
	if !hasToleration(s.Tolerations, "conveyor.dev/test") {
		t.Errorf("tolerations %+v", s.Tolerations)
	}
	res := s.Containers[0].Resources
	if res.Limits.Cpu().String() != "500m" || res.Limits.Memory().String() != "96Mi" || !reflect.DeepEqual(res.Requests, res.Limits) {
		t.Errorf("resources %+v", res)
	}
	// The limits are the container's cgroup's (cgroup v2, or v1).
	out, code := backendtest.Exec(t, sb, &backend.Process{Argv: []string{"sh", "-c",
		"cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"}})
	if code != 0 || strings.TrimSpace(out) != "100663296" {
		t.Errorf("memory limit in the pod: %d %q", code, out)
	}

	job = newJob(t)
	job.Runtime = "conveyor-no-such-class"
	_, err = b.Setup(ctx, job, nil)
	if err == nil || !errs.Is(err, errs.Invalid) ||
		!strings.Contains(err.Error(), `the cluster has no RuntimeClass "conveyor-no-such-class" (it has `) ||
		!strings.Contains(err.Error(), rcName+" (handler runc)") {
		t.Errorf("a missing RuntimeClass: %v", err)
	}
	assertGone(t, b, job.ID)
}

func hasToleration(ts []corev1.Toleration, key string) bool {
	for _, t := range ts {
		if t.Key == key {
			return true
		}
	}
	return false
}
