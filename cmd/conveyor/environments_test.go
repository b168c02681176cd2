package main

import (
	"crypto/sha256"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/store"
	sqlstore "github.com/conveyor-ci/conveyor/internal/store/sql"
)

func TestEnvAndApproveCommands(t *testing.T) {
	db, err := sqlstore.Open(t.Context(), filepath.Join(t.TempDir(), "c.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	org, _ := db.EnsureOrg(t.Context(), "default")
	sum := sha256.Sum256([]byte("cvy_first"))
	if _, err := db.CreateFirstAdmin(t.Context(), &store.User{Name: "admin"}, org.ID, &store.Token{Name: "admin", Role: store.RoleAdmin, Hash: sum[:]}); err != nil {
		t.Fatal(err)
	}
	bob := &store.User{Name: "bob"}
	if err := db.CreateUser(t.Context(), bob); err != nil {
		t.Fatal(err)
	}
	if err := db.SetMember(t.Context(), org.ID, bob.ID, store.OrgDeveloper); err != nil {
		t.Fatal(err)
	}
	repo := &store.Repo{OrgID: org.ID, Name: "octo/app", URL: "https://x/octo/app", Forge: "github", Secret: "s"}
	if err := db.CreateRepo(t.Context(), repo); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Deps{Store: db, Accounts: db, Environments: db, Approvals: db}))
	t.Cleanup(srv.Close)
	t.Setenv("CONVEYOR_CONFIG", filepath.Join(t.TempDir(), "config.json"))
	t.Setenv("CONVEYOR_SERVER", srv.URL)
	t.Setenv("CONVEYOR_TOKEN", "cvy_first")
	run := func(wantCode int, args ...string) string {
		t.Helper()
		code, out, errs := cli(t, "", args...)
		if code != wantCode {
			t.Fatalf("%v: exit %d (want %d)\n%s%s", args, code, wantCode, out, errs)
		}
		return out + errs
	}

	if out := run(0, "env", "set", "production", "--repo", "octo/app", "--reviewer", "bob", "--reviewer", "role:maintainer",
		"--wait", "0", "--branch", "main", "--branch", "release/*", "--tag", "v*", "--prevent-self-review"); !strings.Contains(out, "environment production of octo/app set (protected)") {
		t.Errorf("env set: %s", out)
	}
	if out := run(1, "env", "set", "x", "--repo", "octo/app", "--reviewer", "nobody"); !strings.Contains(out, "not a member") {
		t.Errorf("env set with a stranger: %s", out)
	}
	run(2, "env", "set", "production")
	run(0, "env", "set", "staging", "--repo", "octo/app")
	out := run(0, "env", "list", "--repo", "octo/app")
	if !strings.Contains(out, "bob,role:maintainer") || !strings.Contains(out, "main,release/*,tag:v*") || !strings.Contains(out, "staging") {
		t.Errorf("env list:\n%s", out)
	}
	run(0, "env", "delete", "staging", "--repo", "octo/app")
	if out := run(1, "env", "delete", "staging", "--repo", "octo/app"); !strings.Contains(out, "not found") {
		t.Errorf("second delete: %s", out)
	}

	newRun := func() int64 {
		d := &store.Deployment{Environment: "production", Reviewers: []store.Reviewer{{User: "bob"}}, Actor: "octocat"}
		runs, err := db.CreateRuns(t.Context(), []store.NewRun{{Run: &store.Run{RepoID: repo.ID, Workflow: "ci.yml", Name: "ci",
			Event: "push", Ref: "refs/heads/main", SHA: "abc", Trigger: "webhook"},
			Jobs: []*store.Job{{Key: "deploy", Name: "deploy", Deploy: d}, {Key: "notify", Name: "notify", Needs: []string{"deploy"}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return runs[0].ID
	}
	r1 := newRun()
	if out := run(0, "approve", fmt.Sprint(r1), "deploy", "--comment", "ship it"); !strings.Contains(out, fmt.Sprintf("run %d: job deploy approved (environment production); it is queued", r1)) {
		t.Errorf("approve: %s", out)
	}
	if out := run(1, "approve", fmt.Sprint(r1), "deploy"); !strings.Contains(out, "not awaiting a review") {
		t.Errorf("approve twice: %s", out)
	}
	if out := run(0, "run", "show", fmt.Sprint(r1)); !strings.Contains(out, "environment production") || !strings.Contains(out, "approved by admin") {
		t.Errorf("run show of an approved job:\n%s", out)
	}
	r2 := newRun()
	if out := run(0, "approve", fmt.Sprint(r2), "deploy", "--reject", "--comment", "not today"); !strings.Contains(out, "rejected by admin: not today") {
		t.Errorf("reject: %s", out)
	}
	jobs, _ := db.Jobs(t.Context(), org.ID, r2)
	if jobs[0].Status != store.StatusFailure || jobs[1].Status != store.StatusQueued {
		t.Errorf("after reject: deploy %s, notify %s (queued to skip itself)", jobs[0].Status, jobs[1].Status)
	}
	if out := run(1, "approve", fmt.Sprint(r2), "nosuch"); !strings.Contains(out, "not found") {
		t.Errorf("unknown job: %s", out)
	}
	// A fork's run: approve RUN, or reject it.
	forkRun := func() int64 {
		runs, err := db.CreateRuns(t.Context(), []store.NewRun{{Run: &store.Run{RepoID: repo.ID, Workflow: "ci.yml", Name: "ci",
			Event: "pull_request", Ref: "refs/pull/1/merge", SHA: "abc", Trigger: "webhook", Status: store.StatusAwaitingApproval},
			Jobs: []*store.Job{{Key: "test", Name: "test"}}}})
		if err != nil {
			t.Fatal(err)
		}
		return runs[0].ID
	}
	r3 := forkRun()
	if out := run(0, "approve", fmt.Sprint(r3)); !strings.Contains(out, fmt.Sprintf("run %d: approved; it is queued", r3)) {
		t.Errorf("approve RUN: %s", out)
	}
	if out := run(1, "approve", fmt.Sprint(r3)); !strings.Contains(out, "not awaiting approval") {
		t.Errorf("approve RUN twice: %s", out)
	}
	r4 := forkRun()
	if out := run(0, "approve", fmt.Sprint(r4), "--reject", "--comment", "no"); !strings.Contains(out, "rejected (cancelled)") {
		t.Errorf("reject RUN: %s", out)
	}
	run(2, "approve")
}
