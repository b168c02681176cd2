package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

func (e *env) newUser(name string) *store.User {
	e.t.Helper()
	u := &store.User{Name: name}
	e.must(e.s.CreateUser(e.ctx, u))
	return u
}

func testUsers(t *testing.T, e *env) {
	u := &store.User{Name: "alice", PasswordHash: "$argon2id$x"}
	e.must(e.s.CreateUser(e.ctx, u))
	if u.ID == 0 || u.Created.IsZero() || u.ServerAdmin {
		t.Fatalf("CreateUser: %+v", u)
	}
	wantKind(t, e.s.CreateUser(e.ctx, &store.User{Name: "alice"}), errs.Conflict, "a taken user name")
	for _, bad := range []string{"", "-x", "a b", "a/b", string(make([]byte, 65))} {
		wantKind(t, e.s.CreateUser(e.ctx, &store.User{Name: bad}), errs.Invalid, fmt.Sprintf("user name %q", bad))
	}
	got, err := e.s.UserByName(e.ctx, "alice")
	e.must(err)
	if got.ID != u.ID || got.PasswordHash != u.PasswordHash || !got.Created.Equal(u.Created) {
		t.Errorf("UserByName = %+v, want %+v", got, u)
	}
	byID, err := e.s.GetUser(e.ctx, u.ID)
	e.must(err)
	if byID.Name != "alice" {
		t.Errorf("GetUser = %+v", byID)
	}
	_, err = e.s.UserByName(e.ctx, "bob")
	wantKind(t, err, errs.NotFound, "UserByName(unknown)")
	e.must(e.s.SetPassword(e.ctx, u.ID, "$argon2id$new"))
	if got, _ := e.s.GetUser(e.ctx, u.ID); got == nil || got.PasswordHash != "$argon2id$new" {
		t.Errorf("after SetPassword: %+v", got)
	}
	wantKind(t, e.s.SetPassword(e.ctx, u.ID+100, "x"), errs.NotFound, "SetPassword(unknown)")
	_, err = e.s.GetUser(e.ctx, u.ID+100)
	wantKind(t, err, errs.NotFound, "GetUser(unknown)")

	o, err := e.s.CreateOrg(e.ctx, "acme", 0)
	e.must(err)
	_, err = e.s.CreateOrg(e.ctx, "acme", 0)
	wantKind(t, err, errs.Conflict, "CreateOrg of a taken name")
	_, err = e.s.CreateOrg(e.ctx, "a b", 0)
	wantKind(t, err, errs.Invalid, "CreateOrg of a bad name")
	byName, err := e.s.OrgByName(e.ctx, "acme")
	e.must(err)
	if byName.ID != o.ID {
		t.Errorf("OrgByName = %+v, want %+v", byName, o)
	}
	if g, err := e.s.GetOrg(e.ctx, o.ID); err != nil || g.Name != "acme" {
		t.Errorf("GetOrg = %+v, %v", g, err)
	}
	_, err = e.s.GetOrg(e.ctx, o.ID+100)
	wantKind(t, err, errs.NotFound, "GetOrg(unknown)")
	orgs, err := e.s.ListOrgs(e.ctx)
	e.must(err)
	if len(orgs) != 2 || orgs[0].Name != "acme" || orgs[1].Name != "default" {
		t.Errorf("ListOrgs = %v", orgs)
	}
}

