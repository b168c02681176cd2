package server

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/backend/kubernetes"
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

// A server worker runs a pushed workflow end to end on the kubernetes
// backend of a real cluster: each job a pod in its organisation's
// namespace, outputs across jobs, log lines and statuses stored, the
// pods gone afterwards.
func TestServerRunsJobsAsPods(t *testing.T) {
	kc := testenv.Kubeconfig(t)
	img := testenv.Image(t)
	klog.SetLogger(logr.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bin, note, err := testimage.Conveyor(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if note != "" {
		t.Log(note)
	}
	cfg, err := kubernetes.LoadConfig(kc, "")
	if err != nil {
		t.Fatal(err)
	}
	prefix := "conveyor-srvt-" + itoa(int64(os.Getpid())) + "-"
	kb, err := kubernetes.New(kubernetes.Options{Config: cfg, NamespacePrefix: prefix, RunnerBinary: bin, PullPolicy: corev1.PullNever})
	if err != nil {
		t.Fatal(err)
	}
	ns := kb.NamespaceOf(backend.Tenant{Org: "default"})
	t.Cleanup(func() {
		_ = kb.Clientset().CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	h := host.New(host.Options{})
	hs := newHarness(t, harnessOpts{
		cfg:      Config{Platforms: map[string]string{"ubuntu-latest": img}, LeaseTTL: 10 * time.Second},
		files:    map[string]string{".github/workflows/k8s.yml": k8sFlow, "README.md": "hi\n"},
		backends: &Backends{Main: kb, Host: h},
	})
	if code, body := hs.hook("push", hs.push("main", "README.md"), "k-1"); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	r := hs.waitRuns(1, 6*time.Minute)[0]
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
