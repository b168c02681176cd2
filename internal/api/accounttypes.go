package api

import (
	"time"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// AccountStore is what the account routes (login, organisations, users,
// tokens, audit) use; a store.Store is one.
type AccountStore interface {
	store.Orgs
	store.Users
	store.Tokens
	store.Audit
}

var _ AccountStore = store.Store(nil)

// LoginInput is a password login. Org names the organisation the session
// token is for; it may be left out when the user belongs to one.
type LoginInput struct {
	User     string `json:"user"`
	Password string `json:"password"`
	Org      string `json:"org,omitempty"`
}

// LoginResult carries a session token (scope admin, limited by the
// user's role), shown only here.
type LoginResult struct {
	Token   string    `json:"token"`
	TokenID int64     `json:"token_id"`
	Expires time.Time `json:"expires"`
	User    string    `json:"user"`
	Org     string    `json:"org"`
	OrgID   int64     `json:"org_id"`
	Role    string    `json:"role"`
}

// PasswordInput changes the caller's password; Current is required when
// the user has one.
type PasswordInput struct {
	Current string `json:"current,omitempty"`
	New     string `json:"new"`
}

// OrgInput creates an organisation; Admin names an existing user who
// becomes its admin (default: the caller).
type OrgInput struct {
	Name  string `json:"name"`
	Admin string `json:"admin,omitempty"`
}

// Org is an organisation.
type Org struct {
	ID      int64     `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// OrgList is the answer of GET /api/orgs.
type OrgList struct {
	Orgs []Org `json:"orgs"`
}

// UserInput adds a user to the caller's organisation, creating the
// account when the name is new (Password, optional, only then).
type UserInput struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Password string `json:"password,omitempty"`
}

// RoleInput changes a member's role.
type RoleInput struct {
	Role string `json:"role"`
}

// Member is a user's role in the organisation.
type Member struct {
	User        string `json:"user"`
	Role        string `json:"role"`
	ServerAdmin bool   `json:"server_admin"`
}

// MemberList is the answer of GET /api/users.
type MemberList struct {
	Members []Member `json:"members"`
}

// TokenInput makes a personal API token. Scope is read, write or admin
// (at most the calling token's); Org names the organisation it is for
// (default: the calling token's); ExpiresInDays is 1 to 3650 (default 90).
type TokenInput struct {
	Name          string `json:"name"`
	Scope         string `json:"scope"`
	Org           string `json:"org,omitempty"`
	ExpiresInDays int    `json:"expires_in_days,omitempty"`
}

// TokenInfo describes a token, never its secret.
type TokenInfo struct {
	ID       int64      `json:"id"`
	Name     string     `json:"name"`
	Scope    string     `json:"scope"`
	Kind     string     `json:"kind"`
	OrgID    int64      `json:"org_id"`
	Created  time.Time  `json:"created"`
	Expires  *time.Time `json:"expires,omitempty"`
	LastUsed *time.Time `json:"last_used,omitempty"`
}

// TokenList is the answer of GET /api/tokens.
type TokenList struct {
	Tokens []TokenInfo `json:"tokens"`
}

// TokenCreated is the only answer that shows a token's secret.
type TokenCreated struct {
	Token  TokenInfo `json:"token"`
	Secret string    `json:"secret"`
}

// AuditEntry is one change: who did what to what, when.
type AuditEntry struct {
	ID     int64     `json:"id"`
	OrgID  int64     `json:"org_id"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Detail string    `json:"detail,omitempty"`
	Time   time.Time `json:"time"`
}

// AuditList is the answer of GET /api/audit, newest first.
type AuditList struct {
	Entries    []AuditEntry `json:"entries"`
	NextBefore int64        `json:"next_before,omitempty"`
}

func toTokenInfo(t *store.Token) TokenInfo {
	return TokenInfo{ID: t.ID, Name: t.Name, Scope: string(t.Role), Kind: t.Kind, OrgID: t.OrgID,
		Created: t.Created, Expires: optTime(t.Expires), LastUsed: optTime(t.LastUsed)}
}

func toMember(m *store.Member) Member {
	return Member{User: m.Name, Role: string(m.Role), ServerAdmin: m.ServerAdmin}
}
