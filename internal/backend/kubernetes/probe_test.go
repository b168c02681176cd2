package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Probe passes with the admin's credentials, fails Unauthorized with a
// token the cluster does not know, and fails with a kind when nothing
// answers.
func TestProbe(t *testing.T) {
	b := newBackend(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Probe(ctx); err != nil {
		t.Fatalf("admin: %v", err)
	}
	for name, mod := range map[string]func(*rest.Config){
		"bad token": func(c *rest.Config) {
			c.BearerToken, c.CertData, c.KeyData, c.CertFile, c.KeyFile = "not-a-token", nil, nil, "", ""
		},
		"no server": func(c *rest.Config) { c.Host = "https://127.0.0.1:1" },
	} {
		cfg := rest.CopyConfig(b.cfg)
		mod(cfg)
		bad, err := New(Options{Config: cfg, Namespace: testNamespace, RunnerBinary: binary})
		if err != nil {
			t.Fatal(err)
		}
		err = bad.Probe(ctx)
		switch {
		case err == nil:
			t.Errorf("%s: probe passed", name)
		case name == "bad token" && !errs.Is(err, errs.Unauthorized):
			t.Errorf("%s: %v (kind %v), want unauthorized", name, err, errs.KindOf(err))
		case name == "no server" && !errs.Is(err, errs.Unavailable):
			t.Errorf("%s: %v (kind %v), want unavailable", name, err, errs.KindOf(err))
		}
	}
}

// A pod no node can take stays Pending: past PendingTimeout, Setup fails
// with kind Unavailable wrapping backend.ErrNoRoom, and leaves no pod.
func TestPendingTimeout(t *testing.T) {
	b := newBackend(t, Options{PendingTimeout: 3 * time.Second, NodeSelector: map[string]string{"conveyor.dev/no-such-node": "x"}})
	job := newJob(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sb, err := b.Setup(ctx, job, nil)
	if err == nil {
		_ = sb.Teardown(ctx)
		t.Fatal("setup succeeded")
	}
	if !errors.Is(err, backend.ErrNoRoom) || !errs.Is(err, errs.Unavailable) {
		t.Errorf("%v (kind %v), want ErrNoRoom, unavailable", err, errs.KindOf(err))
	}
	assertGone(t, b, job.ID)
}

// A role that may create pods but not add ephemeral containers to them
// (nor read their logs) fails the probe, Forbidden, naming the rule to
// add; with it the probe passes.
func TestProbeImageStepRights(t *testing.T) {
	admin := newBackend(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := admin.ensureNamespace(ctx, testNamespace, ""); err != nil {
		t.Fatal(err)
	}
	user := fmt.Sprintf("conveyor-probe-%d", time.Now().UnixNano())
	rbac := admin.cs.RbacV1()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create", "get", "list", "watch", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"pods/attach"}, Verbs: []string{"create", "get"}},
	}}
	if _, err := rbac.Roles(testNamespace).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rbac.Roles(testNamespace).Delete(context.Background(), user, metav1.DeleteOptions{}) })
	if _, err := rbac.RoleBindings(testNamespace).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: user},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: user}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = rbac.RoleBindings(testNamespace).Delete(context.Background(), user, metav1.DeleteOptions{})
	})
	cfg := rest.CopyConfig(admin.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	b, err := New(Options{Config: cfg, Namespace: testNamespace, RunnerBinary: binary})
	if err != nil {
		t.Fatal(err)
	}
	probe := func(want func(error) bool) error {
		var err error
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if err = b.Probe(ctx); want(err) {
				return err
			}
		}
		t.Fatalf("probe: %v", err)
		return err
	}
	err = probe(func(err error) bool { return err != nil && strings.Contains(err.Error(), "pods/ephemeralcontainers") })
	if !errs.Is(err, errs.Forbidden) || !strings.Contains(err.Error(), "patch") {
		t.Errorf("without the rule: %v (kind %v)", err, errs.KindOf(err))
	}
	role.Rules = append(role.Rules,
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods/ephemeralcontainers"}, Verbs: []string{"patch"}},
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}})
	if _, err := rbac.Roles(testNamespace).Update(ctx, role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	probe(func(err error) bool { return err == nil })
}
