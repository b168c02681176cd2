package client

import (
	"context"
	"net/url"

	"github.com/conveyor-ci/conveyor/internal/api"
)

// SecretScope says where a secret or variable is: the organisation (Org),
// or a repository (id or owner/name) and optionally its environment.
type SecretScope struct {
	Org  bool
	Repo string
	Env  string
}

func (s SecretScope) query() string {
	q := url.Values{}
	if s.Org {
		q.Set("org", "true")
	}
	if s.Repo != "" {
		q.Set("repo", s.Repo)
	}
	if s.Env != "" {
		q.Set("env", s.Env)
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// kindPath is /api/secrets or /api/vars.
func kindPath(vars bool) string {
	if vars {
		return "/api/vars"
	}
	return "/api/secrets"
}

// PutSecret creates or replaces a secret (vars: a variable).
func (c *Client) PutSecret(ctx context.Context, vars bool, name string, sc SecretScope, value string) (*api.Secret, error) {
	var out api.Secret
	return &out, c.call(ctx, "PUT", kindPath(vars)+"/"+url.PathEscape(name)+sc.query(), api.SecretInput{Value: value}, &out)
}

// DeleteSecret deletes a secret (vars: a variable).
func (c *Client) DeleteSecret(ctx context.Context, vars bool, name string, sc SecretScope) error {
	return c.call(ctx, "DELETE", kindPath(vars)+"/"+url.PathEscape(name)+sc.query(), nil, nil)
}

// ListSecrets lists secrets' names (vars: variables with their values);
// an empty scope lists every one of the organisation.
func (c *Client) ListSecrets(ctx context.Context, vars bool, sc SecretScope) ([]api.Secret, error) {
	var out api.SecretList
	return out.Items, c.call(ctx, "GET", kindPath(vars)+sc.query(), nil, &out)
}
