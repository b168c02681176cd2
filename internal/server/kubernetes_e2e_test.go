package server

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/backend/kubernetes"
	"github.com/conveyor-ci/conveyor/internal/jobrun"
	"github.com/conveyor-ci/conveyor/internal/store"
	"github.com/conveyor-ci/conveyor/internal/testenv"
	"github.com/conveyor-ci/conveyor/internal/testimage"
)

const k8sFlow = `name: K8s
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      pod: ${{ steps.w.outputs.pod }}
    steps:
      - id: w
        run: |
          echo "pod=$(hostname)" >> "$GITHUB_OUTPUT"
          echo "running in pod $(hostname)"
          if test -e /var/run/secrets/kubernetes.io/serviceaccount/token; then echo "service account token mounted"; exit 1; fi
  after:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: echo "after saw pod ${{ needs.build.outputs.pod }}"
      - run: exit 3
`

// quietKlog silences client-go's notes on closed attach streams once:
// klog's logger is global, and a stream of an earlier test may still log.
var quietKlog sync.Once

// kubeEnvSeq numbers the test clusters' namespace prefixes of this process.
var kubeEnvSeq atomic.Int64

// kubeTestCluster is the test cluster's admin config, the image of the
// jobs' runs-on and the conveyor binary the pods run.
func kubeTestCluster(t testing.TB) (cfg *rest.Config, img, bin string) {
	t.Helper()
	kc := testenv.Kubeconfig(t)
	img = testenv.Image(t)
	quietKlog.Do(func() { klog.SetLogger(logr.Discard()) })
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bin, note, err := testimage.Conveyor(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if note != "" {
		t.Log(note)
	}
	cfg, err = kubernetes.LoadConfig(kc, "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg, img, bin
}

// kubeTestPrefix is a namespace prefix of this test process for t: with a
// sequence number too, because a benchmark runs its function more than
// once with one name, and the namespace of the run before may still be
// terminating (it refuses new pods).
func kubeTestPrefix(t testing.TB, kind string) string {
	name := strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(t.Name(), "Test"), "Pools"))
	return "conveyor-" + kind + "-" + itoa(int64(os.Getpid())) + "-" + itoa(kubeEnvSeq.Add(1)) + "-" + name + "-"
}

// kubeBackend is a kubernetes backend on the test cluster whose
// organisation namespaces (prefixed for this test process) are deleted
// when t ends, and the image of the jobs' runs-on.
func kubeBackend(t testing.TB) (*kubernetes.Backend, string) {
	t.Helper()
	return kubeBackendWith(t, nil)
}

// kubeBackendWith is kubeBackend with a registry lookup of image
// configurations (step containers for docker:// steps).
func kubeBackendWith(t testing.TB, images kubernetes.ImageConfigs) (*kubernetes.Backend, string) {
	t.Helper()
	cfg, img, bin := kubeTestCluster(t)
	kb, err := kubernetes.New(kubernetes.Options{Config: cfg, NamespacePrefix: kubeTestPrefix(t, "srvt"), RunnerBinary: bin, PullPolicy: corev1.PullNever, Images: images})
	if err != nil {
		t.Fatal(err)
	}
	ns := kb.NamespaceOf(backend.Tenant{Org: "default"})
	t.Cleanup(func() {
		_ = kb.Clientset().CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	return kb, img
}

// checkK8sRun checks run r of k8sFlow: statuses, logs, the organisation's
// namespace, no pod left.
func checkK8sRun(t *testing.T, hs *harness, kb *kubernetes.Backend, r *store.Run) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := kb.NamespaceOf(backend.Tenant{Org: "default"})
	jobs := hs.jobs(r.ID)
	if r.Status != store.StatusFailure || jobs["build"].Status != store.StatusSuccess || jobs["after"].Status != store.StatusFailure {
		t.Errorf("run %s, build %s, after %s; logs:\n%s\n%s", r.Status, jobs["build"].Status, jobs["after"].Status,
			hs.jobLog(r.ID, "build"), hs.jobLog(r.ID, "after"))
	}
	build := hs.jobLog(r.ID, "build")
	for _, want := range []string{"Created pod " + ns + "/conveyor-", "running in pod conveyor-"} {
		if !strings.Contains(build, want) {
			t.Errorf("build log lacks %q:\n%s", want, build)
		}
	}
	if after := hs.jobLog(r.ID, "after"); !strings.Contains(after, "after saw pod conveyor-") {
		t.Errorf("after log:\n%s", after)
	}
	n, err := kb.Clientset().CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil || n.Labels[kubernetes.LabelOrg] != "default" {
		t.Fatalf("organisation namespace %s: %v %v", ns, n, err)
	}
	pods, err := kb.Clientset().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: kubernetes.LabelRun + "=" + itoa(r.ID)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			t.Errorf("pod %s left after the run", p.Name)
		}
	}
}

// A server worker runs a pushed workflow end to end on the kubernetes
// backend of a real cluster: each job a pod in its organisation's
// namespace, outputs across jobs, log lines and statuses stored, the
// pods gone afterwards.
func TestServerRunsJobsAsPods(t *testing.T) {
	kb, img := kubeBackend(t)
	hs := newHarness(t, harnessOpts{
		cfg:      Config{Platforms: map[string]string{"ubuntu-latest": img}, LeaseTTL: 10 * time.Second},
		files:    map[string]string{".github/workflows/k8s.yml": k8sFlow, "README.md": "hi\n"},
		backends: &Backends{Main: kb, Host: host.New(host.Options{})},
	})
	if code, body := hs.hook("push", hs.push("main", "README.md"), "k-1"); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	checkK8sRun(t, hs, kb, hs.waitRuns(1, 6*time.Minute)[0])
}

// An agent (the server has no workers) runs the same workflow as pods.
func TestAgentRunsJobsAsPods(t *testing.T) {
	kb, img := kubeBackend(t)
	hs := newHarness(t, harnessOpts{
		cfg:   Config{Workers: -1, LeaseTTL: 10 * time.Second},
		files: map[string]string{".github/workflows/k8s.yml": k8sFlow, "README.md": "hi\n"},
	})
	h := host.New(host.Options{})
	a := hs.startAgentWith(hs.url, "k8s-agent", 2, time.Minute,
		jobrun.Env{Backend: kb, Host: h, Platforms: map[string]string{"ubuntu-latest": img}}, "ubuntu-latest")
	if code, body := hs.hook("push", hs.push("main", "README.md"), "k-2"); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	r := hs.waitRuns(1, 6*time.Minute)[0]
	checkK8sRun(t, hs, kb, r)
	if o := hs.jobs(r.ID)["build"].LeaseOwner; o != a.owner() {
		t.Errorf("build ran on %s, want the agent %s", o, a.owner())
	}
}
