package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/password"
	"github.com/conveyor-ci/conveyor/internal/store"
	sqlstore "github.com/conveyor-ci/conveyor/internal/store/sql"
)

// accountsServer is the real API over SQLite with the first admin's token
// (what conveyor server prints on first start).
func accountsServer(t *testing.T) (url, admin string) {
	t.Helper()
	db, err := sqlstore.Open(t.Context(), filepath.Join(t.TempDir(), "c.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	org, _ := db.EnsureOrg(t.Context(), "default")
	admin = "cvy_first"
	sum := sha256.Sum256([]byte(admin))
	if _, err := db.CreateFirstAdmin(t.Context(), &store.User{Name: "admin"}, org.ID, &store.Token{Name: "admin", Role: store.RoleAdmin, Hash: sum[:]}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Deps{Store: db, Accounts: db,
		PasswordParams: password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}))
	t.Cleanup(srv.Close)
	return srv.URL, admin
}

// cli runs a command with input on stdin.
func cli(t *testing.T, input string, args ...string) (int, string, string) {
	t.Helper()
	stdin = strings.NewReader(input)
	t.Cleanup(func() { stdin = os.Stdin })
	var out, errb bytes.Buffer
	code := commands()[args[0]].main(t.Context(), args[1:], &out, &errb)
	return code, out.String(), errb.String()
}

func TestLoginKeepsServerAndToken(t *testing.T) {
	url, admin := accountsServer(t)
	cfgDir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgDir)
	t.Setenv("CONVEYOR_CONFIG", "")
	t.Setenv("CONVEYOR_SERVER", "")
	t.Setenv("CONVEYOR_TOKEN", "")

	// Before any login: no token.
	if code, _, errs := cli(t, "", "runs"); code != 2 || !strings.Contains(errs, "run conveyor login") {
		t.Fatalf("runs without login: %d %s", code, errs)
	}
	// The first admin logs in with the printed token, adds bob with a password.
	if code, out, errs := cli(t, "", "login", "--server", url, "--token", admin); code != 0 || !strings.Contains(out, "as admin (admin in organisation 1") {
		t.Fatalf("login --token: %d %s %s", code, out, errs)
	}
	cfgFile := filepath.Join(cfgDir, "conveyor", "config.json")
	fi, err := os.Stat(cfgFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config %s: %v %v, want mode 0600", cfgFile, fi, err)
	}
	if code, out, errs := cli(t, "s3cret-password\n", "user", "add", "bob", "--role", "developer", "--password-stdin"); code != 0 || out != "user bob: developer\n" {
		t.Fatalf("user add: %d %q %s", code, out, errs)
	}
	if code, out, _ := cli(t, "", "user", "list"); code != 0 || !strings.Contains(out, "bob    developer") {
		t.Errorf("user list: %d %q", code, out)
	}

	// bob logs in with the password: a personal token for this machine is kept.
	if code, out, errs := cli(t, "wrong\n", "login", "--server", url, "--user", "bob"); code != 1 || !strings.Contains(errs, "wrong user name or password") {
		t.Fatalf("login with a wrong password: %d %s %s", code, out, errs)
	}
	if code, out, errs := cli(t, "s3cret-password\n", "login", "--server", url, "--user", "bob"); code != 0 || !strings.Contains(out, "as bob (developer") {
		t.Fatalf("login: %d %s %s", code, out, errs)
	}
	var cfg cliConfig
	b, _ := os.ReadFile(cfgFile)
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.Server != url || cfg.User != "bob" || !strings.HasPrefix(cfg.Token, "cvy_") {
		t.Fatalf("config after login: %s %v", b, err)
	}
	// Client commands read it when no flag or environment says otherwise.
	if code, out, errs := cli(t, "", "whoami"); code != 0 || !strings.Contains(out, "user bob (developer") {
		t.Errorf("whoami from the config: %d %s %s", code, out, errs)
	}
	if code, out, _ := cli(t, "", "token", "list"); code != 0 || !strings.Contains(out, "admin  api") || strings.Contains(out, "session") {
		t.Errorf("token list: %d %q", code, out)
	}
	// The kept token never goes to another server.
	if code, _, errs := cli(t, "", "runs", "--server", "http://127.0.0.1:1"); code != 2 || !strings.Contains(errs, "no API token for http://127.0.0.1:1") {
		t.Errorf("runs on another server: %d %s", code, errs)
	}
	// Roles are checked: a developer changes no roles and reads no audit log.
	if code, _, errs := cli(t, "", "user", "role", "bob", "admin"); code != 1 || !strings.Contains(errs, "needs role admin") {
		t.Errorf("developer changes a role: %d %s", code, errs)
	}
	if code, _, errs := cli(t, "", "audit"); code != 1 || !strings.Contains(errs, "forbidden") && !strings.Contains(errs, "needs role admin") {
		t.Errorf("developer reads the audit log: %d %s", code, errs)
	}

	// Tokens: create (shown once), rotate, revoke.
	code, out, errs := cli(t, "", "token", "create", "ci", "--scope", "write", "--json")
	var made api.TokenCreated
	if code != 0 || json.Unmarshal([]byte(out), &made) != nil || made.Token.Scope != "write" || made.Secret == "" {
		t.Fatalf("token create: %d %s %s", code, out, errs)
	}
	id := strconv.FormatInt(made.Token.ID, 10)
	if code, out, _ := cli(t, "", "token", "rotate", id); code != 0 || !strings.Contains(out, "shown only this once") || strings.Contains(out, made.Secret) {
		t.Errorf("token rotate: %d %s", code, out)
	}
	if code, out, _ := cli(t, "", "token", "revoke", id); code != 0 || out != "token "+id+" revoked\n" {
		t.Errorf("token revoke: %d %q", code, out)
	}
	if code, _, errs := cli(t, "", "token", "revoke", id); code != 1 || !strings.Contains(errs, "not found") {
		t.Errorf("token revoke twice: %d %s", code, errs)
	}

	// Back to the admin: organisations, roles, audit.
	t.Setenv("CONVEYOR_TOKEN", admin)
	if code, out, errs := cli(t, "", "org", "create", "acme", "--admin", "bob"); code != 0 || !strings.Contains(out, "acme") {
		t.Fatalf("org create: %d %s %s", code, out, errs)
	}
	if code, out, _ := cli(t, "", "org", "list"); code != 0 || !strings.Contains(out, "acme") || !strings.Contains(out, "default") {
		t.Errorf("org list: %d %s", code, out)
	}
	if code, out, errs := cli(t, "", "user", "role", "bob", "maintainer"); code != 0 || out != "user bob: maintainer\n" {
		t.Errorf("user role: %d %q %s", code, out, errs)
	}
	code, out, _ = cli(t, "", "audit")
	for _, want := range []string{"member.role", "user bob", "org.create", "token.revoke", "token.rotate", "token.create", "session.create", "member.add"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("audit: %d, no %q in\n%s", code, want, out)
		}
	}
	if code, _, _ := cli(t, "", "logout"); code != 0 {
		t.Error("logout failed")
	}
	b, _ = os.ReadFile(cfgFile)
	if strings.Contains(string(b), cfg.Token) {
		t.Errorf("logout kept the token: %s", b)
	}
}

// A config others can read is refused: it holds a token.
func TestConfigReadableByOthersIsRefused(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	t.Setenv("CONVEYOR_CONFIG", p)
	t.Setenv("CONVEYOR_TOKEN", "")
	if err := os.WriteFile(p, []byte(`{"server":"http://x","token":"t"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := cli(t, "", "runs"); code != 2 || !strings.Contains(errs, "readable by others") {
		t.Errorf("runs with a 0644 config: %d %s", code, errs)
	}
}
