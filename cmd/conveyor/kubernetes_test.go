package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/store"
	sqlstore "github.com/conveyor-ci/conveyor/internal/store/sql"
)

// The server's pod sweeper asks the store: a pod is over when its job is
// finished, unknown, or leased again; not while its lease runs.
func TestJobOver(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "c.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	org, err := st.EnsureOrg(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	repo := &store.Repo{OrgID: org.ID, Name: "o/r", URL: "https://example.com/o/r", Forge: "github"}
	if err := st.CreateRepo(ctx, repo); err != nil {
		t.Fatal(err)
	}
	r := &store.Run{RepoID: repo.ID, OrgID: org.ID, Workflow: ".github/workflows/ci.yml", Name: "ci",
		Event: "push", Ref: "refs/heads/main", SHA: "abc123", Trigger: "webhook"}
	if _, err := st.CreateRuns(ctx, []store.NewRun{{Run: r, Jobs: []*store.Job{{Key: "a", Name: "a"}}}}); err != nil {
		t.Fatal(err)
	}
	l, err := st.Lease(ctx, store.LeaseRequest{Owner: "w", TTL: time.Minute})
	if err != nil || l == nil {
		t.Fatalf("lease: %v %v", l, err)
	}
	over := jobOver(st)
	check := func(what string, orgID, jobID, lease int64, want bool) {
		t.Helper()
		got, err := over(ctx, orgID, jobID, lease)
		if err != nil || got != want {
			t.Errorf("%s: over=%v, %v; want %v", what, got, err, want)
		}
	}
	j := l.Job
	check("running, its lease", org.ID, j.ID, j.LeaseToken, false)
	check("running, an older lease", org.ID, j.ID, j.LeaseToken-1, true)
	check("unknown job", org.ID, j.ID+1000, 1, true)
	check("another organisation", org.ID+1000, j.ID, j.LeaseToken, true)
	if err := st.Complete(ctx, j.ID, j.LeaseToken, store.Completion{Status: store.StatusSuccess}); err != nil {
		t.Fatal(err)
	}
	check("finished", org.ID, j.ID, j.LeaseToken, true)
}

// conveyor server and agent take --backend kubernetes and its flags, and
// say clearly when the cluster's kubeconfig is unusable.
func TestServerAndAgentKubernetesFlags(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "no-kubeconfig")
	for name, run := range map[string]func(args []string, stderr *strings.Builder) int{
		"server": func(args []string, stderr *strings.Builder) int {
			return serverMain(ctx, append(args, "--data", t.TempDir(), "--listen", "127.0.0.1:0"), io.Discard, stderr)
		},
		"agent": func(args []string, stderr *strings.Builder) int {
			return agentMain(ctx, append(args, "--server", "http://127.0.0.1:1", "--token", "t", "--data", t.TempDir()), io.Discard, stderr)
		},
	} {
		var stderr strings.Builder
		code := run([]string{"--backend", "kubernetes", "--kubeconfig", missing, "--namespace-prefix", "ci-"}, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), "kubernetes backend") || !strings.Contains(stderr.String(), "no-kubeconfig") {
			t.Errorf("%s: exit %d, stderr %q", name, code, stderr.String())
		}
		stderr.Reset()
		code = run([]string{"--backend", "kubernetes", "--kubeconfig", missing, "--egress-allow", "not-a-cidr"}, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), "--egress-allow") {
			t.Errorf("%s: bad CIDR: exit %d, stderr %q", name, code, stderr.String())
		}
	}
}
