// Package event holds the one event model every trigger source produces:
// webhooks of GitHub, GitLab and Gitea, the API, the CLI and cron. Trigger
// matching (on:, CEL filters) and run creation read only this model.
package event

import "strings"

// Forges and sources.
const (
	GitHub = "github"
	GitLab = "gitlab"
	Gitea  = "gitea"
)

// Event is one thing that may start runs. Name and Action use GitHub's
// vocabulary whatever the forge (a GitLab merge request is a pull_request,
// "update" with new commits is "synchronize", a merge is "closed" with
// PullRequest.Merged set).
type Event struct {
	// Forge is github, gitlab or gitea; empty for API, CLI and cron events.
	Forge string `json:"forge,omitempty"`
	// Name is GitHub's event name: push, pull_request, create, delete,
	// release, workflow_dispatch, schedule, ping...
	Name   string `json:"name"`
	Action string `json:"action,omitempty"`
	// DeliveryID is the forge's delivery id (X-GitHub-Delivery,
	// X-Gitea-Delivery, X-Gitlab-Event-UUID) when it sent one.
	DeliveryID string `json:"delivery_id,omitempty"`

	// Ref is the full ref the event is about (refs/heads/main,
	// refs/tags/v1, refs/pull/7/merge is never used: pull requests carry
	// the head and base refs in PullRequest).
	Ref string `json:"ref,omitempty"`
	// Before and SHA are the commit before and after a push; SHA is the
	// commit to build for every event (the head commit of a pull request).
	Before string `json:"before,omitempty"`
	SHA    string `json:"sha,omitempty"`
	// Created and Deleted say a push created or deleted the ref.
	Created bool `json:"created,omitempty"`
	Deleted bool `json:"deleted,omitempty"`

	Repository Repository `json:"repository"`
	// Sender is the login of who caused the event.
	Sender string `json:"sender,omitempty"`

	// HeadCommit is the message of the commit built ([skip ci] is read here).
	HeadCommit string   `json:"head_commit,omitempty"`
	Commits    []Commit `json:"commits,omitempty"`
	// ChangedFiles are the paths the event changes when the payload says
	// (the union over Commits); nil when the payload does not list them
	// (then trigger matching asks git between Before and SHA).
	ChangedFiles []string `json:"changed_files,omitempty"`

	PullRequest *PullRequest `json:"pull_request,omitempty"`
	Release     *Release     `json:"release,omitempty"`
	// Inputs are workflow_dispatch inputs.
	Inputs map[string]string `json:"inputs,omitempty"`
	// Schedule is the cron line that fired a schedule event.
	Schedule string `json:"schedule,omitempty"`

	// Headers are the request headers (canonical names, first value), for
	// CEL filters; Body is the decoded JSON payload, for CEL filters and
	// the github.event context.
	Headers map[string]string `json:"-"`
	Body    map[string]any    `json:"-"`
}

// Repository is the repository an event is about.
type Repository struct {
	// FullName is owner/name (GitLab: path_with_namespace).
	FullName      string `json:"full_name"`
	CloneURL      string `json:"clone_url,omitempty"`
	HTMLURL       string `json:"html_url,omitempty"`
	DefaultBranch string `json:"default_branch,omitempty"`
	Private       bool   `json:"private,omitempty"`
}

// Commit is one commit of a push.
type Commit struct {
	ID       string   `json:"id"`
	Message  string   `json:"message,omitempty"`
	Added    []string `json:"added,omitempty"`
	Removed  []string `json:"removed,omitempty"`
	Modified []string `json:"modified,omitempty"`
}

// PullRequest is a pull request (GitHub, Gitea) or merge request (GitLab).
type PullRequest struct {
	Number  int    `json:"number"`
	Title   string `json:"title,omitempty"`
	HeadRef string `json:"head_ref"` // branch name, no refs/heads/
	HeadSHA string `json:"head_sha"`
	BaseRef string `json:"base_ref"`
	BaseSHA string `json:"base_sha,omitempty"`
	// HeadRepo is the full name of the head repository; Fork says it
	// differs from the base repository.
	HeadRepo string `json:"head_repo,omitempty"`
	Fork     bool   `json:"fork,omitempty"`
	Merged   bool   `json:"merged,omitempty"`
}

// Release is a published release.
type Release struct {
	Tag        string `json:"tag"`
	Name       string `json:"name,omitempty"`
	Prerelease bool   `json:"prerelease,omitempty"`
	Draft      bool   `json:"draft,omitempty"`
}

// Branch is the branch name of Ref, or "".
func (e *Event) Branch() string {
	if b, ok := strings.CutPrefix(e.Ref, "refs/heads/"); ok {
		return b
	}
	return ""
}

// Tag is the tag name of Ref, or "".
func (e *Event) Tag() string {
	if t, ok := strings.CutPrefix(e.Ref, "refs/tags/"); ok {
		return t
	}
	return ""
}
