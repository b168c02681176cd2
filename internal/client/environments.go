package client

import (
	"context"
	"fmt"
	"net/url"

	"github.com/conveyor-ci/conveyor/internal/api"
)

func envPath(repoID int64, name string) string {
	p := fmt.Sprintf("/api/repos/%d/environments", repoID)
	if name != "" {
		p += "/" + url.PathEscape(name)
	}
	return p
}

// ListEnvironments lists a repository's environments.
func (c *Client) ListEnvironments(ctx context.Context, repoID int64) ([]api.Environment, error) {
	var out api.EnvironmentList
	return out.Items, c.call(ctx, "GET", envPath(repoID, ""), nil, &out)
}

// GetEnvironment returns one environment of a repository.
func (c *Client) GetEnvironment(ctx context.Context, repoID int64, name string) (*api.Environment, error) {
	var out api.Environment
	return &out, c.call(ctx, "GET", envPath(repoID, name), nil, &out)
}

// PutEnvironment creates an environment or replaces its protection.
func (c *Client) PutEnvironment(ctx context.Context, repoID int64, name string, in api.EnvironmentInput) (*api.Environment, error) {
	var out api.Environment
	return &out, c.call(ctx, "PUT", envPath(repoID, name), in, &out)
}

// DeleteEnvironment deletes an environment with its secrets and variables.
func (c *Client) DeleteEnvironment(ctx context.Context, repoID int64, name string) error {
	return c.call(ctx, "DELETE", envPath(repoID, name), nil, nil)
}

// Decide approves (or, with reject, rejects) a job awaiting approval; job
// is its id or key.
func (c *Client) Decide(ctx context.Context, runID int64, job string, reject bool, comment string) (*api.Job, error) {
	verb := "approve"
	if reject {
		verb = "reject"
	}
	var out api.Job
	return &out, c.call(ctx, "POST", fmt.Sprintf("/api/runs/%d/jobs/%s/%s", runID, url.PathEscape(job), verb),
		api.ApprovalInput{Comment: comment}, &out)
}

// DecideRun approves (or, with reject, rejects: cancels) a run awaiting
// approval (a fork's pull request).
func (c *Client) DecideRun(ctx context.Context, runID int64, reject bool, comment string) (*api.Run, error) {
	verb := "approve"
	if reject {
		verb = "reject"
	}
	var out api.Run
	return &out, c.call(ctx, "POST", fmt.Sprintf("/api/runs/%d/%s", runID, verb), api.ApprovalInput{Comment: comment}, &out)
}
