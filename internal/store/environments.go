package store

import (
	"context"
	"strings"
	"time"
)

// StatusAwaitingApproval is a job held by its environment's protection
// rules: it waits for a reviewer's approval and/or its wait timer and is
// never leased meanwhile. A run created with it (a fork's pull request
// that needs a maintainer's approval) holds all its jobs until
// Approvals.ApproveRun.
const StatusAwaitingApproval = "awaiting_approval"

// Decisions on a job awaiting approval.
const (
	Approved = "approved"
	Rejected = "rejected"
)

// Reviewer is who may approve deployments to a protected environment: a
// user by name, or everyone with at least an organisation role.
type Reviewer struct {
	User string  `json:"user,omitempty"`
	Role OrgRole `json:"role,omitempty"`
}

// Protection is an environment's rules for the jobs that target it.
type Protection struct {
	// Reviewers: one of them must approve each job (none: no review).
	Reviewers []Reviewer `json:"reviewers,omitempty"`
	// WaitMinutes delays each job once it is ready (and approved).
	WaitMinutes int `json:"wait_minutes,omitempty"`
	// Branches and Tags are globs of the refs that may deploy (both
	// empty: any ref).
	Branches []string `json:"branches,omitempty"`
	Tags     []string `json:"tags,omitempty"`
	// PreventSelfReview: whoever triggered the run may not approve it.
	PreventSelfReview bool `json:"prevent_self_review,omitempty"`
}

// Gated reports whether p holds jobs back (review or wait timer).
func (p Protection) Gated() bool { return len(p.Reviewers) > 0 || p.WaitMinutes > 0 }

// Environment is a deployment target of a repository (a job's
// environment:), with its protection rules; its secrets and variables are
// Secrets of scope Env. Environments are made on their first use without
// protection, as on GitHub.
type Environment struct {
	OrgID, RepoID int64
	Name          string
	Protection
	// Branch is set on a per-branch environment the repository's branch
	// mapping made; it is deleted with its branch.
	Branch  string
	Created time.Time
	Updated time.Time
}

// EnvMapping maps a repository's branches to environments: the first
// rule whose branch pattern matches wins; other branches get Other, where
// "{branch}" stands for the branch's name (one environment per branch,
// made on first use and deleted with its branch). Empty: no mapping.
type EnvMapping struct {
	Rules []EnvRule `json:"rules,omitempty"`
	Other string    `json:"other,omitempty"`
}

// EnvRule maps the branches matching a pattern to an environment.
type EnvRule struct {
	Branch      string `json:"branch"`
	Environment string `json:"environment"`
}

// Empty reports whether m maps nothing.
func (m EnvMapping) Empty() bool { return len(m.Rules) == 0 && m.Other == "" }

// EnvKey is an environment name compared as GitHub does: case aside.
func EnvKey(name string) string { return strings.ToLower(name) }

// Environments stores the repositories' environments.
type Environments interface {
	// PutEnvironment creates or replaces e (by repository and name, case
	// aside; a replaced one keeps its name's spelling and Created).
	// NotFound when the repository is not the organisation's.
	PutEnvironment(ctx context.Context, e *Environment) error
	// EnsureEnvironment returns the environment, creating it without
	// protection (with branch, for the branch mapping) when it does not
	// exist.
	EnsureEnvironment(ctx context.Context, orgID, repoID int64, name, branch string) (*Environment, error)
	GetEnvironment(ctx context.Context, orgID, repoID int64, name string) (*Environment, error)
	// ListEnvironments lists a repository's environments by name.
	ListEnvironments(ctx context.Context, orgID, repoID int64) ([]*Environment, error)
	// DeleteEnvironment removes an environment and its secrets and
	// variables (NotFound when there is none).
	DeleteEnvironment(ctx context.Context, orgID, repoID int64, name string) error
	// DeleteBranchEnvironments removes the per-branch environments made
	// for branch (and their secrets and variables); it returns their
	// names.
	DeleteBranchEnvironments(ctx context.Context, orgID, repoID int64, branch string) ([]string, error)
}

// Decision is one reviewer's answer to a job awaiting approval.
type Decision struct {
	User     string    `json:"user"`
	Decision string    `json:"decision"` // Approved or Rejected
	Comment  string    `json:"comment,omitempty"`
	At       time.Time `json:"at"`
}

// Deployment is a job's environment: as planned: the evaluated name and
// url, the environment's protection when the run was planned, who
// triggered the run (for PreventSelfReview) and the decisions taken.
type Deployment struct {
	Environment       string     `json:"environment"`
	URL               string     `json:"url,omitempty"`
	Reviewers         []Reviewer `json:"reviewers,omitempty"`
	WaitMinutes       int        `json:"wait_minutes,omitempty"`
	PreventSelfReview bool       `json:"prevent_self_review,omitempty"`
	Actor             string     `json:"actor,omitempty"`
	Decisions         []Decision `json:"decisions,omitempty"`
	// WaitUntil is when the wait timer ends (set when the job became
	// ready; zero before).
	WaitUntil time.Time `json:"-"`
}

// Gated reports whether the job waits for a review or a timer.
func (d *Deployment) Gated() bool { return d != nil && (len(d.Reviewers) > 0 || d.WaitMinutes > 0) }

// Approvals decides on jobs awaiting approval and lets them go.
type Approvals interface {
	// DecideJob records d on a job awaiting approval (Conflict when it
	// does not await one). Rejected ends the job failed with "rejected by
	// USER: COMMENT" and moves the run on (its dependents are queued and
	// skip, as after any failure); Approved queues it, or leaves it
	// waiting for its timer. Who may decide is the caller's check.
	DecideJob(ctx context.Context, orgID, jobID int64, d Decision) (*Job, error)
	// OpenGates queues the approved (or review-free) jobs whose wait
	// timer ended by now; it returns how many.
	OpenGates(ctx context.Context, now time.Time) (int, error)
	// ApproveRun lets a run that awaits approval (a fork's pull request)
	// start: it enters its concurrency group and its jobs may be leased.
	// Conflict when the run does not await approval.
	ApproveRun(ctx context.Context, orgID, runID int64) (*Run, error)
}
