package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/password"
	"github.com/conveyor-ci/conveyor/internal/store"
)

const (
	// SessionTTL is how long a login's session token works.
	SessionTTL = 12 * time.Hour
	// defaultTokenDays and maxTokenDays bound personal tokens' lives.
	defaultTokenDays  = 90
	maxTokenDays      = 3650
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

func accountRoutes() []route {
	return []route{
		accountRoute("POST", "/api/login", anyone, 200, LoginResult{}, (*server).login),
		accountRoute("PUT", "/api/password", selfAdmin, 204, nil, (*server).setPassword),
		accountRoute("GET", "/api/orgs", serverRd, 200, OrgList{}, (*server).listOrgs),
		accountRoute("POST", "/api/orgs", serverAdm, 201, Org{}, (*server).createOrg),
		accountRoute("GET", "/api/users", viewer, 200, MemberList{}, (*server).listMembers),
		accountRoute("POST", "/api/users", orgAdmin, 201, Member{}, (*server).addMember),
		accountRoute("PUT", "/api/users/{name}/role", orgAdmin, 200, Member{}, (*server).setRole),
		accountRoute("DELETE", "/api/users/{name}", orgAdmin, 204, nil, (*server).removeMember),
		accountRoute("GET", "/api/tokens", self, 200, TokenList{}, (*server).listTokens),
		accountRoute("POST", "/api/tokens", selfWrite, 201, TokenCreated{}, (*server).createToken),
		accountRoute("DELETE", "/api/tokens/{id}", selfWrite, 204, nil, (*server).revokeToken),
		accountRoute("POST", "/api/tokens/{id}/rotate", selfWrite, 200, TokenCreated{}, (*server).rotateToken),
		accountRoute("GET", "/api/audit", auditRead, 200, AuditList{}, (*server).listAudit),
	}
}

// accountOp is a route's work on the account store: its answer (nil: no
// body) or an error.
type accountOp[In any] func(a *server, q request, st AccountStore, in In) (any, error)

// accountRoute is a route of the account store: 503 when the server has
// none, else handleJSON around op.
func accountRoute[In any](method, path string, need access, status int, out any, op accountOp[In]) route {
	h := handleJSON(status, func(a *server, q request, in In) (any, error) { return op(a, q, a.Accounts, in) })
	return route{method, path, need, status, inputSample[In](), out, func(a *server, w http.ResponseWriter, r *http.Request, tok *store.Token) {
		if _, ok := a.accounts(w); ok {
			h(a, w, r, tok)
		}
	}}
}

// accounts returns the account store, or answers 503 without one.
func (a *server) accounts(w http.ResponseWriter) (AccountStore, bool) {
	if a.Accounts == nil {
		writeErrorMsg(w, errs.Unavailable, "this server does not manage users")
		return nil, false
	}
	return a.Accounts, true
}

// audit records a change made by the request's caller in the audit log
// of organisation orgID (0: server-wide). It is written before the answer
// and survives the client going away; a failure is logged.
func (a *server) audit(r *http.Request, orgID int64, action, target, detail string) {
	if a.Accounts == nil {
		return
	}
	a.appendAudit(r, a.auditEntry(r, orgID, action, fixed(target, detail)))
}

func (a *server) appendAudit(r *http.Request, e *store.AuditEntry) {
	if err := a.Accounts.AppendAudit(context.WithoutCancel(r.Context()), e); err != nil {
		a.Log.Error("audit log", "action", e.Action, "target", e.Target, "err", err)
	}
}

func (a *server) auditEntry(r *http.Request, orgID int64, action string, what func() (target, detail string)) *store.AuditEntry {
	e := &store.AuditEntry{OrgID: orgID, Action: action}
	e.Target, e.Detail = what()
	if c := callerOf(r); c != nil {
		e.ActorID, e.Actor = c.tok.UserID, c.actor()
	}
	return e
}

// audited makes change and its audit entry one: change gets a context
// carrying the entry (store.WithAudit), which the SQL store inserts in
// the transaction of the change's write, so that both commit or neither
// does. what gives the entry's target and detail; it runs after the
// change's statements, so it may read what they set (a new ID). When no
// transaction took the entry (a store without support), it is appended
// after the change, as audit does.
func (a *server) audited(r *http.Request, orgID int64, action string, what func() (target, detail string), change func(ctx context.Context) error) error {
	if a.Accounts == nil {
		return change(r.Context())
	}
	ctx, pending := store.WithAudit(r.Context(), func() *store.AuditEntry { return a.auditEntry(r, orgID, action, what) })
	if err := change(ctx); err != nil {
		return err
	}
	if !pending.Written() {
		a.appendAudit(r, pending.Entry())
	}
	return nil
}

// fixed is an audit entry's target and detail known before the change.
func fixed(target, detail string) func() (string, string) {
	return func() (string, string) { return target, detail }
}

// newSecret makes a token secret and its hash.
func newSecret() (string, []byte) {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	s := "cvy_" + hex.EncodeToString(b)
	sum := sha256.Sum256([]byte(s))
	return s, sum[:]
}

// hashing bounds concurrent argon2id computations (64 MiB each): a flood
// of logins waits here instead of exhausting memory.
func (a *server) hashing(ctx context.Context, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	select {
	case a.hashSlots <- struct{}{}:
		defer func() { <-a.hashSlots }()
		return f()
	case <-ctx.Done():
		return errs.E("", errs.Unavailable, "too many password checks at once; retry")
	}
}

// dummyHash is verified for unknown users and users without a password,
// so that a login takes as long whether the user exists or not.
func (a *server) dummyHash() string {
	a.dummyOnce.Do(func() { a.dummy, _ = password.Hash("conveyor-dummy", a.PasswordParams) })
	return a.dummy
}

func (a *server) login(q request, st AccountStore, in LoginInput) (any, error) {
	ctx := q.r.Context()
	userKey, addrKey := loginKeys(q.r, in.User)
	if err := a.failedLogins.check(ctx, userKey, addrKey); err != nil {
		return nil, err
	}
	u, err := st.UserByName(ctx, in.User)
	if err != nil && !errs.Is(err, errs.NotFound) {
		return nil, err
	}
	hash := a.dummyHash()
	if u != nil && u.PasswordHash != "" {
		hash = u.PasswordHash
	}
	var match bool
	err = a.hashing(ctx, func() error {
		var verr error
		match, verr = password.Verify(in.Password, hash)
		return verr
	})
	if err != nil && !errs.Is(err, errs.Invalid) {
		return nil, err
	}
	if u == nil || u.PasswordHash == "" || !match || in.Password == "" {
		if err := a.failedLogins.failed(ctx, userKey, addrKey); err != nil {
			a.Log.Warn("counting a failed login", "err", err)
		}
		return nil, errs.E("", errs.Unauthorized, "wrong user name or password")
	}
	if err := a.failedLogins.user.reset(ctx, userKey); err != nil {
		a.Log.Warn("forgetting failed logins", "err", err)
	}
	org, role, err := a.loginOrg(ctx, st, u, in.Org)
	if err != nil {
		return nil, err
	}
	secret, sum := newSecret()
	tok := &store.Token{OrgID: org.ID, UserID: u.ID, Name: "login", Role: store.RoleAdmin, Kind: store.TokenSession,
		Hash: sum, Expires: time.Now().Add(SessionTTL).UTC().Truncate(time.Second)}
	r := q.r.WithContext(context.WithValue(ctx, callerKey{}, &caller{tok: tok, user: u.Name, role: role, serverAdmin: u.ServerAdmin}))
	err = a.audited(r, org.ID, "session.create", func() (string, string) {
		return "user " + u.Name, fmt.Sprintf("token %d, until %s", tok.ID, tok.Expires.Format(time.RFC3339))
	}, func(ctx context.Context) error { return st.CreateToken(ctx, tok) })
	if err != nil {
		return nil, err
	}
	return LoginResult{Token: secret, TokenID: tok.ID, Expires: tok.Expires, User: u.Name, Org: org.Name, OrgID: org.ID, Role: string(role)}, nil
}

// loginOrg is the organisation a login is for: the named one (where the
// user is a member, or any for a server admin), or the user's only one.
func (a *server) loginOrg(ctx context.Context, st AccountStore, u *store.User, name string) (*store.Org, store.OrgRole, error) {
	if name == "" {
		ms, err := st.Memberships(ctx, u.ID)
		if err != nil {
			return nil, "", err
		}
		switch {
		case len(ms) == 1:
			o, err := st.GetOrg(ctx, ms[0].OrgID)
			return o, ms[0].Role, err
		case len(ms) == 0 && !u.ServerAdmin:
			return nil, "", errs.E("", errs.Forbidden, "user %s belongs to no organisation", u.Name)
		case len(ms) == 0:
			return nil, "", errs.E("", errs.Invalid, "user %s belongs to no organisation: name one (org), as a server admin", u.Name)
		}
		return nil, "", errs.E("", errs.Invalid, "user %s belongs to several organisations: name one (org)", u.Name)
	}
	o, err := st.OrgByName(ctx, name)
	if errs.Is(err, errs.NotFound) {
		return nil, "", errs.E("", errs.Forbidden, "user %s is not a member of organisation %q", u.Name, name)
	}
	if err != nil {
		return nil, "", err
	}
	m, err := st.Member(ctx, o.ID, u.ID)
	switch {
	case err == nil:
		return o, m.Role, nil
	case errs.Is(err, errs.NotFound) && u.ServerAdmin:
		return o, "", nil
	case errs.Is(err, errs.NotFound):
		return nil, "", errs.E("", errs.Forbidden, "user %s is not a member of organisation %q", u.Name, name)
	}
	return nil, "", err
}

func (a *server) setPassword(q request, st AccountStore, in PasswordInput) (any, error) {
	if len(in.New) < 8 {
		return nil, errs.E("", errs.Invalid, "the new password must have at least 8 characters")
	}
	ctx := q.r.Context()
	u, err := st.GetUser(ctx, q.tok.UserID)
	if err != nil {
		return nil, err
	}
	var hash string
	err = a.hashing(ctx, func() error {
		if u.PasswordHash != "" {
			if ok, err := password.Verify(in.Current, u.PasswordHash); err != nil || !ok {
				return errs.E("", errs.Forbidden, "the current password is wrong")
			}
		}
		var herr error
		hash, herr = password.Hash(in.New, a.PasswordParams)
		return herr
	})
	if err == nil {
		err = a.audited(q.r, 0, "user.password", fixed("user "+u.Name, ""),
			func(ctx context.Context) error { return st.SetPassword(ctx, u.ID, hash) })
	}
	if err != nil {
		return nil, err
	}
	return nil, nil
}

func toOrg(o *store.Org) Org { return Org{ID: o.ID, Name: o.Name, Created: o.Created} }

func (a *server) listOrgs(q request, st AccountStore, _ noInput) (any, error) {
	orgs, err := st.ListOrgs(q.r.Context())
	if err != nil {
		return nil, err
	}
	out := OrgList{Orgs: []Org{}}
	for _, o := range orgs {
		out.Orgs = append(out.Orgs, toOrg(o))
	}
	return out, nil
}

func (a *server) createOrg(q request, st AccountStore, in OrgInput) (any, error) {
	ctx := q.r.Context()
	admin := q.tok.UserID
	if in.Admin != "" {
		u, err := st.UserByName(ctx, in.Admin)
		if err != nil {
			return nil, about("user "+in.Admin, err)
		}
		admin = u.ID
	}
	o, err := st.CreateOrg(ctx, in.Name)
	if err == nil {
		// The entry goes with the admin's membership, which makes the
		// organisation usable.
		err = a.audited(q.r, 0, "org.create", fixed("org "+o.Name, fmt.Sprintf("admin user %d", admin)),
			func(ctx context.Context) error { return st.SetMember(ctx, o.ID, admin, store.OrgAdmin) })
	}
	if err != nil {
		return nil, err
	}
	return toOrg(o), nil
}

func (a *server) listMembers(q request, st AccountStore, _ noInput) (any, error) {
	ms, err := st.ListMembers(q.r.Context(), q.tok.OrgID)
	if err != nil {
		return nil, err
	}
	out := MemberList{Members: []Member{}}
	for _, m := range ms {
		out.Members = append(out.Members, toMember(m))
	}
	return out, nil
}

func parseOrgRole(s string) (store.OrgRole, error) {
	if r := store.OrgRole(s); r.Rank() > 0 {
		return r, nil
	}
	return "", errs.E("", errs.Invalid, "role %q is not admin, maintainer, developer or viewer", s)
}

// addMember adds a user to the caller's organisation, creating the
// account when the name is new.
func (a *server) addMember(q request, st AccountStore, in UserInput) (any, error) {
	role, err := parseOrgRole(in.Role)
	if err != nil {
		return nil, err
	}
	ctx, orgID := q.r.Context(), q.tok.OrgID
	u, err := st.UserByName(ctx, in.Name)
	switch {
	case errs.Is(err, errs.NotFound):
		u, err = a.newUser(q.r, orgID, st, in)
	case err == nil && in.Password != "":
		err = errs.E("", errs.Conflict, "user %s exists: only they change their password", in.Name)
	case err == nil:
		if _, merr := st.Member(ctx, orgID, u.ID); merr == nil {
			err = errs.E("", errs.Conflict, "user %s is already a member (conveyor user role)", in.Name)
		}
	}
	if err == nil {
		err = a.audited(q.r, orgID, "member.add", fixed("user "+u.Name, "role "+string(role)),
			func(ctx context.Context) error { return st.SetMember(ctx, orgID, u.ID, role) })
	}
	if err != nil {
		return nil, err
	}
	return Member{User: u.Name, Role: string(role), ServerAdmin: u.ServerAdmin}, nil
}

func (a *server) newUser(r *http.Request, orgID int64, st AccountStore, in UserInput) (*store.User, error) {
	ctx := r.Context()
	u := &store.User{Name: in.Name}
	if in.Password != "" {
		if len(in.Password) < 8 {
			return nil, errs.E("", errs.Invalid, "a password needs at least 8 characters")
		}
		err := a.hashing(ctx, func() error {
			var herr error
			u.PasswordHash, herr = password.Hash(in.Password, a.PasswordParams)
			return herr
		})
		if err != nil {
			return nil, err
		}
	}
	return u, a.audited(r, orgID, "user.create", fixed("user "+u.Name, ""),
		func(ctx context.Context) error { return st.CreateUser(ctx, u) })
}

// memberFromPath is the {name} member of the caller's organisation; a
// user who is not one is not found, whether the account exists or not.
func memberFromPath(q request, st AccountStore) (*store.User, error) {
	name := q.r.PathValue("name")
	u, err := st.UserByName(q.r.Context(), name)
	if err == nil {
		_, err = st.Member(q.r.Context(), q.tok.OrgID, u.ID)
	}
	return u, about("member "+name, err)
}

func (a *server) setRole(q request, st AccountStore, in RoleInput) (any, error) {
	u, err := memberFromPath(q, st)
	if err != nil {
		return nil, err
	}
	role, err := parseOrgRole(in.Role)
	if err == nil {
		err = a.audited(q.r, q.tok.OrgID, "member.role", fixed("user "+u.Name, "role "+string(role)),
			func(ctx context.Context) error { return st.SetMember(ctx, q.tok.OrgID, u.ID, role) })
	}
	if err != nil {
		return nil, err
	}
	return Member{User: u.Name, Role: string(role), ServerAdmin: u.ServerAdmin}, nil
}

func (a *server) removeMember(q request, st AccountStore, _ noInput) (any, error) {
	u, err := memberFromPath(q, st)
	if err != nil {
		return nil, err
	}
	err = a.audited(q.r, q.tok.OrgID, "member.remove", fixed("user "+u.Name, ""),
		func(ctx context.Context) error { return st.SetMember(ctx, q.tok.OrgID, u.ID, "") })
	if err != nil {
		return nil, err
	}
	return nil, nil
}

func (a *server) listTokens(q request, st AccountStore, _ noInput) (any, error) {
	ts, err := st.ListTokens(q.r.Context(), q.tok.UserID)
	if err != nil {
		return nil, err
	}
	out := TokenList{Tokens: []TokenInfo{}}
	for _, t := range ts {
		out.Tokens = append(out.Tokens, toTokenInfo(t))
	}
	return out, nil
}

func (a *server) createToken(q request, st AccountStore, in TokenInput) (any, error) {
	tok := q.tok
	scope := store.Role(in.Scope)
	days := in.ExpiresInDays
	if days == 0 {
		days = defaultTokenDays
	}
	switch {
	case in.Name == "" || len(in.Name) > 100:
		return nil, errs.E("", errs.Invalid, "a token needs a name of at most 100 bytes")
	case !store.ValidScope(scope):
		return nil, errs.E("", errs.Invalid, "scope %q is not read, write or admin", in.Scope)
	case store.ScopeRank(scope) > store.ScopeRank(tok.Role):
		return nil, errs.E("", errs.Forbidden, "a token of scope %s cannot make one of scope %s", tok.Role, scope)
	case days < 1 || days > maxTokenDays:
		return nil, errs.E("", errs.Invalid, "expires_in_days %d is not between 1 and %d", days, maxTokenDays)
	}
	orgID, err := a.tokenOrg(q.r, st, in.Org)
	if err != nil {
		return nil, err
	}
	secret, sum := newSecret()
	t := &store.Token{OrgID: orgID, UserID: tok.UserID, Name: in.Name, Role: scope, Kind: store.TokenAPI, Hash: sum,
		Expires: time.Now().AddDate(0, 0, days).UTC().Truncate(time.Second)}
	err = a.audited(q.r, orgID, "token.create", func() (string, string) {
		return fmt.Sprintf("token %d %q", t.ID, t.Name), fmt.Sprintf("scope %s, until %s", scope, t.Expires.Format(time.DateOnly))
	}, func(ctx context.Context) error { return st.CreateToken(ctx, t) })
	if err != nil {
		return nil, err
	}
	return TokenCreated{Token: toTokenInfo(t), Secret: secret}, nil
}

// tokenOrg is the organisation a new token is for: the caller's, or the
// named one where the caller is a member (any, for a server admin). An
// organisation the caller may not know of is not found.
func (a *server) tokenOrg(r *http.Request, st AccountStore, name string) (int64, error) {
	c := callerOf(r)
	if name == "" {
		return c.tok.OrgID, nil
	}
	o, err := st.OrgByName(r.Context(), name)
	if err == nil && !c.serverAdmin {
		_, err = st.Member(r.Context(), o.ID, c.tok.UserID)
	}
	if errs.Is(err, errs.NotFound) {
		return 0, errs.E("", errs.NotFound, "no organisation %q of yours", name)
	}
	if err != nil {
		return 0, err
	}
	return o.ID, nil
}

// ownToken is the caller's {id} token, when its scope is not above the
// calling token's (a read token cannot revoke the admin token).
func ownToken(q request, st AccountStore) (*store.Token, error) {
	id, err := pathID(q.r, "id")
	if err != nil {
		return nil, err
	}
	ts, err := st.ListTokens(q.r.Context(), q.tok.UserID)
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		if t.ID != id {
			continue
		}
		if store.ScopeRank(t.Role) > store.ScopeRank(q.tok.Role) {
			return nil, errs.E("", errs.Forbidden, "token %d has scope %s, above this token's %s", id, t.Role, q.tok.Role)
		}
		return t, nil
	}
	return nil, errs.E("", errs.NotFound, "token %d: not found", id)
}

