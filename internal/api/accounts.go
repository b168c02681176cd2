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
		{"POST", "/api/login", anyone, 200, LoginInput{}, LoginResult{}, (*server).login},
		{"PUT", "/api/password", selfAdmin, 204, PasswordInput{}, nil, (*server).setPassword},
		{"GET", "/api/orgs", serverRd, 200, nil, OrgList{}, (*server).listOrgs},
		{"POST", "/api/orgs", serverAdm, 201, OrgInput{}, Org{}, (*server).createOrg},
		{"GET", "/api/users", viewer, 200, nil, MemberList{}, (*server).listMembers},
		{"POST", "/api/users", orgAdmin, 201, UserInput{}, Member{}, (*server).addMember},
		{"PUT", "/api/users/{name}/role", orgAdmin, 200, RoleInput{}, Member{}, (*server).setRole},
		{"DELETE", "/api/users/{name}", orgAdmin, 204, nil, nil, (*server).removeMember},
		{"GET", "/api/tokens", self, 200, nil, TokenList{}, (*server).listTokens},
		{"POST", "/api/tokens", selfWrite, 201, TokenInput{}, TokenCreated{}, (*server).createToken},
		{"DELETE", "/api/tokens/{id}", selfWrite, 204, nil, nil, (*server).revokeToken},
		{"POST", "/api/tokens/{id}/rotate", selfWrite, 200, nil, TokenCreated{}, (*server).rotateToken},
		{"GET", "/api/audit", auditRead, 200, nil, AuditList{}, (*server).listAudit},
	}
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
	e := &store.AuditEntry{OrgID: orgID, Action: action, Target: target, Detail: detail}
	if c := callerOf(r); c != nil {
		e.ActorID, e.Actor = c.tok.UserID, c.actor()
	}
	if err := a.Accounts.AppendAudit(context.WithoutCancel(r.Context()), e); err != nil {
		a.Log.Error("audit log", "action", action, "target", target, "err", err)
	}
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

