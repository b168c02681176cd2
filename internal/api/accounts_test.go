package api_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/password"
	"github.com/conveyor-ci/conveyor/internal/store"
	sqlstore "github.com/conveyor-ci/conveyor/internal/store/sql"
)

// accountsEnv is the API over a real SQLite store with a first admin (the
// server's bootstrap) in organisation "default".
type accountsEnv struct {
	*env
	db  store.Store
	org *store.Org
}

func newAccountsEnv(t *testing.T) *accountsEnv {
	t.Helper()
	ctx := t.Context()
	db, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "conveyor.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	org, err := db.EnsureOrg(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	secret := "cvy_first_admin"
	sum := sha256.Sum256([]byte(secret))
	if ok, err := db.CreateFirstAdmin(ctx, &store.User{Name: "admin"}, org.ID, &store.Token{Name: "admin", Role: store.RoleAdmin, Hash: sum[:]}); err != nil || !ok {
		t.Fatalf("CreateFirstAdmin = %v, %v", ok, err)
	}
	e := &accountsEnv{env: &env{admin: secret}, db: db, org: org}
	e.srv = httptest.NewUnstartedServer(nil)
	e.srv.Config.Handler = api.New(api.Deps{Store: db, Accounts: db, Actions: storeActions{db},
		BaseURL:        "http://" + e.srv.Listener.Addr().String(),
		PasswordParams: password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

// call sends body (JSON-encoded unless a string) and checks the status.
func (e *accountsEnv) call(t *testing.T, method, path, token string, body any, status int, out any) []byte {
	t.Helper()
	s, ok := body.(string)
	if !ok && body != nil {
		b, _ := json.Marshal(body)
		s = string(b)
	}
	resp, b := e.do(t, method, path, token, s)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, resp.StatusCode, status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return b
}

func (e *accountsEnv) login(t *testing.T, user, pw, org string, status int) api.LoginResult {
	t.Helper()
	var out api.LoginResult
	if status != 200 {
		e.call(t, "POST", "/api/login", "", api.LoginInput{User: user, Password: pw, Org: org}, status, nil)
		return out
	}
	e.call(t, "POST", "/api/login", "", api.LoginInput{User: user, Password: pw, Org: org}, status, &out)
	return out
}

func TestLoginAndRoles(t *testing.T) {
	e := newAccountsEnv(t)
	var m api.Member
	e.call(t, "POST", "/api/users", e.admin, api.UserInput{Name: "bob", Role: "developer", Password: "hunter2hunter2"}, 201, &m)
	if m != (api.Member{User: "bob", Role: "developer"}) {
		t.Errorf("added member %+v", m)
	}
	e.call(t, "POST", "/api/users", e.admin, api.UserInput{Name: "bob", Role: "viewer"}, 409, nil)
	e.call(t, "POST", "/api/users", e.admin, api.UserInput{Name: "carol", Role: "owner"}, 400, nil)
	e.call(t, "POST", "/api/users", e.admin, api.UserInput{Name: "carol", Role: "viewer", Password: "short"}, 400, nil)

	// A wrong password and an unknown user get the same answer.
	wrong := e.call(t, "POST", "/api/login", "", api.LoginInput{User: "bob", Password: "nope"}, 401, nil)
	unknown := e.call(t, "POST", "/api/login", "", api.LoginInput{User: "nobody", Password: "nope"}, 401, nil)
	if string(wrong) != string(unknown) {
		t.Errorf("wrong password answers %s, unknown user %s", wrong, unknown)
	}
	// The admin of the first start has no password: no login with an empty one.
	e.call(t, "POST", "/api/login", "", api.LoginInput{User: "admin", Password: ""}, 401, nil)

	sess := e.login(t, "bob", "hunter2hunter2", "", 200)
	if sess.Token == "" || sess.Org != "default" || sess.Role != "developer" || time.Until(sess.Expires) > api.SessionTTL {
		t.Fatalf("login = %+v", sess)
	}
	var who api.WhoAmI
	e.call(t, "GET", "/api/whoami", sess.Token, nil, 200, &who)
	if who.User != "bob" || who.OrgRole != "developer" || who.Role != "admin" || who.Expires == nil {
		t.Errorf("whoami with a session = %+v", who)
	}
	// A developer reads and re-runs, never changes settings, whatever the token's scope.
	e.call(t, "GET", "/api/runs", sess.Token, nil, 200, nil)
	e.call(t, "POST", "/api/repos", sess.Token, api.RepoInput{URL: "https://x/a/b", Forge: "github"}, 403, nil)
	e.call(t, "GET", "/api/audit", sess.Token, nil, 403, nil)
	e.call(t, "POST", "/api/users", sess.Token, api.UserInput{Name: "eve", Role: "admin"}, 403, nil)

	// Roles change at once for every token of the user.
	e.call(t, "PUT", "/api/users/bob/role", e.admin, api.RoleInput{Role: "maintainer"}, 200, nil)
	e.call(t, "POST", "/api/repos", sess.Token, api.RepoInput{URL: "https://x/a/b", Forge: "github", Name: "a/b"}, 201, nil)
	e.call(t, "PUT", "/api/users/bob/role", e.admin, api.RoleInput{Role: "viewer"}, 200, nil)
	e.call(t, "GET", "/api/repos", sess.Token, nil, 200, nil)
	e.call(t, "POST", "/api/repos", sess.Token, api.RepoInput{URL: "https://x/a/c", Forge: "github"}, 403, nil)
	e.call(t, "PUT", "/api/users/nobody/role", e.admin, api.RoleInput{Role: "viewer"}, 404, nil)
	// The only admin stays admin.
	e.call(t, "PUT", "/api/users/admin/role", e.admin, api.RoleInput{Role: "viewer"}, 409, nil)
	e.call(t, "DELETE", "/api/users/admin", e.admin, nil, 409, nil)

	var members api.MemberList
	e.call(t, "GET", "/api/users", sess.Token, nil, 200, &members)
	if len(members.Members) != 2 || members.Members[0].User != "admin" || !members.Members[0].ServerAdmin || members.Members[1].Role != "viewer" {
		t.Errorf("members = %+v", members)
	}

	// Removed from the organisation, bob's tokens reach nothing there.
	e.call(t, "DELETE", "/api/users/bob", e.admin, nil, 204, nil)
	b := e.call(t, "GET", "/api/runs", sess.Token, nil, 403, nil)
	if !strings.Contains(string(b), "no role") {
		t.Errorf("a removed member's refusal: %s", b)
	}
	e.login(t, "bob", "hunter2hunter2", "", 403)
	e.call(t, "DELETE", "/api/users/bob", e.admin, nil, 404, nil)
}

func TestPersonalTokens(t *testing.T) {
	e := newAccountsEnv(t)
	e.call(t, "POST", "/api/users", e.admin, api.UserInput{Name: "bob", Role: "developer", Password: "hunter2hunter2"}, 201, nil)
	sess := e.login(t, "bob", "hunter2hunter2", "", 200).Token

	var w, r api.TokenCreated
	e.call(t, "POST", "/api/tokens", sess, api.TokenInput{Name: "ci", Scope: "write", ExpiresInDays: 7}, 201, &w)
	if w.Secret == "" || w.Token.Scope != "write" || w.Token.Kind != "api" || w.Token.Expires == nil ||
		time.Until(*w.Token.Expires) < 6*24*time.Hour || time.Until(*w.Token.Expires) > 8*24*time.Hour {
		t.Fatalf("created token %+v", w)
	}
	e.call(t, "POST", "/api/tokens", w.Secret, api.TokenInput{Name: "ro", Scope: "read"}, 201, &r)
	if d := time.Until(*r.Token.Expires); d < 89*24*time.Hour || d > 91*24*time.Hour {
		t.Errorf("default expiry in %v, want 90 days", d)
	}
	// No escalation through tokens.
	e.call(t, "POST", "/api/tokens", w.Secret, api.TokenInput{Name: "up", Scope: "admin"}, 403, nil)
	e.call(t, "POST", "/api/tokens", r.Secret, api.TokenInput{Name: "up", Scope: "read"}, 403, nil)
	e.call(t, "DELETE", fmt.Sprintf("/api/tokens/%d", w.Token.ID), r.Secret, nil, 403, nil)
	e.call(t, "POST", "/api/tokens", sess, api.TokenInput{Name: "x", Scope: "root"}, 400, nil)
	e.call(t, "POST", "/api/tokens", sess, api.TokenInput{Name: "x", Scope: "read", ExpiresInDays: 99999}, 400, nil)
	e.call(t, "POST", "/api/tokens", sess, api.TokenInput{Name: "x", Scope: "read", Org: "nowhere"}, 404, nil)
	// The scope limits a developer's write token to what write allows.
	e.call(t, "GET", "/api/runs", r.Secret, nil, 200, nil)

	var list api.TokenList
	e.call(t, "GET", "/api/tokens", r.Secret, nil, 200, &list)
	if len(list.Tokens) != 3 || list.Tokens[0].Kind != "session" || list.Tokens[1].Name != "ci" || list.Tokens[2].Name != "ro" {
		t.Fatalf("tokens = %+v", list)
	}
	if b, _ := json.Marshal(list); strings.Contains(string(b), w.Secret) || strings.Contains(string(b), "hash") {
		t.Errorf("the list shows secrets: %s", b)
	}
	// Another user's token is not found.
	e.call(t, "DELETE", fmt.Sprintf("/api/tokens/%d", w.Token.ID), e.admin, nil, 404, nil)

	var rot api.TokenCreated
	e.call(t, "POST", fmt.Sprintf("/api/tokens/%d/rotate", w.Token.ID), sess, nil, 200, &rot)
	if rot.Secret == w.Secret || rot.Token.ID != w.Token.ID || rot.Token.Scope != "write" {
		t.Errorf("rotated %+v", rot)
	}
	e.call(t, "GET", "/api/whoami", w.Secret, nil, 401, nil)
	e.call(t, "GET", "/api/whoami", rot.Secret, nil, 200, nil)
	e.call(t, "DELETE", fmt.Sprintf("/api/tokens/%d", w.Token.ID), sess, nil, 204, nil)
	e.call(t, "GET", "/api/whoami", rot.Secret, nil, 401, nil)
	e.call(t, "DELETE", fmt.Sprintf("/api/tokens/%d", w.Token.ID), sess, nil, 404, nil)

	// An expired token is refused with the reason.
	bob, _ := e.db.UserByName(t.Context(), "bob")
	sum := sha256.Sum256([]byte("cvy_old"))
	if err := e.db.CreateToken(t.Context(), &store.Token{OrgID: e.org.ID, UserID: bob.ID, Name: "old", Role: store.RoleRead,
		Hash: sum[:], Expires: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if b := e.call(t, "GET", "/api/runs", "cvy_old", nil, 401, nil); !strings.Contains(string(b), "expired") {
		t.Errorf("expired token: %s", b)
	}
}

func TestOrganisationsAndAudit(t *testing.T) {
	e := newAccountsEnv(t)
	e.call(t, "POST", "/api/users", e.admin, api.UserInput{Name: "bob", Role: "viewer", Password: "hunter2hunter2"}, 201, nil)
	bob := e.login(t, "bob", "hunter2hunter2", "", 200).Token
	e.call(t, "GET", "/api/orgs", bob, nil, 403, nil)
	e.call(t, "POST", "/api/orgs", bob, api.OrgInput{Name: "mine"}, 403, nil)

	var o api.Org
	e.call(t, "POST", "/api/orgs", e.admin, api.OrgInput{Name: "acme", Admin: "bob"}, 201, &o)
	e.call(t, "POST", "/api/orgs", e.admin, api.OrgInput{Name: "acme"}, 409, nil)
	e.call(t, "POST", "/api/orgs", e.admin, api.OrgInput{Name: "x", Admin: "nobody"}, 404, nil)
	var orgs api.OrgList
	e.call(t, "GET", "/api/orgs", e.admin, nil, 200, &orgs)
	if len(orgs.Orgs) != 2 {
		t.Errorf("orgs = %+v", orgs)
	}
	// bob belongs to two organisations now: a login names one.
	e.login(t, "bob", "hunter2hunter2", "", 400)
	acme := e.login(t, "bob", "hunter2hunter2", "acme", 200)
	if acme.Role != "admin" || acme.OrgID != o.ID {
		t.Errorf("login to acme = %+v", acme)
	}
	e.login(t, "bob", "hunter2hunter2", "other", 403)
	// acme's admin sees acme's members, not default's, and no server entries.
	var members api.MemberList
	e.call(t, "GET", "/api/users", acme.Token, nil, 200, &members)
	if len(members.Members) != 1 || members.Members[0].User != "bob" {
		t.Errorf("acme members = %+v", members)
	}
	e.call(t, "POST", "/api/users", acme.Token, api.UserInput{Name: "carol", Role: "viewer"}, 201, nil)

	// Password change: the current one is required.
	e.call(t, "PUT", "/api/password", acme.Token, api.PasswordInput{Current: "wrong", New: "a-new-password"}, 403, nil)
	e.call(t, "PUT", "/api/password", acme.Token, api.PasswordInput{Current: "hunter2hunter2", New: "a-new-password"}, 204, nil)
	e.login(t, "bob", "a-new-password", "acme", 200)
	// JSON bodies of PUT routes are bounded like the others.
	huge := `{"current":"` + strings.Repeat("x", api.MaxBody) + `","new":"xxxxxxxxxx"}`
	e.call(t, "PUT", "/api/password", acme.Token, huge, 413, nil)

	var acmeLog api.AuditList
	e.call(t, "GET", "/api/audit", acme.Token, nil, 200, &acmeLog)
	var actions []string
	for _, en := range acmeLog.Entries {
		if en.OrgID != o.ID {
			t.Errorf("acme's audit log shows %+v", en)
		}
		actions = append(actions, en.Action+" "+en.Target)
	}
	want := []string{"session.create user bob", "member.add user carol", "user.create user carol", "session.create user bob"}
	if strings.Join(actions, ", ") != strings.Join(want, ", ") {
		t.Errorf("acme's audit log: %q, want %q", actions, want)
	}
	if a := acmeLog.Entries[1].Actor; !strings.HasPrefix(a, "bob (token ") {
		t.Errorf("actor %q", a)
	}
	var all api.AuditList
	e.call(t, "GET", "/api/audit?limit=2", e.admin, nil, 200, &all)
	if len(all.Entries) != 2 || all.NextBefore == 0 || all.Entries[0].Action != "user.password" {
		t.Errorf("the server admin's audit log: %+v", all)
	}
	seen := map[string]bool{}
	for _, en := range all.Entries {
		seen[en.Action] = true
	}
	e.call(t, "GET", fmt.Sprintf("/api/audit?before=%d", all.NextBefore), e.admin, nil, 200, &all)
	for _, en := range all.Entries {
		seen[en.Action] = true
	}
	for _, a := range []string{"org.create", "member.add", "user.create", "session.create"} {
		if !seen[a] {
			t.Errorf("audit log without %s: %+v", a, all.Entries)
		}
	}
	e.call(t, "GET", "/api/audit?limit=0", e.admin, nil, 400, nil)
}
