// Package store is Conveyor's durable state: organisations, tokens,
// repositories, accepted events, runs, jobs (which are also the queue),
// log chunks, artifacts, cron state and the commit-status outbox. Every query that a
// tenant can reach is scoped by organisation. The SQL implementation for
// SQLite and PostgreSQL lives in store/sql; store/storetest is one suite
// that every implementation passes.
//
// Callers get the small interface they use (Orgs, Users, Tokens, Audit, Repos, Events, Runs,
// Queue, Agents, Logs, Artifacts, Crons, Outbox, Quotas); Store bundles them for wiring in main.
package store

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/jobspec"
	"github.com/conveyor-ci/conveyor/internal/ratelimit"
)

// Role is a token's scope: the most its holder may do with it, whatever
// the holder's own role (OrgRole) allows. Read reaches what viewers see,
// write also triggers, cancels and re-runs, admin also changes settings,
// members, tokens and agents.
type Role string

// Token scopes, from most to least powerful.
const (
	RoleAdmin Role = "admin"
	RoleWrite Role = "write"
	RoleRead  Role = "read"
	// RoleAgent is the role of tokens no command ever made (agents have
	// agent tokens of their own); schema 8 expired such tokens and none
	// can be created.
	RoleAgent Role = "agent"
)

// ValidScope reports whether r is a scope a token can be made with.
func ValidScope(r Role) bool { return r == RoleAdmin || r == RoleWrite || r == RoleRead }

