package main

import (
	"crypto/sha256"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/store"
	sqlstore "github.com/conveyor-ci/conveyor/internal/store/sql"
)

func TestSecretAndVarCommands(t *testing.T) {
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
	if err := db.CreateRepo(t.Context(), &store.Repo{OrgID: org.ID, Name: "octo/app", URL: "https://x/octo/app", Forge: "github", Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Deps{Store: db, Accounts: db, Secrets: db}))
	t.Cleanup(srv.Close)
	t.Setenv("CONVEYOR_CONFIG", filepath.Join(t.TempDir(), "config.json"))
	t.Setenv("CONVEYOR_SERVER", srv.URL)
	t.Setenv("CONVEYOR_TOKEN", "cvy_first")

	run := func(input string, wantCode int, args ...string) string {
		t.Helper()
		code, out, errs := cli(t, input, args...)
		if code != wantCode {
			t.Fatalf("%v: exit %d (want %d)\n%s%s", args, code, wantCode, out, errs)
		}
		return out + errs
	}
	if out := run("line1\nline2\n", 0, "secret", "set", "deploy_key", "--repo", "octo/app", "--env", "prod"); !strings.Contains(out, "secret DEPLOY_KEY set (repo octo/app, environment prod)") {
		t.Errorf("secret set: %s", out)
	}
	run("org-wide\n", 0, "secret", "set", "ORG_TOKEN", "--org")
	if out := run("", 1, "secret", "set", "EMPTY", "--repo", "octo/app"); !strings.Contains(out, "empty") {
		t.Errorf("empty value: %s", out)
	}
	if out := run("x", 2, "secret", "set", "NOWHERE"); !strings.Contains(out, "--repo OWNER/NAME") {
		t.Errorf("no scope: %s", out)
	}
	run("x", 2, "secret", "set", "BOTH", "--org", "--env", "prod")
	run("", 0, "var", "set", "REGION", "eu-west", "--repo", "octo/app")

	out := run("", 0, "secret", "list")
	if !strings.Contains(out, "DEPLOY_KEY") || !strings.Contains(out, "ORG_TOKEN") || !strings.Contains(out, "organisation") ||
		strings.Contains(out, "line1") || strings.Contains(out, "org-wide") {
		t.Errorf("secret list:\n%s", out)
	}
	if out := run("", 0, "var", "list", "--repo", "octo/app"); !strings.Contains(out, "REGION") || !strings.Contains(out, "eu-west") {
		t.Errorf("var list:\n%s", out)
	}
	sec, vars, err := db.JobValues(t.Context(), org.ID, 1, "prod")
	if err != nil || sec["DEPLOY_KEY"] != "line1\nline2" || sec["ORG_TOKEN"] != "org-wide" || vars["REGION"] != "eu-west" {
		t.Errorf("stored: %q %q %v", sec, vars, err)
	}
	run("", 0, "secret", "delete", "deploy_key", "--repo", "octo/app", "--env", "prod")
	if out := run("", 1, "secret", "delete", "deploy_key", "--repo", "octo/app", "--env", "prod"); !strings.Contains(out, "not found") {
		t.Errorf("second delete: %s", out)
	}
	run("", 0, "var", "delete", "REGION", "--repo", "octo/app")
}
