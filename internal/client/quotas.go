package client

import (
	"context"
	"net/url"

	"github.com/conveyor-ci/conveyor/internal/api"
)

// Usage returns an organisation's metered build time in month (org "":
// the token's; month "": this month).
func (c *Client) Usage(ctx context.Context, org, month string) (*api.Usage, error) {
	q := url.Values{}
	if org != "" {
		q.Set("org", org)
	}
	if month != "" {
		q.Set("month", month)
	}
	path := "/api/usage"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out api.Usage
	return &out, c.call(ctx, "GET", path, nil, &out)
}

// orgName is org, or the name of the token's organisation when org is "".
func (c *Client) orgName(ctx context.Context, org string) (string, error) {
	if org != "" {
		return org, nil
	}
	u, err := c.Usage(ctx, "", "")
	if err != nil {
		return "", err
	}
	return u.Org, nil
}

// Quota returns an organisation's quota (org "": the token's).
func (c *Client) Quota(ctx context.Context, org string) (*api.Quota, error) {
	org, err := c.orgName(ctx, org)
	if err != nil {
		return nil, err
	}
	var out api.Quota
	return &out, c.call(ctx, "GET", "/api/orgs/"+url.PathEscape(org)+"/quota", nil, &out)
}

// SetQuota changes an organisation's quota (server admin; org "": the
// token's); fields of in left nil keep their value.
func (c *Client) SetQuota(ctx context.Context, org string, in api.QuotaInput) (*api.Quota, error) {
	org, err := c.orgName(ctx, org)
	if err != nil {
		return nil, err
	}
	var out api.Quota
	return &out, c.call(ctx, "PUT", "/api/orgs/"+url.PathEscape(org)+"/quota", in, &out)
}