func (a *server) login(w http.ResponseWriter, r *http.Request, _ *store.Token) {
	st, ok := a.accounts(w)
	if !ok {
		return
	}
	var in LoginInput
	if err := decode(r, &in, false); err != nil {
		a.fail(w, "", err)
		return
	}
	ctx := r.Context()
	u, err := st.UserByName(ctx, in.User)
	if err != nil && !errs.Is(err, errs.NotFound) {
		a.fail(w, "", err)
		return
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
		a.fail(w, "", err)
		return
	}
	if u == nil || u.PasswordHash == "" || !match || in.Password == "" {
		writeErrorMsg(w, errs.Unauthorized, "wrong user name or password")
		return
	}
	org, role, err := a.loginOrg(ctx, st, u, in.Org)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	secret, sum := newSecret()
	tok := &store.Token{OrgID: org.ID, UserID: u.ID, Name: "login", Role: store.RoleAdmin, Kind: store.TokenSession,
		Hash: sum, Expires: time.Now().Add(SessionTTL).UTC().Truncate(time.Second)}
	if err := st.CreateToken(ctx, tok); err != nil {
		a.fail(w, "", err)
		return
	}
	r = r.WithContext(context.WithValue(ctx, callerKey{}, &caller{tok: tok, user: u.Name, role: role, serverAdmin: u.ServerAdmin}))
	a.audit(r, org.ID, "session.create", "user "+u.Name, fmt.Sprintf("token %d, until %s", tok.ID, tok.Expires.Format(time.RFC3339)))
	writeJSON(w, http.StatusOK, LoginResult{Token: secret, TokenID: tok.ID, Expires: tok.Expires, User: u.Name, Org: org.Name, OrgID: org.ID, Role: string(role)})
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

func (a *server) setPassword(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	st, ok := a.accounts(w)
	if !ok {
		return
	}
	var in PasswordInput
	if err := decode(r, &in, false); err != nil {
		a.fail(w, "", err)
		return
	}
	if len(in.New) < 8 {
		a.fail(w, "", errs.E("", errs.Invalid, "the new password must have at least 8 characters"))
		return
	}
	u, err := st.GetUser(r.Context(), tok.UserID)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	var hash string
	err = a.hashing(r.Context(), func() error {
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
		err = st.SetPassword(r.Context(), u.ID, hash)
	}
	if err != nil {
		a.fail(w, "", err)
		return
	}
	a.audit(r, 0, "user.password", "user "+u.Name, "")
	w.WriteHeader(http.StatusNoContent)
}

func toOrg(o *store.Org) Org { return Org{ID: o.ID, Name: o.Name, Created: o.Created} }

func (a *server) listOrgs(w http.ResponseWriter, r *http.Request, _ *store.Token) {
	st, ok := a.accounts(w)
	if !ok {
		return
	}
	orgs, err := st.ListOrgs(r.Context())
	if err != nil {
		a.fail(w, "", err)
		return
	}
	out := OrgList{Orgs: []Org{}}
	for _, o := range orgs {
		out.Orgs = append(out.Orgs, toOrg(o))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *server) createOrg(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	st, ok := a.accounts(w)
	if !ok {
		return
	}
	var in OrgInput
	if err := decode(r, &in, false); err != nil {
		a.fail(w, "", err)
		return
	}
	admin := tok.UserID
	if in.Admin != "" {
		u, err := st.UserByName(r.Context(), in.Admin)
		if err != nil {
			a.fail(w, "user "+in.Admin, err)
			return
		}
		admin = u.ID
	}
	o, err := st.CreateOrg(r.Context(), in.Name)
	if err == nil {
		err = st.SetMember(r.Context(), o.ID, admin, store.OrgAdmin)
	}
	if err != nil {
		a.fail(w, "", err)
		return
	}
	a.audit(r, 0, "org.create", "org "+o.Name, fmt.Sprintf("admin user %d", admin))
	writeJSON(w, http.StatusCreated, toOrg(o))
}

func (a *server) listMembers(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	st, ok := a.accounts(w)
	if !ok {
		return
	}
	ms, err := st.ListMembers(r.Context(), tok.OrgID)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	out := MemberList{Members: []Member{}}
	for _, m := range ms {
		out.Members = append(out.Members, toMember(m))
	}
	writeJSON(w, http.StatusOK, out)
}

func parseOrgRole(s string) (store.OrgRole, error) {
	if r := store.OrgRole(s); r.Rank() > 0 {
		return r, nil
	}
	return "", errs.E("", errs.Invalid, "role %q is not admin, maintainer, developer or viewer", s)
}

// addMember adds a user to the caller's organisation, creating the
// account when the name is new.
func (a *server) addMember(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	st, ok := a.accounts(w)
	if !ok {
		return
	}
	var in UserInput
	if err := decode(r, &in, false); err != nil {
		a.fail(w, "", err)
		return
	}
	role, err := parseOrgRole(in.Role)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	ctx := r.Context()
	u, err := st.UserByName(ctx, in.Name)
	switch {
	case errs.Is(err, errs.NotFound):
		u, err = a.newUser(ctx, st, in)
		if err == nil {
			a.audit(r, tok.OrgID, "user.create", "user "+u.Name, "")
		}
	case err == nil && in.Password != "":
		err = errs.E("", errs.Conflict, "user %s exists: only they change their password", in.Name)
	case err == nil:
		if _, merr := st.Member(ctx, tok.OrgID, u.ID); merr == nil {
			err = errs.E("", errs.Conflict, "user %s is already a member (conveyor user role)", in.Name)
		}
	}
	if err == nil {
		err = st.SetMember(ctx, tok.OrgID, u.ID, role)
	}
	if err != nil {
		a.fail(w, "", err)
		return
	}
	a.audit(r, tok.OrgID, "member.add", "user "+u.Name, "role "+string(role))
	writeJSON(w, http.StatusCreated, Member{User: u.Name, Role: string(role), ServerAdmin: u.ServerAdmin})
}

func (a *server) newUser(ctx context.Context, st AccountStore, in UserInput) (*store.User, error) {
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
	return u, st.CreateUser(ctx, u)
}

// memberFromPath is the {name} member of the caller's organisation; a
// user who is not one is not found, whether the account exists or not.
func (a *server) memberFromPath(w http.ResponseWriter, r *http.Request, st AccountStore, orgID int64) (*store.User, bool) {
	name := r.PathValue("name")
	u, err := st.UserByName(r.Context(), name)
	if err == nil {
		_, err = st.Member(r.Context(), orgID, u.ID)
	}
	if err != nil {
		a.fail(w, "member "+name, err)
		return nil, false
	}
	return u, true
}

func (a *server) setRole(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	st, ok := a.accounts(w)
	if !ok {
		return
	}
	u, ok := a.memberFromPath(w, r, st, tok.OrgID)
	if !ok {
		return
	}
	var in RoleInput
	if err := decode(r, &in, false); err != nil {
		a.fail(w, "", err)
		return
	}
	role, err := parseOrgRole(in.Role)
	if err == nil {
		err = st.SetMember(r.Context(), tok.OrgID, u.ID, role)
	}
	if err != nil {
		a.fail(w, "", err)
		return
	}
	a.audit(r, tok.OrgID, "member.role", "user "+u.Name, "role "+string(role))
	writeJSON(w, http.StatusOK, Member{User: u.Name, Role: string(role), ServerAdmin: u.ServerAdmin})
}

func (a *server) removeMember(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	st, ok := a.accounts(w)
	if !ok {
		return
	}
	u, ok := a.memberFromPath(w, r, st, tok.OrgID)
	if !ok {
		return
	}
	if err := st.SetMember(r.Context(), tok.OrgID, u.ID, ""); err != nil {
		a.fail(w, "", err)
		return
	}
	a.audit(r, tok.OrgID, "member.remove", "user "+u.Name, "")
	w.WriteHeader(http.StatusNoContent)
}

func (a *server) listTokens(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	st, ok := a.accounts(w)
	if !ok {
		return
	}
	ts, err := st.ListTokens(r.Context(), tok.UserID)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	out := TokenList{Tokens: []TokenInfo{}}
	for _, t := range ts {
		out.Tokens = append(out.Tokens, toTokenInfo(t))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *server) createToken(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	st, ok := a.accounts(w)
	if !ok {
		return
	}
	var in TokenInput
	if err := decode(r, &in, false); err != nil {
		a.fail(w, "", err)
		return
	}
	scope := store.Role(in.Scope)
	days := in.ExpiresInDays
	if days == 0 {
		days = defaultTokenDays
	}
	switch {
	case in.Name == "" || len(in.Name) > 100:
		a.fail(w, "", errs.E("", errs.Invalid, "a token needs a name of at most 100 bytes"))
		return
	case !store.ValidScope(scope):
		a.fail(w, "", errs.E("", errs.Invalid, "scope %q is not read, write or admin", in.Scope))
		return
	case store.ScopeRank(scope) > store.ScopeRank(tok.Role):
		a.fail(w, "", errs.E("", errs.Forbidden, "a token of scope %s cannot make one of scope %s", tok.Role, scope))
		return
	case days < 1 || days > maxTokenDays:
		a.fail(w, "", errs.E("", errs.Invalid, "expires_in_days %d is not between 1 and %d", days, maxTokenDays))
		return
	}
	orgID, err := a.tokenOrg(r, st, in.Org)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	secret, sum := newSecret()
	t := &store.Token{OrgID: orgID, UserID: tok.UserID, Name: in.Name, Role: scope, Kind: store.TokenAPI, Hash: sum,
		Expires: time.Now().AddDate(0, 0, days).UTC().Truncate(time.Second)}
	if err := st.CreateToken(r.Context(), t); err != nil {
		a.fail(w, "", err)
		return
	}
	a.audit(r, orgID, "token.create", fmt.Sprintf("token %d %q", t.ID, t.Name), fmt.Sprintf("scope %s, until %s", scope, t.Expires.Format(time.DateOnly)))
	writeJSON(w, http.StatusCreated, TokenCreated{Token: toTokenInfo(t), Secret: secret})
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
func (a *server) ownToken(w http.ResponseWriter, r *http.Request, st AccountStore, tok *store.Token) (*store.Token, bool) {
	id, err := pathID(r, "id")
	if err != nil {
		a.fail(w, "", err)
		return nil, false
	}
	ts, err := st.ListTokens(r.Context(), tok.UserID)
	if err != nil {
		a.fail(w, "", err)
		return nil, false
	}
	for _, t := range ts {
		if t.ID != id {
			continue
		}
		if store.ScopeRank(t.Role) > store.ScopeRank(tok.Role) {
			writeErrorMsg(w, errs.Forbidden, fmt.Sprintf("token %d has scope %s, above this token's %s", id, t.Role, tok.Role))
			return nil, false
		}
		return t, true
	}
	writeErrorMsg(w, errs.NotFound, fmt.Sprintf("token %d: not found", id))
	return nil, false
}

func (a *server) revokeToken(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	st, ok := a.accounts(w)
	if !ok {
		return
	}
	t, ok := a.ownToken(w, r, st, tok)
	if !ok {
		return
	}
	if err := st.RevokeToken(r.Context(), tok.UserID, t.ID); err != nil {
		a.fail(w, fmt.Sprintf("token %d", t.ID), err)
		return
	}
	a.audit(r, t.OrgID, "token.revoke", fmt.Sprintf("token %d %q", t.ID, t.Name), "")
	w.WriteHeader(http.StatusNoContent)
}

func (a *server) rotateToken(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	st, ok := a.accounts(w)
	if !ok {
		return
	}
	t, ok := a.ownToken(w, r, st, tok)
	if !ok {
		return
	}
	secret, sum := newSecret()
	t, err := st.RotateToken(r.Context(), tok.UserID, t.ID, sum)
	if err != nil {
		a.fail(w, "token "+r.PathValue("id"), err)
		return
	}
	a.audit(r, t.OrgID, "token.rotate", fmt.Sprintf("token %d %q", t.ID, t.Name), "")
	writeJSON(w, http.StatusOK, TokenCreated{Token: toTokenInfo(t), Secret: secret})
}

func (a *server) listAudit(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	st, ok := a.accounts(w)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := store.AuditFilter{Limit: defaultAuditLimit, Server: callerOf(r).serverAdmin}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxAuditLimit {
			a.fail(w, "", errs.E("", errs.Invalid, "limit %q is not between 1 and %d", s, maxAuditLimit))
			return
		}
		f.Limit = n
	}
	if s := q.Get("before"); s != "" {
		var err error
		if f.Before, err = parseID("before", s); err != nil {
			a.fail(w, "", err)
			return
		}
	}
	es, err := st.ListAudit(r.Context(), tok.OrgID, f)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	out := AuditList{Entries: []AuditEntry{}}
	for _, e := range es {
		out.Entries = append(out.Entries, AuditEntry{ID: e.ID, OrgID: e.OrgID, Actor: e.Actor, Action: e.Action,
			Target: e.Target, Detail: e.Detail, Time: e.Time})
	}
	if len(es) == f.Limit {
		out.NextBefore = es[len(es)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}