// ScopeRank orders scopes: read 1, write 2, admin 3 (0: none).
func ScopeRank(r Role) int {
	switch r {
	case RoleRead:
		return 1
	case RoleWrite:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// OrgRole is what a user may do in an organisation.
type OrgRole string

// Organisation roles, from most to least powerful.
const (
	// OrgAdmin may do everything in the organisation, secrets and
	// approvals included.
	OrgAdmin OrgRole = "admin"
	// OrgMaintainer changes settings, the secrets of unprotected
	// environments, and triggers anything.
	OrgMaintainer OrgRole = "maintainer"
	// OrgDeveloper triggers on unprotected branches, re-runs, reads logs.
	OrgDeveloper OrgRole = "developer"
	// OrgViewer reads runs and logs.
	OrgViewer OrgRole = "viewer"
)

// Rank orders organisation roles: viewer 1 ... admin 4 (0: not a role).
func (r OrgRole) Rank() int {
	switch r {
	case OrgViewer:
		return 1
	case OrgDeveloper:
		return 2
	case OrgMaintainer:
		return 3
	case OrgAdmin:
		return 4
	}
	return 0
}

// User is a person (or a service account) who signs in with a password
// and holds tokens. PasswordHash is a password.Hash PHC string ("": no
// password, tokens only). ServerAdmin manages organisations and users.
type User struct {
	ID           int64
	Name         string
	PasswordHash string
	ServerAdmin  bool
	Created      time.Time
}

// Member is a user's role in an organisation.
type Member struct {
	OrgID       int64
	UserID      int64
	Name        string // the user's
	Role        OrgRole
	ServerAdmin bool
}

// AuditEntry is one change to settings, secrets, roles, tokens or
// approvals: who did what to what, when. OrgID 0 is a server-wide change
// (organisations, users).
type AuditEntry struct {
	ID      int64
	OrgID   int64
	ActorID int64  // user id (0: the server itself)
	Actor   string // user name, and the token used
	// Action is a dotted verb, e.g. "token.create", "member.role",
	// "repo.create", "secret.set", "approval.approve".
	Action string
	Target string // what it was done to, e.g. "user bob", "repo acme/app"
	Detail string // free text without secrets
	Time   time.Time
}

// AuditFilter selects audit entries, newest first.
type AuditFilter struct {
	Limit  int
	Before int64 // entry id, for paging
	// Server adds the server-wide entries (OrgID 0).
	Server bool
}

// Org is an organisation (tenant). A "default" one exists after Open.
type Org struct {
	ID      int64
	Name    string
	Created time.Time
}

// Token kinds.
const (
	TokenAPI     = "api"     // a personal API token (CLI, scripts)
	TokenSession = "session" // made by a password login
)

// Token is a user's token for one organisation; only the SHA-256 of its
// secret is stored. Role is its scope.
type Token struct {
	ID     int64
	OrgID  int64
	UserID int64
	Name   string
	Role   Role
	Kind   string // TokenAPI or TokenSession ("" is TokenAPI)
	Hash   []byte
	// Expires is when the token stops working (zero: never).
	Expires  time.Time
	Created  time.Time
	LastUsed time.Time
}

// Expired reports whether t no longer works at now.
func (t *Token) Expired(now time.Time) bool { return !t.Expires.IsZero() && !now.Before(t.Expires) }

// Repo is a registered repository.
type Repo struct {
	ID    int64
	OrgID int64
	// Name is owner/name (GitLab: the path with namespace).
	Name   string
	URL    string
	Forge  string // github, gitlab, gitea
	Secret string // webhook secret (HMAC key or GitLab token)
	Branch string // default branch
	// AllowSHA1 accepts GitHub's X-Hub-Signature (sha1) header.
	AllowSHA1 bool
	// RunTestDeliveries runs Gitea's "Test delivery" pushes (before ==
	// after) like real pushes; off, they are answered as GitHub's ping.
	RunTestDeliveries bool
	// StatusToken and APIURL are for commit statuses; CloneUser and
	// ClonePassword for fetching private repositories. Never logged.
	StatusToken   string
	APIURL        string
	CloneUser     string
	ClonePassword string
	Created       time.Time
	// EnvMap maps the repository's branches to environments (GitOps).
	EnvMap EnvMapping
	// SkipForkApproval runs pull requests from forks without a
	// maintainer's approval (off: they wait for one, like GitHub's
	// "Require approval for fork pull request workflows").
	SkipForkApproval bool
	// NetworkPolicy (open, no-private, none; "": open) and Runtime (an
	// OCI runtime such as runsc; "": the engine's default) are the
	// sandbox settings of the repository's jobs on container backends.
	NetworkPolicy string
	Runtime       string
}

// Event states.
const (
	EventPending    = "pending"    // accepted, not yet turned into runs
	EventProcessing = "processing" // claimed by a replica (lease)
	EventDone       = "done"       // runs created (maybe none)
	EventFailed     = "failed"     // could not be processed; Error says why
)

// Event is an accepted trigger (webhook delivery, API/CLI trigger, cron
// tick) stored before it is acknowledged.
type Event struct {
	ID     int64
	OrgID  int64
	RepoID int64
	// Source is webhook, api, cron or rerun.
	Source string
	Forge  string
	// Name is the forge's event header value or the GitHub event name.
	Name string
	// DeliveryID de-duplicates: (repo, delivery id) is unique when set.
	DeliveryID string
	// BodyHash de-duplicates the same event within 24 h for the same repo:
	// webhooks hash their event type with the body (two event types may
	// share a body).
	BodyHash []byte
	// Headers are stored without those carrying secrets (tokens,
	// signatures, authorization, cookies: secrets.IsSecretHeader).
	Headers  map[string]string
	Body     []byte
	Received time.Time
	State    string
	Error    string
	Attempts int
}

// Accepted is the outcome of accepting one event.
type Accepted struct {
	ID int64
	// Duplicate is set when an equal event was already stored (same
	// delivery id, or same body hash within 24 h): nothing was stored.
	Duplicate bool
}

// Run statuses. A run is queued until a job starts, running until every
// job is done, then has the conclusion of its jobs. Blocked is a run held
// by its concurrency group. The final ones are the job contract's
// (package jobspec defines them once).
const (
	StatusBlocked   = "blocked"
	StatusWaiting   = "waiting" // job: needs not done yet
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSuccess   = jobspec.Success
	StatusFailure   = jobspec.Failure
	StatusCancelled = jobspec.Cancelled
	StatusSkipped   = jobspec.Skipped
	StatusError     = jobspec.Error // infrastructure: the job could not run
)

// Terminal reports whether a run or job status is final.
func Terminal(status string) bool { return jobspec.Final(status) }

// Run is one workflow run.
type Run struct {
	ID      int64
	OrgID   int64
	RepoID  int64
	EventID int64
	// Number counts runs per repository from 1.
	Number   int64
	Workflow string // file path in the repository
	Name     string
	Event    string // GitHub event name
	Ref      string
	SHA      string
	Trigger  string // webhook, api, cron, rerun
	Status   string
	Inputs   map[string]string
	// EventJSON is the event model plus payload the run was planned from;
	// WorkflowYAML is the file content at that commit. Re-runs reuse both.
	EventJSON    []byte
	WorkflowYAML []byte
	// ConcurrencyGroup and CancelInProgress are the evaluated
	// workflow-level concurrency: values.
	ConcurrencyGroup string
	CancelInProgress bool
	// Attempt is 1 for a first run; RerunOf is the run it re-runs.
	Attempt  int
	RerunOf  int64
	Created  time.Time
	Started  time.Time
	Finished time.Time
	Error    string
}

// Job is one job of a run (all matrix instances of a workflow job run
// under one Job). Jobs are the queue: a job is leased while running.
type Job struct {
	ID     int64
	RunID  int64
	OrgID  int64
	RepoID int64
	// Key is the job id in the workflow; Needs are keys of the same run.
	Key    string
	Name   string
	Needs  []string
	Status string
	// Priority: higher first, then FIFO by ID.
	Priority int
	// Labels are runs-on labels; Backend the pool that must run it
	// ("" = any).
	Labels  []string
	Backend string
	// Attempt counts leases (1 on the first). MaxAttempts bounds
	// re-leases after infrastructure loss (default 2: re-run once).
	Attempt     int
	MaxAttempts int
	Outputs     map[string]string
	// Results holds per-instance results (matrix) as JSON for display.
	Results []byte
	Error   string
	// Lease: owner (replica or agent id), fencing token (grows with
	// every lease), expiry. CancelRequested is set by a cancel while the
	// job runs; the holder sees it on its next heartbeat.
	LeaseOwner      string
	LeaseToken      int64
	LeaseExpires    time.Time
	CancelRequested bool
	// ConcurrencyGroup and CancelInProgress are the job's evaluated
	// concurrency: values ("" = none). In a group, at most one job runs and
	// one waits: a newer job cancels the older waiting one, and with
	// CancelInProgress the running ones too. GroupWait is set on a queued
	// job held back by its group.
	ConcurrencyGroup string
	CancelInProgress bool
	GroupWait        bool
	// Reused is set on a re-run's job copied from the run it re-runs.
	ReusedFrom int64
	Created    time.Time
	Queued     time.Time
	Started    time.Time
	Finished   time.Time
	// QuotaWait is set on a queued job that its organisation's maximum
	// of concurrent jobs keeps from being leased ("queued: quota"). Build
	// is the sandbox time metered when the job completed.
	QuotaWait bool
	Build     time.Duration
	// Deploy is the job's environment: (nil: none); a gated one waits as
	// StatusAwaitingApproval once ready.
	Deploy *Deployment
	// Spec is the compiled job (jobspec.EncodeJob), written with the run
	// and read back by Lease only (lists of jobs leave it out); nil for a
	// job made before it was stored.
	Spec []byte
}

// Attempt is a past attempt of a job that was interrupted (lease lost),
// shown as such to the user.
type Attempt struct {
	JobID    int64
	Attempt  int
	Owner    string
	Started  time.Time
	Finished time.Time
	Reason   string
}

// NewRun is a run with its jobs, written in one transaction. Jobs' initial
// Status is queued (no needs), waiting (needs), or, for re-runs of failed
// jobs, success/skipped with ReusedFrom set. A queued job whose Deploy is
// gated starts as StatusAwaitingApproval (so does a waiting one once its
// needs are done); a job may also start failed (a ref its environment
// refuses).
type NewRun struct {
	Run  *Run
	Jobs []*Job
}

// LeaseRequest says what a worker can run.
type LeaseRequest struct {
	Owner string
	// OrgID, when not 0, only leases that organisation's jobs (agents
	// belong to one organisation; the server's own workers serve all).
	OrgID int64
	// Labels, when not nil, only leases jobs whose runs-on labels are all
	// in it (see MatchLabels); an empty, non-nil list leases only jobs
	// without labels.
	Labels []string
	// Backends the worker serves ("" in the list matches jobs with no
	// backend). Empty means any.
	Backends []string
	TTL      time.Duration
	// RepoLimit caps running jobs per repository (0: no cap).
	RepoLimit int
}

// Lease is a leased job with its run.
type Lease struct {
	Job *Job
	Run *Run
}

// Completion is the end of a leased job.
type Completion struct {
	Status  string // success, failure, cancelled, skipped, error
	Outputs map[string]string
	Results []byte
	Error   string
	// Build is the sandbox time the job used (sandbox start to teardown),
	// metered to its organisation's month (Quotas.Usage).
	Build time.Duration
}

// CompletionOf is the row form of a worker's report.
func CompletionOf(r jobspec.Report) Completion {
	return Completion{Status: r.Status, Outputs: r.Outputs, Results: jobspec.EncodeInstances(r.Results),
		Error: r.Error, Build: r.Build()}
}

// Quota is an organisation's limits; a zero field is no limit.
type Quota struct {
	OrgID int64
	// MaxConcurrentJobs caps the organisation's running jobs, across
	// replicas and agents: Lease passes over its queued jobs while it has
	// that many running.
	MaxConcurrentJobs int
	// MaxTimeoutMinutes caps every job's timeout-minutes (default 360).
	MaxTimeoutMinutes int
	// MonthlyBuildSeconds is the build time after which new runs are
	// refused until the month (UTC) ends.
	MonthlyBuildSeconds int64
	Updated             time.Time
}

// Usage is an organisation's metered build time in one month (UTC).
type Usage struct {
	OrgID int64
	Month string // "2026-12"
	Build time.Duration
	Jobs  int64 // completions metered
}

// Month is the usage month of t: "2026-12" (UTC).
func Month(t time.Time) string { return t.UTC().Format("2006-01") }

// Agent is a remote machine that leases jobs with an agent token. The
// server identifies an agent by its token only, never by what it sends.
type Agent struct {
	ID     int64
	OrgID  int64
	Name   string
	Hash   []byte // SHA-256 of the agent token
	Labels []string
	// AllowedLabels, set by the admin who made the token, bound the
	// labels the agent may claim (none: any).
	AllowedLabels []string
	// Capacity, Version and Hostname are what the agent last reported.
	Capacity int
	Version  string
	Hostname string
	Draining bool
	Revoked  bool
	Created  time.Time
	LastSeen time.Time
	// Job, when not 0, makes this the in-pod worker of that one job,
	// authenticated by the job's worker credential (not a stored agent):
	// it reaches that job's agent-protocol calls and nothing else.
	Job int64
}

// Owner is the lease owner string of an agent's leases.
func (a *Agent) Owner() string { return fmt.Sprintf("agent:%d", a.ID) }

// MatchLabels is Lease's rule: a worker may run a job when every runs-on
// label of the job is one of the worker's, case aside. A label holding an
// expression (${{ }}) is only known at run time and matches any worker.
func MatchLabels(job, worker []string) bool {
	have := NormalizeLabels(worker)
	return !slices.ContainsFunc(NormalizeLabels(job), func(l string) bool {
		_, found := slices.BinarySearch(have, l)
		return !found
	})
}

// NormalizeLabels returns the labels that constrain matching: lower-cased,
// sorted, without duplicates or expressions. Never nil.
func NormalizeLabels(labels []string) []string {
	out := make([]string, 0, len(labels))
	for _, l := range labels {
		if !strings.Contains(l, "${{") {
			out = append(out, strings.ToLower(l))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Expired reports what Expire did with one lost lease.
type Expired struct {
	JobID   int64
	RunID   int64
	Requeue bool // false: failed with StatusError
	Reason  string
}

// LogReadBytes bounds the output one ReadLog call returns (see Logs).
const LogReadBytes = 1 << 20

// LogPageEnd says whether a page ReadLog returned for limit is the last
// one for now (see Logs).
func LogPageEnd(chunks []LogChunk, limit int) bool {
	n := 0
	for _, c := range chunks {
		n += len(c.Data)
	}
	return len(chunks) < limit && n < LogReadBytes
}

// LogChunk is a piece of a job's masked output. Seq starts at 1 and has no
// gaps per job.
type LogChunk struct {
	JobID int64
	Seq   int64
	Data  []byte
	Time  time.Time
}

// StatusReport is a commit status waiting to be sent to the forge
// (transactional outbox: written with the run change that causes it).
type StatusReport struct {
	ID          int64
	RunID       int64
	RepoID      int64
	SHA         string
	Context     string
	State       string // pending, success, failure, error
	Description string
	TargetURL   string
	Attempts    int
	NextAttempt time.Time
	LastError   string
	Done        bool
}

// RunFilter selects runs for listing.
type RunFilter struct {
	RepoID int64
	Status string
	// Refs are the refs a run may have (any of them; none: all), Workflow
	// its workflow file and Event its event name ("": any).
	Refs     []string
	Workflow string
	Event    string
	Limit    int
	Before   int64 // run id, for paging
}

// Orgs stores organisations.
type Orgs interface {
	// EnsureOrg returns the organisation called name, creating it if missing.
	EnsureOrg(ctx context.Context, name string) (*Org, error)
	// CreateOrg makes a new organisation, with user adminID (0: none) as
	// its admin in the same transaction; Conflict when the name is taken,
	// NotFound when the user is.
	CreateOrg(ctx context.Context, name string, adminID int64) (*Org, error)
	OrgByName(ctx context.Context, name string) (*Org, error)
	GetOrg(ctx context.Context, id int64) (*Org, error)
	ListOrgs(ctx context.Context) ([]*Org, error)
}

// Users stores users and their roles in organisations.
type Users interface {
	// CreateUser stores u and sets its ID and Created; Conflict on a
	// taken name.
	CreateUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, id int64) (*User, error)
	UserByName(ctx context.Context, name string) (*User, error)
	// SetPassword replaces a user's password hash.
	SetPassword(ctx context.Context, userID int64, hash string) error
	// SetMember gives the user role in the organisation, or removes the
	// membership when role is "". Conflict when that would leave the
	// organisation without an admin.
	SetMember(ctx context.Context, orgID, userID int64, role OrgRole) error
	// Member is the user's membership (NotFound when not a member).
	Member(ctx context.Context, orgID, userID int64) (*Member, error)
	// ListMembers lists an organisation's members by name.
	ListMembers(ctx context.Context, orgID int64) ([]*Member, error)
	// Memberships lists the organisations of a user.
	Memberships(ctx context.Context, userID int64) ([]*Member, error)
	// CreateFirstAdmin creates u as a server admin, admin of the
	// organisation, with token t, in one transaction, only when no user
	// exists yet (replicas starting together make one); it reports
	// whether it did.
	CreateFirstAdmin(ctx context.Context, u *User, orgID int64, t *Token) (bool, error)
}

// Tokens stores tokens.
type Tokens interface {
	// CreateToken stores t (which needs an organisation, a user and a
	// scope) and sets its ID and Created; Conflict on a taken hash. A new
	// session token deletes the user's expired session tokens.
	CreateToken(ctx context.Context, t *Token) error
	// TokenByHash returns the token with that hash (NotFound otherwise,
	// expired tokens included: the caller checks Expired) and records its use.
	TokenByHash(ctx context.Context, hash []byte) (*Token, error)
	CountTokens(ctx context.Context, orgID int64) (int, error)
	// ListTokens lists a user's tokens (all organisations) by id.
	ListTokens(ctx context.Context, userID int64) ([]*Token, error)
	// RevokeToken deletes a token of the user (NotFound when the user has
	// no such token).
	RevokeToken(ctx context.Context, userID, id int64) error
	// RotateToken gives a token of the user a new hash (the old secret
	// stops working at once) and returns it.
	RotateToken(ctx context.Context, userID, id int64, hash []byte) (*Token, error)
}

// Audit is the append-only audit log.
type Audit interface {
	// AppendAudit stores e and sets its ID (and Time when zero).
	AppendAudit(ctx context.Context, e *AuditEntry) error
	// ListAudit lists an organisation's entries, newest first.
	ListAudit(ctx context.Context, orgID int64, f AuditFilter) ([]*AuditEntry, error)
}

// RepoSettings are the settings of a repository that can change after it
// is registered; nil leaves one as it is.
type RepoSettings struct {
	RunTestDeliveries *bool
	// Secret replaces the webhook secret.
	Secret           *string
	EnvMap           *EnvMapping
	SkipForkApproval *bool
	NetworkPolicy    *string
	Runtime          *string
}

// Repos stores repositories.
type Repos interface {
	CreateRepo(ctx context.Context, r *Repo) error // Conflict on same org+name
	GetRepo(ctx context.Context, orgID, id int64) (*Repo, error)
	// RepoForHook finds a repository by id alone: the webhook path is the
	// only unauthenticated entry and the signature check follows.
	RepoForHook(ctx context.Context, id int64) (*Repo, error)
	RepoByName(ctx context.Context, orgID int64, name string) (*Repo, error)
	ListRepos(ctx context.Context, orgID int64) ([]*Repo, error)
	// UpdateRepo changes the settings set holds (nil fields stay) and
	// returns the repository as stored.
	UpdateRepo(ctx context.Context, orgID, id int64, set RepoSettings) (*Repo, error)
	// AllRepos lists the repositories of every organisation, for the
	// server's own loops (cron); never reachable by a tenant.
	AllRepos(ctx context.Context) ([]*Repo, error)
}

// Events stores accepted events.
type Events interface {
	// Accept stores events in ONE transaction (group commit), skipping
	// duplicates, and returns one Accepted per event in order.
	Accept(ctx context.Context, evs []*Event) ([]Accepted, error)
	// ClaimEvents leases up to n pending events (or processing ones whose
	// lease expired) for owner until now+ttl.
	ClaimEvents(ctx context.Context, owner string, n int, ttl time.Duration) ([]*Event, error)
	// FinishEvent writes the runs an event produced and marks it done in
	// ONE transaction, provided owner still holds it (Conflict otherwise).
	// Runs are subject to concurrency groups (see Runs.CreateRuns).
	FinishEvent(ctx context.Context, eventID int64, owner string, runs []NewRun) ([]*Run, error)
	// FailEvent marks an event failed (or done with a note when runs is
	// not needed) with a reason.
	FailEvent(ctx context.Context, eventID int64, owner, reason string) error
	// FinishEvents ends several claimed events of owner in ONE transaction
	// (one fsync for a processed batch): each Outcome is FinishEvent's (or
	// FailEvent's when Fail is set), fenced per event. It returns one
	// result per outcome, in order; an event whose claim was lost gets
	// Conflict (NotFound when unknown) and writes nothing, without holding
	// back the others. When the shared transaction fails, each outcome is
	// written in its own, so one bad outcome fails alone.
	FinishEvents(ctx context.Context, owner string, outs []EventOutcome) []FinishResult
	GetEvent(ctx context.Context, orgID, id int64) (*Event, error)
}

// EventOutcome is how processing a claimed event ended: the runs it
// produced, or, when Fail is set, the reason it failed.
type EventOutcome struct {
	EventID int64
	Runs    []NewRun
	Fail    string
}

// FinishResult is what FinishEvents did with one outcome.
type FinishResult struct {
	Runs []*Run // created (none for a failed event)
	Err  error
}

// Runs reads and changes runs.
type Runs interface {
	// CreateRuns writes runs with their jobs in one transaction. Concurrency
	// groups: a run whose group has an unfinished run is blocked (only the
	// newest blocked run of a group is kept; an older blocked one is
	// cancelled); with CancelInProgress the unfinished runs of the group
	// are cancelled instead.
	CreateRuns(ctx context.Context, runs []NewRun) ([]*Run, error)
	GetRun(ctx context.Context, orgID, id int64) (*Run, error)
	ListRuns(ctx context.Context, orgID int64, f RunFilter) ([]*Run, error)
	// LatestRuns returns the latest run of each repository of the
	// organisation that has one, newest first, in one query (the cost
	// grows with the repositories, not with their runs).
	LatestRuns(ctx context.Context, orgID int64) ([]*Run, error)
	Jobs(ctx context.Context, orgID, runID int64) ([]*Job, error)
	GetJob(ctx context.Context, orgID, jobID int64) (*Job, error)
	Attempts(ctx context.Context, orgID, jobID int64) ([]*Attempt, error)
	// CancelRun cancels jobs that have not started and flags running ones
	// (CancelRequested); the run ends when they report. Conflict when the
	// run is already finished.
	CancelRun(ctx context.Context, orgID, runID int64, reason string) (*Run, error)
	// Stats counts the live jobs (waiting, queued, running) by status,
	// for metrics: its cost follows the live jobs, not the history
	// (finished jobs are counted as they finish, see the server's metrics).
	Stats(ctx context.Context) (map[string]int, error)
}

// Queue leases jobs to workers.
type Queue interface {
	// Lease takes the queued job with the highest priority, then lowest
	// id, that req may run, marks it running with a new fencing token and
	// returns it; (nil, nil) when there is none. Each job is leased by
	// exactly one caller, across replicas.
	Lease(ctx context.Context, req LeaseRequest) (*Lease, error)
	// Heartbeat extends a lease; it returns cancel=true when the run was
	// cancelled, and a Conflict error when the lease was lost (token).
	Heartbeat(ctx context.Context, jobID, token int64, ttl time.Duration) (cancel bool, err error)
	// Complete ends a leased job and, in the same transaction, queues the
	// jobs whose needs are now all finished, finishes the run when all its
	// jobs are finished (and unblocks the next run of its concurrency
	// group), and writes the commit-status outbox entry. Conflict when the
	// token is stale. A lease past its expiry still completes until Expire
	// has handed the job on: a worker that could not reach the store
	// retries its completion meanwhile (package worker).
	Complete(ctx context.Context, jobID, token int64, c Completion) error
	// Expire handles leases that ended before now: the job is queued
	// again (attempt < max attempts) or ends with StatusError, and the
	// interrupted attempt is recorded.
	Expire(ctx context.Context, now time.Time) ([]Expired, error)
	// Release hands a leased job back at once (graceful shutdown, drain
	// deadline): it is queued again with the interrupted attempt recorded
	// with reason, without using up its retries (MaxAttempts grows by
	// one). When its run is being cancelled the job ends cancelled
	// instead. Conflict when the token is stale.
	Release(ctx context.Context, jobID, token int64, reason string) error
}

// Agents stores remote agents.
type Agents interface {
	// CreateAgent stores a new agent (with its token hash) and sets its
	// ID and Created; Conflict on a taken hash or on the name of a
	// non-revoked agent of the same organisation.
	CreateAgent(ctx context.Context, a *Agent) error
	// AgentByHash finds a non-revoked agent by token hash (NotFound
	// otherwise). GetAgent and ListAgents show revoked agents too.
	AgentByHash(ctx context.Context, hash []byte) (*Agent, error)
	GetAgent(ctx context.Context, orgID, id int64) (*Agent, error)
	ListAgents(ctx context.Context, orgID int64) ([]*Agent, error)
	// AgentSeen records what the agent reports, and when (NotFound if revoked).
	AgentSeen(ctx context.Context, id int64, labels []string, capacity int, version, hostname string) error
	SetDraining(ctx context.Context, orgID, id int64, draining bool) error
	RevokeAgent(ctx context.Context, orgID, id int64) error
	// RunningJobs lists the running jobs leased by owner (an agent's
	// current jobs).
	RunningJobs(ctx context.Context, owner string) ([]*Job, error)
}

// Logs stores job output.
type Logs interface {
	// AppendLog stores the next chunk of a job's output; seq is assigned.
	AppendLog(ctx context.Context, jobID int64, data []byte) (seq int64, err error)
	// RetryLog is AppendLog for a request that may have been stored
	// already (its answer was lost): when the job's last chunk has exactly
	// data and follows prev (the seq the writer got for its previous chunk;
	// 0 when it has none), that chunk's seq is returned with dup set and
	// nothing is stored.
	RetryLog(ctx context.Context, jobID, prev int64, data []byte) (seq int64, dup bool, err error)
	// ReadLog returns chunks with Seq > after, in order: at most limit,
	// and no more once they hold LogReadBytes (at least one chunk), so a
	// reader never holds much more than that. A page shorter than limit
	// whose chunks hold less than LogReadBytes is the end of the log.
	ReadLog(ctx context.Context, orgID, jobID, after int64, limit int) ([]LogChunk, error)
}

// Objects is an object store (the caches' one: a local folder or an
// S3-compatible bucket) where the store keeps logs and artifacts, the
// database holding only their index (object name, size, checksum).
// cache.Dir and cache.S3 are Objects. Names are slash-separated, made of
// [a-z0-9/._-]. Implementations are safe for concurrent use.
type Objects interface {
	// Put stores r under name (size -1: unknown), replacing any object.
	Put(ctx context.Context, name string, r io.Reader, size int64) error
	// Get opens name; errs.NotFound when absent.
	Get(ctx context.Context, name string) (io.ReadCloser, error)
	// Delete removes name; absent is not an error.
	Delete(ctx context.Context, name string) error
}

// LogMover moves the logs of finished jobs out of the database into the
// object store (a store without one moves nothing).
type LogMover interface {
	// MoveLogs moves the database-held log chunks of jobs whose run
	// finished before before, at most a batch of jobs per call, and
	// returns how many jobs it moved; readers (followers included) see
	// the same chunks before, during and after a move.
	MoveLogs(ctx context.Context, before time.Time) (int, error)
}

// Artifact is a file tree a job of a run uploaded (actions/upload-artifact);
// its content (tar.gz) is stored in chunks.
type Artifact struct {
	ID    int64
	OrgID int64
	RunID int64
	// Name is unique within the run.
	Name string
	// Job is the display name of the job that uploaded it.
	Job string
	// Size is the content's size in bytes.
	Size          int64
	RetentionDays int
	Created       time.Time
}

// Artifacts stores the artifacts of runs.
type Artifacts interface {
	// PutArtifact stores an artifact of run a.RunID of organisation
	// a.OrgID with the content read from r, and sets a's ID, Size and
	// Created. The content is written in chunks, each in a transaction of
	// its own, so a slow upload holds no lock; the artifact becomes
	// visible at once when all is written. An error of r (e.g. TooLarge)
	// is returned as it is and nothing is kept. NotFound when the run is
	// not the organisation's; Conflict when the name exists and
	// !overwrite (overwrite replaces it).
	PutArtifact(ctx context.Context, a *Artifact, overwrite bool, r io.Reader) error
	// ListArtifacts lists a run's artifacts by name (NotFound: no such run).
	ListArtifacts(ctx context.Context, orgID, runID int64) ([]*Artifact, error)
	// OpenArtifact returns an artifact and its content, read chunk by
	// chunk; the caller closes it. NotFound when there is none.
	OpenArtifact(ctx context.Context, orgID, runID int64, name string) (*Artifact, io.ReadCloser, error)
}

// Crons keeps the last fired time per schedule.
type Crons interface {
	// CronLast returns the last scheduled time fired for key (zero if
	// never).
	CronLast(ctx context.Context, key string) (time.Time, error)
	// FireCron records that key fired at scheduled and accepts ev, in one
	// transaction, only if scheduled is after the stored time: it returns
	// false (and stores nothing) when another replica fired it first.
	FireCron(ctx context.Context, key string, scheduled time.Time, ev *Event) (bool, error)
}

// Outbox holds commit statuses to send.
type Outbox interface {
	// ClaimStatuses returns up to n reports due before now, not done,
	// and pushes their NextAttempt by ttl so other replicas skip them.
	ClaimStatuses(ctx context.Context, now time.Time, n int, ttl time.Duration) ([]*StatusReport, error)
	// StatusSent marks a report done, or records a failure and the next
	// attempt (done when giving up).
	StatusSent(ctx context.Context, id int64, err string, next time.Time, giveUp bool) error
	// GiveUpStatuses marks reports that cannot be sent (no token) done
	// with reason, in one transaction.
	GiveUpStatuses(ctx context.Context, ids []int64, reason string) error
}

// Quotas stores organisations' limits and metered build time.
type Quotas interface {
	// Quota returns the organisation's limits (zero: none set).
	Quota(ctx context.Context, orgID int64) (*Quota, error)
	// SetQuota replaces the organisation's limits (NotFound: no such
	// organisation; Invalid: a negative limit).
	SetQuota(ctx context.Context, q *Quota) error
	// Usage returns the organisation's metered build time in month
	// ("2026-12"; zero when nothing was metered).
	Usage(ctx context.Context, orgID int64, month string) (*Usage, error)
}

// Retention is how many days each kind of history is kept after its run
// finished. nil: a repository's setting follows its organisation's, an
// organisation's keeps forever. Runs go with their jobs, logs, artifacts
// and commit statuses, and processed events older than the runs setting
// once their runs are gone; logs and artifacts may go sooner.
type Retention struct {
	RunsDays      *int `json:"runs_days"`
	LogsDays      *int `json:"logs_days"`
	ArtifactsDays *int `json:"artifacts_days"`
	// CachesDays: caches (actions/cache) not used for this many days are
	// evicted, as GitHub evicts after 7 days; it does not follow RunsDays.
	CachesDays *int `json:"caches_days"`
}

// CacheRetention is a repository's effective CachesDays.
type CacheRetention struct {
	OrgID int64
	Repo  string // the repository's name, its caches' scope
	Days  int
}

// Swept counts what one Sweep deleted.
type Swept struct {
	Runs, LogChunks, Artifacts, Statuses, Events int64
}

// Retainer keeps retention settings and applies them.
type Retainer interface {
	// SetRetention sets the retention of an organisation (repoID 0) or
	// of one of its repositories; days are 0 or more (Invalid otherwise).
	SetRetention(ctx context.Context, orgID, repoID int64, r Retention) error
	// GetRetention returns the setting (all nil when never set).
	GetRetention(ctx context.Context, orgID, repoID int64) (Retention, error)
	// Sweep deletes, in small transactions, what is past retention at
	// now, artifacts past their own retention-days, and commit status
	// reports done whose last attempt is older than outbox; then gives
	// space back (SQLite).
	Sweep(ctx context.Context, now time.Time, outbox time.Duration) (Swept, error)
	// CacheRetentions lists the repositories whose caches have a
	// retention (their own CachesDays, else their organisation's).
	CacheRetentions(ctx context.Context) ([]CacheRetention, error)
}

// Store is every interface plus lifecycle, for wiring in main.
// FailureBuckets are token buckets of failed attempts (logins) by key,
// kept in the database so that replicas sharing it count the same
// failures (see package ratelimit for the buckets' rules).
type FailureBuckets interface {
	// FailureWait is how long key must wait before its next attempt: zero
	// when its bucket has a token.
	FailureWait(ctx context.Context, key string, lim ratelimit.Limit, now time.Time) (time.Duration, error)
	// TakeFailure takes a token from key's bucket (full when new). Buckets
	// untouched for a day (or Burst × Every when longer) are full again and
	// deleted on the way.
	TakeFailure(ctx context.Context, key string, lim ratelimit.Limit, now time.Time) error
	// ResetFailures forgets key's failures.
	ResetFailures(ctx context.Context, key string) error
}

type Store interface {
	Orgs
	Users
	Tokens
	Audit
	Repos
	Events
	Runs
	Queue
	Logs
	Crons
	Outbox
	Agents
	Artifacts
	Secrets
	JobTokens
	Quotas
	Retainer
	Environments
	Approvals
	LogMover
	FailureBuckets
	// Dialect is "sqlite" or "postgres".
	Dialect() string
	Close() error
}