func testMembers(t *testing.T, e *env) {
	alice, bob := e.newUser("alice"), e.newUser("bob")
	other := e.newOrg("other")
	e.must(e.s.SetMember(e.ctx, e.org.ID, alice.ID, store.OrgAdmin))
	e.must(e.s.SetMember(e.ctx, e.org.ID, bob.ID, store.OrgViewer))
	e.must(e.s.SetMember(e.ctx, other.ID, bob.ID, store.OrgAdmin))
	wantKind(t, e.s.SetMember(e.ctx, e.org.ID, bob.ID, "owner"), errs.Invalid, "an unknown role")
	wantKind(t, e.s.SetMember(e.ctx, e.org.ID, bob.ID+100, store.OrgViewer), errs.NotFound, "an unknown user")
	wantKind(t, e.s.SetMember(e.ctx, other.ID+100, bob.ID, store.OrgViewer), errs.NotFound, "an unknown organisation")

	m, err := e.s.Member(e.ctx, e.org.ID, bob.ID)
	e.must(err)
	if m.Role != store.OrgViewer || m.Name != "bob" || m.OrgID != e.org.ID || m.UserID != bob.ID {
		t.Errorf("Member = %+v", m)
	}
	e.must(e.s.SetMember(e.ctx, e.org.ID, bob.ID, store.OrgMaintainer))
	if m, _ := e.s.Member(e.ctx, e.org.ID, bob.ID); m == nil || m.Role != store.OrgMaintainer {
		t.Errorf("after SetMember(maintainer): %+v", m)
	}
	list, err := e.s.ListMembers(e.ctx, e.org.ID)
	e.must(err)
	if len(list) != 2 || list[0].Name != "alice" || list[1].Name != "bob" {
		t.Errorf("ListMembers = %+v", list)
	}
	ms, err := e.s.Memberships(e.ctx, bob.ID)
	e.must(err)
	if len(ms) != 2 {
		t.Errorf("Memberships(bob) = %+v", ms)
	}

	// The last admin stays.
	wantKind(t, e.s.SetMember(e.ctx, e.org.ID, alice.ID, store.OrgViewer), errs.Conflict, "demoting the last admin")
	wantKind(t, e.s.SetMember(e.ctx, e.org.ID, alice.ID, ""), errs.Conflict, "removing the last admin")
	e.must(e.s.SetMember(e.ctx, e.org.ID, bob.ID, store.OrgAdmin))
	e.must(e.s.SetMember(e.ctx, e.org.ID, alice.ID, ""))
	_, err = e.s.Member(e.ctx, e.org.ID, alice.ID)
	wantKind(t, err, errs.NotFound, "Member after removal")
	wantKind(t, e.s.SetMember(e.ctx, e.org.ID, alice.ID, ""), errs.NotFound, "removing a non-member")
}

// testMembersRace: two admins demoting each other at once leave one admin.
func testMembersRace(t *testing.T, e *env) {
	a, b := e.newUser("a"), e.newUser("b")
	e.must(e.s.SetMember(e.ctx, e.org.ID, a.ID, store.OrgAdmin))
	e.must(e.s.SetMember(e.ctx, e.org.ID, b.ID, store.OrgAdmin))
	var wg sync.WaitGroup
	for _, u := range []*store.User{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = e.s.SetMember(e.ctx, e.org.ID, u.ID, store.OrgViewer)
		}()
	}
	wg.Wait()
	list, err := e.s.ListMembers(e.ctx, e.org.ID)
	e.must(err)
	admins := 0
	for _, m := range list {
		if m.Role == store.OrgAdmin {
			admins++
		}
	}
	if admins != 1 {
		t.Errorf("after two concurrent demotions: %d admins, want 1 (%+v)", admins, list)
	}
}

func testTokens(t *testing.T, e *env) {
	other := e.newOrg("other")
	u := e.newUser("ci")
	tok := &store.Token{OrgID: e.org.ID, UserID: u.ID, Name: "ci", Role: store.RoleWrite, Hash: []byte("hash-1"),
		Expires: time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)}
	e.must(e.s.CreateToken(e.ctx, tok))
	if tok.ID == 0 || tok.Created.IsZero() || tok.Kind != store.TokenAPI {
		t.Fatalf("CreateToken did not set ID, Created and Kind: %+v", tok)
	}
	dup := &store.Token{OrgID: other.ID, UserID: u.ID, Name: "x", Role: store.RoleRead, Hash: []byte("hash-1")}
	wantKind(t, e.s.CreateToken(e.ctx, dup), errs.Conflict, "token with a taken hash")
	for _, bad := range []*store.Token{
		{OrgID: e.org.ID, UserID: u.ID, Name: "x", Role: "root", Hash: []byte("hash-2")},
		{OrgID: e.org.ID, UserID: u.ID, Name: "x", Role: store.RoleAgent, Hash: []byte("hash-2")},
		{OrgID: e.org.ID, Name: "x", Role: store.RoleRead, Hash: []byte("hash-2")},
		{OrgID: e.org.ID, UserID: u.ID, Name: "x", Role: store.RoleRead, Kind: "magic", Hash: []byte("hash-2")},
	} {
		wantKind(t, e.s.CreateToken(e.ctx, bad), errs.Invalid, fmt.Sprintf("token %+v", bad))
	}
	e.must(e.s.CreateToken(e.ctx, &store.Token{OrgID: e.org.ID, UserID: u.ID, Name: "s", Role: store.RoleAdmin,
		Kind: store.TokenSession, Hash: []byte("hash-3")}))
	e.must(e.s.CreateToken(e.ctx, &store.Token{OrgID: other.ID, UserID: u.ID, Name: "adm", Role: store.RoleAdmin, Hash: []byte("hash-4")}))

	got, err := e.s.TokenByHash(e.ctx, []byte("hash-1"))
	e.must(err)
	if got.ID != tok.ID || got.OrgID != e.org.ID || got.UserID != u.ID || got.Name != "ci" || got.Role != store.RoleWrite ||
		!bytes.Equal(got.Hash, tok.Hash) || !got.Created.Equal(tok.Created) || !got.Expires.Equal(tok.Expires) {
		t.Errorf("TokenByHash = %+v, want %+v", got, tok)
	}
	if !near(got.LastUsed, time.Now(), time.Minute) {
		t.Errorf("TokenByHash did not record the use: LastUsed %v", got.LastUsed)
	}
	if got.Expired(time.Now()) || !got.Expired(tok.Expires) {
		t.Errorf("Expired is wrong around %v", tok.Expires)
	}
	_, err = e.s.TokenByHash(e.ctx, []byte("nope"))
	wantKind(t, err, errs.NotFound, "TokenByHash(unknown)")

	for _, c := range []struct {
		org  int64
		want int
	}{{e.org.ID, 2}, {other.ID, 1}, {-1, 0}} {
		n, err := e.s.CountTokens(e.ctx, c.org)
		e.must(err)
		if n != c.want {
			t.Errorf("CountTokens(%d) = %d, want %d", c.org, n, c.want)
		}
	}
}

