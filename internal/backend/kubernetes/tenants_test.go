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
	// Another deployment's pod (another namespace prefix) of a job this
	// one does not know: not this sweeper's to delete.
	other := newBackend(t, Options{NamespacePrefix: "conveyor-u-"})
	ojob := newJob(t)
	ojob.Tenant = backend.Tenant{Org: org, Repo: "o/r", OrgID: 1, RunID: 1, JobID: 105, Lease: 1}
	ospec, err := other.podSpec(ojob)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.ensureNamespace(ctx, ospec.Namespace, org); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = b.cs.CoreV1().Namespaces().Delete(context.Background(), ospec.Namespace, metav1.DeleteOptions{})
	})
	if err := other.createPod(ctx, ospec); err != nil {
		t.Fatal(err)
	}
	// 101 finished, 102 running under lease 1, 103 unknown, 104 leased again (token 2).
	done := func(_ context.Context, orgID, jobID, lease int64) (bool, error) {
		if orgID != 1 {
			t.Errorf("org %d", orgID)
		}
		switch jobID {
		case 105:
			t.Error("asked about another deployment's pod")
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
	if p, err := b.cs.CoreV1().Pods(ospec.Namespace).Get(ctx, ospec.Name, metav1.GetOptions{}); err != nil || p.DeletionTimestamp != nil {
		t.Errorf("another deployment's pod was swept: %v", err)
	}
	_ = b.cs.CoreV1().Pods(ns).Delete(ctx, running, metav1.DeleteOptions{})
}

// A job of network policy none gets its namespace's deny-all-egress
// NetworkPolicy and a pod labelled for it; the organisation's quota of
// concurrent jobs becomes the namespace's ResourceQuota on pods, updated
// when it changes. (Enforcement needs a policy-capable CNI; the test
// cluster's may not be, so the objects are checked.)
func TestNetworkPolicyAndQuota(t *testing.T) {
	b := newBackend(t, Options{NamespacePrefix: "conveyor-t-", EgressAllow: []string{"10.9.8.7/32"}})
	org := fmt.Sprintf("tenancy-%d", os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := b.NamespaceOf(backend.Tenant{Org: org})
	t.Cleanup(func() { _ = b.cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	job := newJob(t)
	job.Network = backend.NetworkNone
	job.Tenant = backend.Tenant{Org: org, Repo: "o/r", OrgID: 1, RunID: 1, JobID: 1, Lease: 1, MaxJobs: 3}
	s := setupJobIn(t, b, job)
	p, err := b.cs.CoreV1().Pods(ns).Get(ctx, s.Pod(), metav1.GetOptions{})
	if err != nil || p.Labels[LabelNetwork] != "none" {
		t.Fatalf("pod labels %v, %v", p.Labels, err)
	}
	np, err := b.cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, NetworkPolicyName(backend.NetworkNone), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if np.Spec.PodSelector.MatchLabels[LabelNetwork] != "none" || len(np.Spec.Egress) != 0 ||
		len(np.Spec.PolicyTypes) != 1 || np.Spec.PolicyTypes[0] != "Egress" {
		t.Errorf("none policy %+v", np.Spec)
	}
	quota := func() string {
		t.Helper()
		rq, err := b.cs.CoreV1().ResourceQuotas(ns).Get(ctx, QuotaName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "none"
		}
		if err != nil {
			t.Fatal(err)
		}
		return rq.Spec.Hard.Pods().String()
	}
	if q := quota(); q != "3" {
		t.Errorf("quota pods %s, want 3", q)
	}
	// Another repository of the organisation: no-private, quota raised.
	job2 := *job
	job2.Network = backend.NetworkNoPrivate
	job2.Tenant.MaxJobs = 5
	if err := b.ensureTenancy(ctx, ns, &job2); err != nil {
		t.Fatal(err)
	}
	np, err = b.cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, NetworkPolicyName(backend.NetworkNoPrivate), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eg := np.Spec.Egress
	if len(eg) != 3 || eg[0].To[0].IPBlock.CIDR != "0.0.0.0/0" || !contains(eg[0].To[0].IPBlock.Except, "10.0.0.0/8") ||
		!contains(eg[0].To[0].IPBlock.Except, "169.254.0.0/16") || eg[1].Ports[0].Port.IntValue() != 53 || eg[2].To[0].IPBlock.CIDR != "10.9.8.7/32" {
		t.Errorf("no-private policy egress %+v", eg)
	}
	if q := quota(); q != "5" {
		t.Errorf("quota pods %s, want 5", q)
	}
	job2.Tenant.MaxJobs = 0
	if err := b.ensureTenancy(ctx, ns, &job2); err != nil {
		t.Fatal(err)
	}
	if q := quota(); q != "none" {
		t.Errorf("quota after the organisation's was removed: %s", q)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// setupJobIn sets job up and tears it down when t ends.
func setupJobIn(t *testing.T, b *Backend, job *backend.JobSpec) *Sandbox {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sb, err := b.Setup(ctx, job, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sb.Teardown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return sb.(*Sandbox)
}