func (a *server) revokeToken(q request, st AccountStore, _ noInput) (any, error) {
	t, err := ownToken(q, st)
	if err != nil {
		return nil, err
	}
	err = a.audited(q.r, t.OrgID, "token.revoke", fixed(fmt.Sprintf("token %d %q", t.ID, t.Name), ""),
		func(ctx context.Context) error { return st.RevokeToken(ctx, q.tok.UserID, t.ID) })
	if err != nil {
		return nil, about(fmt.Sprintf("token %d", t.ID), err)
	}
	return nil, nil
}

func (a *server) rotateToken(q request, st AccountStore, _ noInput) (any, error) {
	t, err := ownToken(q, st)
	if err != nil {
		return nil, err
	}
	secret, sum := newSecret()
	err = a.audited(q.r, t.OrgID, "token.rotate", fixed(fmt.Sprintf("token %d %q", t.ID, t.Name), ""), func(ctx context.Context) error {
		var rerr error
		t, rerr = st.RotateToken(ctx, q.tok.UserID, t.ID, sum)
		return rerr
	})
	if err != nil {
		return nil, about("token "+q.r.PathValue("id"), err)
	}
	return TokenCreated{Token: toTokenInfo(t), Secret: secret}, nil
}

func (a *server) listAudit(q request, st AccountStore, _ noInput) (any, error) {
	v := q.r.URL.Query()
	f := store.AuditFilter{Limit: defaultAuditLimit, Server: callerOf(q.r).serverAdmin}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxAuditLimit {
			return nil, errs.E("", errs.Invalid, "limit %q is not between 1 and %d", s, maxAuditLimit)
		}
		f.Limit = n
	}
	if s := v.Get("before"); s != "" {
		var err error
		if f.Before, err = parseID("before", s); err != nil {
			return nil, err
		}
	}
	es, err := st.ListAudit(q.r.Context(), q.tok.OrgID, f)
	if err != nil {
		return nil, err
	}
	out := AuditList{Entries: []AuditEntry{}}
	for _, e := range es {
		out.Entries = append(out.Entries, AuditEntry{ID: e.ID, OrgID: e.OrgID, Actor: e.Actor, Action: e.Action,
			Target: e.Target, Detail: e.Detail, Time: e.Time})
	}
	if len(es) == f.Limit {
		out.NextBefore = es[len(es)-1].ID
	}
	return out, nil
}
