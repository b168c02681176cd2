package client

import (
	"context"
	"net/url"
	"strconv"

	"github.com/conveyor-ci/conveyor/internal/api"
)

// Login signs in with a password and returns a session token (the
// client's own token is not sent).
func (c *Client) Login(ctx context.Context, in api.LoginInput) (*api.LoginResult, error) {
	var out api.LoginResult
	anon := *c
	anon.token = ""
	return &out, anon.call(ctx, "POST", "/api/login", in, &out)
}

// SetPassword changes the caller's password.
func (c *Client) SetPassword(ctx context.Context, in api.PasswordInput) error {
	return c.call(ctx, "PUT", "/api/password", in, nil)
}

// ListOrgs lists every organisation (server admin).
func (c *Client) ListOrgs(ctx context.Context) ([]api.Org, error) {
	var out api.OrgList
	return out.Orgs, c.call(ctx, "GET", "/api/orgs", nil, &out)
}

// CreateOrg creates an organisation (server admin).
func (c *Client) CreateOrg(ctx context.Context, in api.OrgInput) (*api.Org, error) {
	var out api.Org
	return &out, c.call(ctx, "POST", "/api/orgs", in, &out)
}

// ListMembers lists the organisation's members.
func (c *Client) ListMembers(ctx context.Context) ([]api.Member, error) {
	var out api.MemberList
	return out.Members, c.call(ctx, "GET", "/api/users", nil, &out)
}

// AddMember adds a user (created when new) to the organisation.
func (c *Client) AddMember(ctx context.Context, in api.UserInput) (*api.Member, error) {
	var out api.Member
	return &out, c.call(ctx, "POST", "/api/users", in, &out)
}

// SetRole changes a member's role.
func (c *Client) SetRole(ctx context.Context, user, role string) (*api.Member, error) {
	var out api.Member
	return &out, c.call(ctx, "PUT", "/api/users/"+url.PathEscape(user)+"/role", api.RoleInput{Role: role}, &out)
}

// RemoveMember removes a user from the organisation.
func (c *Client) RemoveMember(ctx context.Context, user string) error {
	return c.call(ctx, "DELETE", "/api/users/"+url.PathEscape(user), nil, nil)
}

// ListTokens lists the caller's tokens.
func (c *Client) ListTokens(ctx context.Context) ([]api.TokenInfo, error) {
	var out api.TokenList
	return out.Tokens, c.call(ctx, "GET", "/api/tokens", nil, &out)
}

// CreateToken makes a personal API token; its secret is in the answer only.
func (c *Client) CreateToken(ctx context.Context, in api.TokenInput) (*api.TokenCreated, error) {
	var out api.TokenCreated
	return &out, c.call(ctx, "POST", "/api/tokens", in, &out)
}

// RevokeToken revokes one of the caller's tokens.
func (c *Client) RevokeToken(ctx context.Context, id int64) error {
	return c.call(ctx, "DELETE", "/api/tokens/"+itoa(id), nil, nil)
}

// RotateToken gives one of the caller's tokens a new secret.
func (c *Client) RotateToken(ctx context.Context, id int64) (*api.TokenCreated, error) {
	var out api.TokenCreated
	return &out, c.call(ctx, "POST", "/api/tokens/"+itoa(id)+"/rotate", nil, &out)
}

// Audit lists the organisation's audit log, newest first (limit 0: the
// server's default; before 0: from the newest).
func (c *Client) Audit(ctx context.Context, limit int, before int64) (*api.AuditList, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if before > 0 {
		q.Set("before", itoa(before))
	}
	path := "/api/audit"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out api.AuditList
	return &out, c.call(ctx, "GET", path, nil, &out)
}