func testTokenLifecycle(t *testing.T, e *env) {
	alice, bob := e.newUser("alice"), e.newUser("bob")
	a1 := &store.Token{OrgID: e.org.ID, UserID: alice.ID, Name: "laptop", Role: store.RoleAdmin, Hash: []byte("a1")}
	a2 := &store.Token{OrgID: e.org.ID, UserID: alice.ID, Name: "ci", Role: store.RoleRead, Hash: []byte("a2")}
	b1 := &store.Token{OrgID: e.org.ID, UserID: bob.ID, Name: "bob", Role: store.RoleRead, Hash: []byte("b1")}
	for _, tk := range []*store.Token{a1, a2, b1} {
		e.must(e.s.CreateToken(e.ctx, tk))
	}
	list, err := e.s.ListTokens(e.ctx, alice.ID)
	e.must(err)
	if len(list) != 2 || list[0].ID != a1.ID || list[1].ID != a2.ID {
		t.Fatalf("ListTokens(alice) = %+v", list)
	}
	// Another user's token is not found, whatever its id.
	wantKind(t, e.s.RevokeToken(e.ctx, bob.ID, a1.ID), errs.NotFound, "revoking another user's token")
	_, err = e.s.RotateToken(e.ctx, bob.ID, a1.ID, []byte("stolen"))
	wantKind(t, err, errs.NotFound, "rotating another user's token")

	rot, err := e.s.RotateToken(e.ctx, alice.ID, a1.ID, []byte("a1-new"))
	e.must(err)
	if rot.ID != a1.ID || rot.Name != "laptop" || rot.Role != store.RoleAdmin || !bytes.Equal(rot.Hash, []byte("a1-new")) {
		t.Errorf("RotateToken = %+v", rot)
	}
	_, err = e.s.TokenByHash(e.ctx, []byte("a1"))
	wantKind(t, err, errs.NotFound, "the old secret after rotation")
	if _, err := e.s.TokenByHash(e.ctx, []byte("a1-new")); err != nil {
		t.Errorf("the new secret after rotation: %v", err)
	}
	e.must(e.s.RevokeToken(e.ctx, alice.ID, a2.ID))
	_, err = e.s.TokenByHash(e.ctx, []byte("a2"))
	wantKind(t, err, errs.NotFound, "a revoked token")
	wantKind(t, e.s.RevokeToken(e.ctx, alice.ID, a2.ID), errs.NotFound, "revoking twice")
	if list, _ := e.s.ListTokens(e.ctx, alice.ID); len(list) != 1 {
		t.Errorf("ListTokens after revoke = %+v", list)
	}
	// A new session clears the user's expired sessions, nothing else.
	old := &store.Token{OrgID: e.org.ID, UserID: alice.ID, Name: "login", Role: store.RoleAdmin, Kind: store.TokenSession,
		Hash: []byte("s-old"), Expires: time.Now().Add(-time.Hour)}
	e.must(e.s.CreateToken(e.ctx, old))
	e.must(e.s.CreateToken(e.ctx, &store.Token{OrgID: e.org.ID, UserID: bob.ID, Name: "login", Role: store.RoleAdmin,
		Kind: store.TokenSession, Hash: []byte("s-bob"), Expires: time.Now().Add(-time.Hour)}))
	e.must(e.s.CreateToken(e.ctx, &store.Token{OrgID: e.org.ID, UserID: alice.ID, Name: "login", Role: store.RoleAdmin,
		Kind: store.TokenSession, Hash: []byte("s-new"), Expires: time.Now().Add(time.Hour)}))
	if list, _ := e.s.ListTokens(e.ctx, alice.ID); len(list) != 2 || list[1].Kind != store.TokenSession || list[1].ID == old.ID {
		t.Errorf("alice's tokens after a new session = %+v", list)
	}
	if list, _ := e.s.ListTokens(e.ctx, bob.ID); len(list) != 2 {
		t.Errorf("bob's tokens after alice's session = %+v", list)
	}
}

