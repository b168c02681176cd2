package api

import (
	"context"
	"net/url"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// RepoInput is what registering a repository takes.
type RepoInput struct {
	URL    string `json:"url"`
	Forge  string `json:"forge"`
	Name   string `json:"name,omitempty"`   // owner/name; derived from URL when empty
	Secret string `json:"secret,omitempty"` // generated when empty
	Branch string `json:"branch,omitempty"`
	// AllowSHA1 accepts GitHub's legacy sha1 signature header.
	AllowSHA1 bool `json:"allow_sha1,omitempty"`
	// RunTestDeliveries runs Gitea's "Test delivery" pushes (before ==
	// after) like real pushes instead of answering them as a ping.
	RunTestDeliveries bool   `json:"run_test_deliveries,omitempty"`
	StatusToken       string `json:"status_token,omitempty"`
	APIURL            string `json:"api_url,omitempty"`
	CloneUser         string `json:"clone_user,omitempty"`
	ClonePassword     string `json:"clone_password,omitempty"`
}

// RepoName is the repository's owner/name: Name, or the URL's path
// without ".git" ("" when neither tells it).
func (in RepoInput) RepoName() string {
	if in.Name != "" {
		return in.Name
	}
	u, err := url.Parse(in.URL)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(strings.Trim(u.Path, "/"), ".git")
}

// RepoUpdate is what PATCH /api/repos/{id} changes; absent fields stay.
type RepoUpdate struct {
	RunTestDeliveries *bool `json:"run_test_deliveries,omitempty"`
	// Secret is a new webhook secret: set by POST /api/repos/{id}/hook-secret,
	// which makes it, never read from a body.
	Secret *string `json:"-"`
	// EnvMap replaces the branch-to-environment mapping (an empty one
	// removes it).
	EnvMap *store.EnvMapping `json:"env_map,omitempty"`
	// SkipForkApproval turns off (true) or on (false) the approval runs
	// of fork pull requests wait for; changing it needs role admin.
	SkipForkApproval *bool `json:"skip_fork_approval,omitempty"`
	// NetworkPolicy (open, no-private, none) and Runtime (e.g. runsc; ""
	// the engine's default) are the sandbox of the repository's jobs on
	// the Docker backend; changing them needs role admin.
	NetworkPolicy *string `json:"network_policy,omitempty"`
	Runtime       *string `json:"runtime,omitempty"`
}

// DispatchInput is a workflow_dispatch request.
type DispatchInput struct {
	Workflow string            `json:"workflow"` // file name or path (.github/workflows/x.yml)
	Ref      string            `json:"ref"`      // branch, tag or sha; default: the repo's branch
	Inputs   map[string]string `json:"inputs,omitempty"`
	// Actor is the user who dispatched (github.actor, and the run's author
	// for environments' self-review rule); set by the API, never read
	// from the body.
	Actor string `json:"-"`
}

// Actions are the operations with logic beyond a store call; the server
// implements them. Errors carry an errs kind that maps to the status.
type Actions interface {
	// AddRepo validates and registers a repository (an empty explicit
	// secret is refused; none given: one is generated).
	AddRepo(ctx context.Context, orgID int64, in RepoInput) (*store.Repo, error)
	// UpdateRepo changes a repository's settings.
	UpdateRepo(ctx context.Context, orgID, id int64, in RepoUpdate) (*store.Repo, error)
	// Dispatch validates the workflow and its inputs at ref and accepts a
	// workflow_dispatch event; it returns the event id.
	Dispatch(ctx context.Context, orgID, repoID int64, in DispatchInput) (int64, error)
	// Rerun re-runs a run (all jobs, or only failed ones and what depends
	// on them) with the same event, workflow and inputs.
	Rerun(ctx context.Context, orgID, runID int64, failedOnly bool) (*store.Run, error)
	// Cancel cancels a run: pending jobs never start, running sandboxes
	// are torn down.
	Cancel(ctx context.Context, orgID, runID int64) (*store.Run, error)
}

// LogNotifier wakes log followers when a job has new output or ends.
// Wait returns a channel closed at the next change of jobID (or soon, for
// changes made on other replicas, which are only seen by polling).
type LogNotifier interface {
	Wait(jobID int64) <-chan struct{}
}
