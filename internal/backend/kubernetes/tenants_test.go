package kubernetes

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/conveyor-ci/conveyor/internal/backend"
)

// A server job's pod goes to its organisation's namespace, made on demand
// and labelled with the organisation; the pod carries the org, repo, run
// and job labels.
func TestNamespacePerOrganisation(t *testing.T) {
	b := newBackend(t, Options{NamespacePrefix: "conveyor-t-"})
	org := fmt.Sprintf("Acme %d", os.Getpid())
	job := newJob(t)
	job.Tenant = backend.Tenant{Org: org, Repo: "acme/web", OrgID: 7, RunID: 3, JobID: 11, Lease: 5}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := b.NamespaceOf(job.Tenant)
	t.Cleanup(func() { _ = b.cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	sb, err := b.Setup(ctx, job, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := sb.(*Sandbox)
	if s.Namespace() != ns || ns == b.opts.Namespace {
		t.Errorf("pod in %q, want the organisation's namespace %q", s.Namespace(), ns)
	}
	n, err := b.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Labels[LabelOrg] != labelValue(org) || n.Annotations[AnnotationOrg] != org || n.Labels[LabelManaged] != managedBy {
		t.Errorf("namespace meta %+v", n.ObjectMeta)
	}
	p, err := b.cs.CoreV1().Pods(ns).Get(ctx, s.Pod(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{LabelOrg: labelValue(org), LabelRepo: labelValue("acme/web"), LabelOrgID: "7", LabelRun: "3", LabelJobID: "11", LabelLease: "5"}
	for k, v := range want {
		if p.Labels[k] != v {
			t.Errorf("pod label %s=%q, want %q", k, p.Labels[k], v)
		}
	}
	if p.Annotations[AnnotationRepo] != "acme/web" {
		t.Errorf("annotations %v", p.Annotations)
	}
	if err := sb.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.cs.CoreV1().Pods(ns).Get(ctx, s.Pod(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pod after teardown: %v", err)
	}
}

// The sweeper deletes the pod of a finished job and of an unknown one,
// found by their labels, and keeps the pod of a job still running; no
// process is killed: the pods are made as a live server would.
func TestSweepJobsDeletesPodsOfFinishedJobs(t *testing.T) {
	b := newBackend(t, Options{NamespacePrefix: "conveyor-t-"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	org := fmt.Sprintf("sweep-%d", os.Getpid())
	mk := func(jobID, lease int64) string {
		job := newJob(t)
		job.Tenant = backend.Tenant{Org: org, Repo: "o/r", OrgID: 1, RunID: 1, JobID: jobID, Lease: lease}
		spec, err := b.podSpec(job)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.ensureNamespace(ctx, spec.Namespace, org); err != nil {
			t.Fatal(err)
		}
		if err := b.createPod(ctx, spec); err != nil {
			t.Fatal(err)
		}
		return spec.Name
	}
	ns := b.NamespaceOf(backend.Tenant{Org: org})
	t.Cleanup(func() { _ = b.cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	finished, running, unknown, stale := mk(101, 1), mk(102, 1), mk(103, 1), mk(104, 1)
	// 101 finished, 102 running under lease 1, 103 unknown, 104 leased again (token 2).
	done := func(_ context.Context, orgID, jobID, lease int64) (bool, error) {
		if orgID != 1 {
			t.Errorf("org %d", orgID)
		}
		switch jobID {
		case 101:
			return true, nil
		case 102:
			return false, nil
		case 104:
			return lease < 2, nil
		}
		return true, nil // unknown
	}
	n, err := b.SweepJobs(ctx, done)
	if err != nil || n < 3 {
		t.Fatalf("swept %d pods, %v", n, err)
	}
	for _, name := range []string{finished, unknown, stale} {
		p, err := b.cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && p.DeletionTimestamp == nil {
			t.Errorf("pod %s of an ended job is still there", name)
		}
	}
	if _, err := b.cs.CoreV1().Pods(ns).Get(ctx, running, metav1.GetOptions{}); err != nil {
		t.Errorf("pod of the running job: %v", err)
	}
	_ = b.cs.CoreV1().Pods(ns).Delete(ctx, running, metav1.DeleteOptions{})
}