// testFirstAdmin: replicas starting together on an empty database make one
// admin between them.
func testFirstAdmin(t *testing.T, e *env) {
	var wg sync.WaitGroup
	made := make([]bool, 8)
	errc := make(chan error, len(made))
	for i := range made {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := &store.Token{Name: "admin", Role: store.RoleAdmin, Hash: []byte(fmt.Sprintf("first-%d", i))}
			u := &store.User{Name: "admin"}
			ok, err := e.s.CreateFirstAdmin(e.ctx, u, e.org.ID, tok)
			made[i] = ok
			if err != nil {
				errc <- err
			}
			if ok && (tok.ID == 0 || u.ID == 0 || tok.UserID != u.ID) {
				errc <- fmt.Errorf("first admin %d made without ids: %+v %+v", i, u, tok)
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	n := 0
	for _, ok := range made {
		if ok {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d of %d concurrent CreateFirstAdmin calls made an admin, want 1", n, len(made))
	}
	if c, err := e.s.CountTokens(e.ctx, e.org.ID); err != nil || c != 1 {
		t.Errorf("CountTokens = %d, %v; want 1", c, err)
	}
	u, err := e.s.UserByName(e.ctx, "admin")
	e.must(err)
	m, err := e.s.Member(e.ctx, e.org.ID, u.ID)
	e.must(err)
	if !u.ServerAdmin || m.Role != store.OrgAdmin || !m.ServerAdmin {
		t.Errorf("first admin %+v, membership %+v: want a server admin and organisation admin", u, m)
	}
	ok, err := e.s.CreateFirstAdmin(e.ctx, &store.User{Name: "root"}, e.org.ID, &store.Token{Name: "admin", Role: store.RoleAdmin, Hash: []byte("later")})
	if err != nil || ok {
		t.Errorf("CreateFirstAdmin when a user exists = %v, %v; want false", ok, err)
	}
	_, err = e.s.CreateFirstAdmin(e.ctx, &store.User{Name: "root"}, e.org.ID, &store.Token{Name: "admin", Role: "root", Hash: []byte("bad")})
	wantKind(t, err, errs.Invalid, "CreateFirstAdmin with an unknown scope")
}

func testAudit(t *testing.T, e *env) {
	other := e.newOrg("other")
	var ids []int64
	for i, en := range []*store.AuditEntry{
		{OrgID: e.org.ID, ActorID: 1, Actor: "alice (token laptop)", Action: "token.create", Target: "token 3", Detail: "scope read"},
		{OrgID: 0, Actor: "admin", Action: "org.create", Target: "org other"},
		{OrgID: other.ID, Actor: "bob", Action: "member.role", Target: "user carol"},
		{OrgID: e.org.ID, ActorID: 1, Actor: "alice", Action: "repo.create", Target: "repo acme/app"},
	} {
		e.must(e.s.AppendAudit(e.ctx, en))
		if en.ID == 0 || en.Time.IsZero() {
			t.Fatalf("entry %d: AppendAudit did not set ID and Time", i)
		}
		ids = append(ids, en.ID)
	}
	wantKind(t, e.s.AppendAudit(e.ctx, &store.AuditEntry{OrgID: e.org.ID}), errs.Invalid, "an entry without an action")

	list, err := e.s.ListAudit(e.ctx, e.org.ID, store.AuditFilter{})
	e.must(err)
	if len(list) != 2 || list[0].ID != ids[3] || list[1].ID != ids[0] || list[1].Detail != "scope read" || list[1].Actor != "alice (token laptop)" {
		t.Errorf("ListAudit(org) = %+v", list)
	}
	list, err = e.s.ListAudit(e.ctx, e.org.ID, store.AuditFilter{Server: true, Limit: 2})
	e.must(err)
	if len(list) != 2 || list[0].ID != ids[3] || list[1].ID != ids[1] {
		t.Errorf("ListAudit(org, server, limit 2) = %+v", list)
	}
	list, err = e.s.ListAudit(e.ctx, e.org.ID, store.AuditFilter{Server: true, Before: ids[1]})
	e.must(err)
	if len(list) != 1 || list[0].ID != ids[0] {
		t.Errorf("ListAudit(before) = %+v", list)
	}
}
