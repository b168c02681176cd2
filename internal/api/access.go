package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// access is who may call a route. A user's token works when its scope is
// at least scope AND its user's role in the token's organisation is at
// least role (a server admin counts as admin in every organisation); with
// server set, only server admins pass. Public routes take no token,
// agent routes only an agent's token.
type access struct {
	kind   accessKind
	role   store.OrgRole
	scope  store.Role
	server bool
}

type accessKind int

const (
	public accessKind = iota
	agentOnly
	userToken
)

// The levels of the route table.
var (
	anyone    = access{kind: public}
	agent     = access{kind: agentOnly}
	self      = access{kind: userToken, scope: store.RoleRead}                             // the caller's own things
	selfWrite = access{kind: userToken, scope: store.RoleWrite}                            // changes to the caller's own things
	selfAdmin = access{kind: userToken, scope: store.RoleAdmin}                            // the caller's password
	viewer    = access{kind: userToken, role: store.OrgViewer, scope: store.RoleRead}      // read runs, logs, repositories
	developer = access{kind: userToken, role: store.OrgDeveloper, scope: store.RoleWrite}  // trigger, cancel, re-run
	settings  = access{kind: userToken, role: store.OrgMaintainer, scope: store.RoleAdmin} // repository settings
	orgAdmin  = access{kind: userToken, role: store.OrgAdmin, scope: store.RoleAdmin}      // members, agents
	auditRead = access{kind: userToken, role: store.OrgAdmin, scope: store.RoleRead}       // read the audit log
	serverAdm = access{kind: userToken, server: true, scope: store.RoleAdmin}              // organisations, users
	serverRd  = access{kind: userToken, server: true, scope: store.RoleRead}
)

// String is how a refusal names what a route needs.
func (a access) String() string {
	switch {
	case a.kind == public:
		return "nothing"
	case a.kind == agentOnly:
		return "an agent token"
	case a.server:
		return fmt.Sprintf("a server admin's token of scope %s", a.scope)
	case a.role == "":
		return fmt.Sprintf("a token of scope %s", a.scope)
	}
	return fmt.Sprintf("role %s and a token of scope %s", a.role, a.scope)
}

// caller is who sent an authenticated request: the token, its user and
// the user's role in the token's organisation ("" when not a member).
type caller struct {
	tok         *store.Token
	user        string
	role        store.OrgRole
	serverAdmin bool
}

// effectiveRole is the caller's role in the token's organisation; a server
// admin is an admin everywhere.
func (c *caller) effectiveRole() store.OrgRole {
	if c.serverAdmin {
		return store.OrgAdmin
	}
	return c.role
}

// may reports whether c passes need.
func (c *caller) may(need access) bool {
	if store.ScopeRank(c.tok.Role) < store.ScopeRank(need.scope) {
		return false
	}
	if need.server {
		return c.serverAdmin
	}
	return c.effectiveRole().Rank() >= need.role.Rank()
}

// actor is how the audit log names c: user and token.
func (c *caller) actor() string {
	return fmt.Sprintf("%s (token %d %q)", c.user, c.tok.ID, c.tok.Name)
}

type callerKey struct{}

// callerOf is the authenticated caller of a userToken route.
func callerOf(r *http.Request) *caller {
	c, _ := r.Context().Value(callerKey{}).(*caller)
	return c
}

// identify authenticates a user's token and finds its user's role.
func (a *server) identify(r *http.Request) (*caller, error) {
	tok, err := a.authenticate(r)
	if err != nil {
		return nil, err
	}
	if tok.Expired(time.Now()) {
		return nil, errs.E("", errs.Unauthorized, "token %q expired at %s", tok.Name, tok.Expires.UTC().Format(time.RFC3339))
	}
	c := &caller{tok: tok}
	m, err := a.Store.Member(r.Context(), tok.OrgID, tok.UserID)
	switch {
	case err == nil:
		c.user, c.role, c.serverAdmin = m.Name, m.Role, m.ServerAdmin
	case errs.Is(err, errs.NotFound):
		u, uerr := a.Store.GetUser(r.Context(), tok.UserID)
		if errs.Is(uerr, errs.NotFound) {
			return nil, errs.E("", errs.Unauthorized, "the token's user no longer exists")
		}
		if uerr != nil {
			return nil, uerr
		}
		c.user, c.serverAdmin = u.Name, u.ServerAdmin
	default:
		return nil, err
	}
	return c, nil
}

// authorize answers the refusal itself and returns false when the request
// may not reach rt.
func (a *server) authorize(w http.ResponseWriter, r *http.Request, rt route) (*http.Request, *store.Token, bool) {
	switch rt.need.kind {
	case public:
		return r, nil, true
	case agentOnly:
		if isJobWorker(r) {
			r, ok := a.authorizeJobWorker(w, r, rt)
			return r, nil, ok
		}
		ag, err := a.authenticateAgent(r)
		if err != nil {
			a.fail(w, "", err)
			return r, nil, false
		}
		return r.WithContext(context.WithValue(r.Context(), agentKey{}, ag)), nil, true
	}
	if isJobWorker(r) {
		r, ok := a.authorizeJobWorker(w, r, rt) // refused, with the reason
		return r, nil, ok
	}
	if isJobToken(r) {
		return a.authorizeJob(w, r, rt)
	}
	c, err := a.identify(r)
	if err != nil {
		a.fail(w, "", err)
		return r, nil, false
	}
	if !c.may(rt.need) {
		role := "no role"
		if c.role != "" {
			role = "role " + string(c.role)
		}
		writeErrorMsg(w, errs.Forbidden, fmt.Sprintf("user %s has %s in this organisation and token %q has scope %s; %s %s needs %s",
			c.user, role, c.tok.Name, c.tok.Role, rt.method, rt.path, rt.need))
		return r, nil, false
	}
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, c)), c.tok, true
}
