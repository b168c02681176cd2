package api

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// Response types are the API's wire format, kept apart from store rows so
// that a new column never leaks secrets (webhook secret, status token,
// clone password, token hashes) or internals (leases) by accident.

// WhoAmI describes the caller's token and user.
type WhoAmI struct {
	OrgID int64  `json:"org_id"`
	Token string `json:"token"`
	// Role is the token's scope (read, write, admin).
	Role string `json:"role"`
	User string `json:"user"`
	// OrgRole is the user's role in the organisation ("" when not a member).
	OrgRole     string `json:"org_role"`
	ServerAdmin bool   `json:"server_admin"`
	// Expires is when the token stops working (absent: never).
	Expires *time.Time `json:"expires,omitempty"`
	Version string     `json:"version"`
}

// Repo is a registered repository, without its credentials.
type Repo struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	URL       string `json:"url"`
	Forge     string `json:"forge"`
	Branch    string `json:"branch"`
	AllowSHA1 bool   `json:"allow_sha1"`
	// RunTestDeliveries: Gitea's "Test delivery" pushes start runs.
	RunTestDeliveries bool `json:"run_test_deliveries"`
	// APIURL is the forge API used for commit statuses ("" = the forge's default).
	APIURL string `json:"api_url,omitempty"`
	// HasStatusToken says a commit-status token is configured (the token is never shown).
	HasStatusToken bool      `json:"has_status_token"`
	HookURL        string    `json:"hook_url"`
	Created        time.Time `json:"created"`
	// EnvMap maps branches to environments (nil: none).
	EnvMap *store.EnvMapping `json:"env_map,omitempty"`
	// SkipForkApproval: runs of fork pull requests start without a
	// maintainer's approval.
	SkipForkApproval bool `json:"skip_fork_approval"`
	// NetworkPolicy and Runtime are the sandbox of its jobs ("": open,
	// the engine's default runtime).
	NetworkPolicy string `json:"network_policy,omitempty"`
	Runtime       string `json:"runtime,omitempty"`
}

// RepoList is the answer of GET /api/repos.
type RepoList struct {
	Repos []Repo `json:"repos"`
	// LatestRuns, asked with ?latest_runs=true, is the latest run of each
	// listed repository that has one (newest first; join on repo_id).
	LatestRuns []Run `json:"latest_runs,omitempty"`
}

// RepoCreated is the answer of POST /api/repos: the only answer that
// shows the webhook secret.
type RepoCreated struct {
	Repo    Repo   `json:"repo"`
	HookURL string `json:"hook_url"`
	Secret  string `json:"secret"`
}

// Dispatched is the answer of POST /api/repos/{id}/dispatch.
type Dispatched struct {
	EventID int64 `json:"event_id"`
}

// Event is an accepted trigger and how far it got.
type Event struct {
	ID       int64     `json:"id"`
	RepoID   int64     `json:"repo_id"`
	Source   string    `json:"source"`
	Forge    string    `json:"forge,omitempty"`
	Name     string    `json:"name"`
	State    string    `json:"state"`
	Error    string    `json:"error,omitempty"`
	Attempts int       `json:"attempts"`
	Received time.Time `json:"received"`
}

// Run is one workflow run.
type Run struct {
	ID       int64  `json:"id"`
	RepoID   int64  `json:"repo_id"`
	EventID  int64  `json:"event_id"`
	Number   int64  `json:"number"`
	Workflow string `json:"workflow"`
	Name     string `json:"name"`
	Event    string `json:"event"`
	Ref      string `json:"ref"`
	SHA      string `json:"sha"`
	// CommitMessage and Actor come from the run's event, when it has them.
	CommitMessage    string            `json:"commit_message,omitempty"`
	Actor            string            `json:"actor,omitempty"`
	Trigger          string            `json:"trigger"`
	Status           string            `json:"status"`
	Inputs           map[string]string `json:"inputs,omitempty"`
	ConcurrencyGroup string            `json:"concurrency_group,omitempty"`
	Attempt          int               `json:"attempt"`
	RerunOf          int64             `json:"rerun_of,omitempty"`
	Error            string            `json:"error,omitempty"`
	Created          time.Time         `json:"created"`
	Started          *time.Time        `json:"started,omitempty"`
	Finished         *time.Time        `json:"finished,omitempty"`
}

// RunList is the answer of GET /api/runs; NextBefore, when set, is the
// before= value of the next page.
type RunList struct {
	Runs       []Run `json:"runs"`
	NextBefore int64 `json:"next_before,omitempty"`
}

// RunDetail is a run with its jobs.
type RunDetail struct {
	Run  Run   `json:"run"`
	Jobs []Job `json:"jobs"`
}

