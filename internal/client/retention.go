package client

import (
	"context"
	"fmt"

	"github.com/conveyor-ci/conveyor/internal/store"
)

func retentionPath(repoID int64) string {
	if repoID == 0 {
		return "/api/retention"
	}
	return fmt.Sprintf("/api/repos/%d/retention", repoID)
}

// Retention returns the organisation's (repoID 0) or a repository's
// retention setting.
func (c *Client) Retention(ctx context.Context, repoID int64) (store.Retention, error) {
	var out store.Retention
	return out, c.call(ctx, "GET", retentionPath(repoID), nil, &out)
}

// SetRetention replaces the organisation's (repoID 0) or a repository's
// retention setting.
func (c *Client) SetRetention(ctx context.Context, repoID int64, r store.Retention) (store.Retention, error) {
	var out store.Retention
	return out, c.call(ctx, "PUT", retentionPath(repoID), r, &out)
}
