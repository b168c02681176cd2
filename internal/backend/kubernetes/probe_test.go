package kubernetes

import (
	"context"
	"errors"
	"testing"
	"time"

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