// Job is one job of a run.
type Job struct {
	ID          int64             `json:"id"`
	Key         string            `json:"key"`
	Name        string            `json:"name"`
	Needs       []string          `json:"needs,omitempty"`
	Status      string            `json:"status"`
	Error       string            `json:"error,omitempty"`
	Attempt     int               `json:"attempt"`
	MaxAttempts int               `json:"max_attempts"`
	Outputs     map[string]string `json:"outputs,omitempty"`
	// Results are per-instance (matrix) results as the executor wrote them.
	Results         json.RawMessage `json:"results,omitempty"`
	CancelRequested bool            `json:"cancel_requested,omitempty"`
	ReusedFrom      int64           `json:"reused_from,omitempty"`
	Queued          *time.Time      `json:"queued,omitempty"`
	Started         *time.Time      `json:"started,omitempty"`
	Finished        *time.Time      `json:"finished,omitempty"`
	// Interrupted are earlier attempts that lost their lease.
	Interrupted []Attempt `json:"interrupted,omitempty"`
	// WaitingReason says why a queued job waits when nothing can run it
	// ("waiting: no agent with labels gpu").
	WaitingReason string `json:"waiting_reason,omitempty"`
	// ConcurrencyGroup is the job's evaluated concurrency: group.
	ConcurrencyGroup string `json:"concurrency_group,omitempty"`
	// Queue says why a queued job is not leased: "quota" while its
	// organisation runs its maximum of concurrent jobs.
	Queue string `json:"queue,omitempty"`
	// BuildSeconds is the job's metered sandbox time (once completed).
	BuildSeconds float64 `json:"build_seconds,omitempty"`
	// Environment is the job's environment:; Approval what a job
	// deploying to a protected one waits for (status awaiting_approval).
	Environment *JobEnvironment `json:"environment,omitempty"`
	Approval    *Approval       `json:"approval,omitempty"`
}

// Attempt is an interrupted attempt of a job.
type Attempt struct {
	Attempt  int        `json:"attempt"`
	Worker   string     `json:"worker,omitempty"`
	Reason   string     `json:"reason"`
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
}

// RerunInput is the body of POST /api/runs/{id}/rerun.
type RerunInput struct {
	// Failed re-runs only the failed jobs and what depends on them.
	Failed bool `json:"failed"`
}

// lostReason says "agent lost" for an attempt whose lease an agent lost.
func lostReason(owner, reason string) string {
	if strings.HasPrefix(owner, "agent:") && !strings.HasPrefix(reason, "agent lost") {
		return "agent lost (" + owner + "): " + reason
	}
	return reason
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// hookURL is where a forge sends a repository's webhooks.
func hookURL(base string, id int64) string {
	return base + "/hooks/" + strconv.FormatInt(id, 10)
}

func toRepo(r *store.Repo, base string) Repo {
	out := Repo{
		ID: r.ID, Name: r.Name, URL: r.URL, Forge: r.Forge, Branch: r.Branch,
		AllowSHA1: r.AllowSHA1, RunTestDeliveries: r.RunTestDeliveries, APIURL: r.APIURL, HasStatusToken: r.StatusToken != "",
		HookURL: hookURL(base, r.ID), Created: r.Created.UTC(), SkipForkApproval: r.SkipForkApproval,
		NetworkPolicy: r.NetworkPolicy, Runtime: r.Runtime,
	}
	if !r.EnvMap.Empty() {
		m := r.EnvMap
		out.EnvMap = &m
	}
	return out
}

func toEvent(e *store.Event) Event {
	return Event{
		ID: e.ID, RepoID: e.RepoID, Source: e.Source, Forge: e.Forge, Name: e.Name,
		State: e.State, Error: e.Error, Attempts: e.Attempts, Received: e.Received.UTC(),
	}
}

func toRun(r *store.Run) Run {
	// Only the event model is decoded; the payload is skipped.
	var ev struct {
		Event struct {
			HeadCommit string `json:"head_commit"`
			Sender     string `json:"sender"`
		} `json:"event"`
	}
	_ = json.Unmarshal(r.EventJSON, &ev) // an event without them shows none
	return Run{
		ID: r.ID, RepoID: r.RepoID, EventID: r.EventID, Number: r.Number,
		Workflow: r.Workflow, Name: r.Name, Event: r.Event, Ref: r.Ref, SHA: r.SHA,
		Trigger: r.Trigger, Status: r.Status, Inputs: r.Inputs,
		ConcurrencyGroup: r.ConcurrencyGroup, Attempt: r.Attempt, RerunOf: r.RerunOf,
		Error: r.Error, Created: r.Created.UTC(), Started: optTime(r.Started),
		Finished:      optTime(r.Finished),
		CommitMessage: ev.Event.HeadCommit, Actor: ev.Event.Sender,
	}
}

func toJob(j *store.Job, interrupted []*store.Attempt) Job {
	out := Job{
		ID: j.ID, Key: j.Key, Name: j.Name, Needs: j.Needs, Status: j.Status,
		Error: j.Error, Attempt: j.Attempt, MaxAttempts: j.MaxAttempts, Outputs: j.Outputs,
		CancelRequested: j.CancelRequested, ReusedFrom: j.ReusedFrom,
		Queued: optTime(j.Queued), Started: optTime(j.Started), Finished: optTime(j.Finished),
	}
	out.ConcurrencyGroup = j.ConcurrencyGroup
	if j.GroupWait {
		out.WaitingReason = "waiting for concurrency group " + j.ConcurrencyGroup
	}
	if j.QuotaWait {
		out.Queue = "quota"
		out.WaitingReason = "queued: quota (the organisation runs its maximum of concurrent jobs)"
	}
	out.BuildSeconds = j.Build.Seconds()
	deployOf(&out, j.Deploy)
	if j.Status == store.StatusAwaitingApproval && out.Approval != nil {
		out.WaitingReason = awaitingReason(j.Deploy)
	}
	if json.Valid(j.Results) {
		out.Results = j.Results
	}
	for _, a := range interrupted {
		out.Interrupted = append(out.Interrupted, Attempt{
			Attempt: a.Attempt, Worker: a.Owner, Reason: lostReason(a.Owner, a.Reason),
			Started: optTime(a.Started), Finished: optTime(a.Finished),
		})
	}
	return out
}
