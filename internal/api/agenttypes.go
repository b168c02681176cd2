package api

import (
	"context"
	"io"
	"time"

	"github.com/conveyor-ci/conveyor/internal/jobspec"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// The agent protocol (/api/agent/...) is spoken by remote agents with an
// agent token; the agent is the one its token names, never one named in a
// request. Job calls carry the job's fencing token in LeaseHeader.

// LeaseHeader carries the fencing token of a job call.
const LeaseHeader = "Conveyor-Lease-Token"

// LogRetryHeader marks a log chunk sent again after its answer was lost;
// its value is the seq the agent got for its previous chunk (0: none).
// The server then stores the chunk only if it did not already. LogSeqHeader
// answers every chunk with the seq it was stored under.
const (
	LogRetryHeader = "Conveyor-Log-Retry"
	LogSeqHeader   = "Conveyor-Log-Seq"
)

// DrainingHeader is "true" on a lease answer when the agent is drained.
const DrainingHeader = "Conveyor-Agent-Draining"

// ContractHeader carries the job contract version (jobspec.Version) of
// an agent's lease request; the assignment is encoded in that version
// (jobspec.Assignment.For). Agents older than contract version 2 send
// none: they get version 1.
const ContractHeader = "Conveyor-Job-Contract"

// AgentRegister is what an agent reports when it starts.
type AgentRegister struct {
	// Labels are the runs-on labels it runs (none: keep those it has).
	Labels   []string `json:"labels,omitempty"`
	Capacity int      `json:"capacity"`
	Version  string   `json:"version"`
	Hostname string   `json:"hostname"`
	// Contract is the job contract version the agent speaks
	// (jobspec.Version; absent from agents older than the versioned
	// contract). The server refuses one it cannot serve.
	Contract int `json:"contract,omitempty"`
}

// AgentRegistered is who the agent is (from its token) and the timings
// of the protocol.
type AgentRegistered struct {
	AgentID int64    `json:"agent_id"`
	Name    string   `json:"name"`
	OrgID   int64    `json:"org_id"`
	Labels  []string `json:"labels"`
	// RefusedLabels are labels it reported that its token does not allow.
	RefusedLabels []string `json:"refused_labels,omitempty"`
	Draining      bool     `json:"draining"`
	// LeaseTTLMS: a lease not heartbeated for this long is lost;
	// HeartbeatMS: how often to heartbeat; PollTimeoutMS: how long a
	// lease request may wait for work.
	LeaseTTLMS    int64 `json:"lease_ttl_ms"`
	HeartbeatMS   int64 `json:"heartbeat_ms"`
	PollTimeoutMS int64 `json:"poll_timeout_ms"`
	// Contract is the job contract version the server speaks.
	Contract int `json:"contract,omitempty"`
}

// AgentAssignment, AgentRun and AgentNeed are the job contract's
// Assignment (package jobspec: the versioned encoding agents and the
// server share).
type (
	AgentAssignment = jobspec.Assignment
	AgentRun        = jobspec.Run
	AgentNeed       = jobspec.Need
)

// AgentHeartbeat answers a heartbeat: Cancel when the run was cancelled.
type AgentHeartbeat struct {
	Cancel bool `json:"cancel"`
}

// AgentCompletion is the end of an assigned job: the job contract's
// Report. The server caps its BuildMS at the lease's length.
type AgentCompletion = jobspec.Report

// AgentRelease hands a job back (shutdown deadline): it is queued again.
type AgentRelease struct {
	Reason string `json:"reason,omitempty"`
}

// AgentInput creates an agent (admin).
type AgentInput struct {
	Name string `json:"name"`
	// Labels are its runs-on labels until it registers its own.
	Labels []string `json:"labels,omitempty"`
	// AllowedLabels bound the labels the agent may claim when it
	// registers; others it reports are dropped (none: any label).
	AllowedLabels []string `json:"allowed_labels,omitempty"`
}

// AgentCreated is the only answer that shows an agent's token.
type AgentCreated struct {
	Agent Agent  `json:"agent"`
	Token string `json:"token"`
}

// Agent states.
const (
	AgentIdle     = "idle"
	AgentBusy     = "busy"
	AgentDraining = "draining"
	AgentOffline  = "offline"
)

// Agent is a remote agent as admins see it.
type Agent struct {
	ID     int64    `json:"id"`
	Name   string   `json:"name"`
	Labels []string `json:"labels"`
	// AllowedLabels bound what it may claim (absent: any label).
	AllowedLabels []string `json:"allowed_labels,omitempty"`
	State         string   `json:"state"` // idle, busy, draining, offline
	Draining      bool     `json:"draining"`
	Capacity      int      `json:"capacity"`
	Version       string   `json:"version,omitempty"`
	Hostname      string   `json:"hostname,omitempty"`
	// Jobs are the jobs it runs now.
	Jobs     []AgentJob `json:"jobs"`
	Created  time.Time  `json:"created"`
	LastSeen *time.Time `json:"last_seen,omitempty"`
}

// AgentJob is a job an agent runs.
type AgentJob struct {
	ID      int64      `json:"id"`
	RunID   int64      `json:"run_id"`
	Key     string     `json:"key"`
	Name    string     `json:"name"`
	Attempt int        `json:"attempt"`
	Started *time.Time `json:"started,omitempty"`
}

// AgentList is the answer of GET /api/agents.
type AgentList struct {
	Agents []Agent `json:"agents"`
}

// AgentProtocol is the server side of the agent protocol. a is always the
// agent its token names. Every job call is fenced: it fails with a
// Conflict error unless jobID is leased to a under token right now, so an
// agent whose lease expired (and was handed to another) cannot report.
type AgentProtocol interface {
	// AgentByHash returns the non-revoked agent whose token has this
	// SHA-256 (NotFound otherwise).
	AgentByHash(ctx context.Context, hash []byte) (*store.Agent, error)
	Register(ctx context.Context, a *store.Agent, in AgentRegister) (*AgentRegistered, error)
	// Lease waits (up to the poll timeout, or until ctx ends) for a job a
	// may run: nil when there is none; draining when a takes no new jobs.
	Lease(ctx context.Context, a *store.Agent) (asg *AgentAssignment, draining bool, err error)
	Heartbeat(ctx context.Context, a *store.Agent, jobID, token int64) (cancel bool, err error)
	// AppendLog stores a chunk of the job's output under the next seq; a
	// retry (retryPrev >= 0, see LogRetryHeader) is not stored twice.
	AppendLog(ctx context.Context, a *store.Agent, jobID, token int64, data []byte, retryPrev int64) (seq int64, err error)
	// Source writes the source tree of the job's commit to w as tar.gz.
	// An error returned before anything is written is answered normally.
	Source(ctx context.Context, a *store.Agent, jobID, token int64, w io.Writer) error
	Complete(ctx context.Context, a *store.Agent, jobID, token int64, c AgentCompletion) error
	Release(ctx context.Context, a *store.Agent, jobID, token int64, reason string) error
}

// AgentAdmin manages an organisation's agents.
type AgentAdmin interface {
	// CreateAgent stores an agent with a new token (shown only here).
	CreateAgent(ctx context.Context, orgID int64, in AgentInput) (*AgentCreated, error)
	ListAgents(ctx context.Context, orgID int64) ([]Agent, error)
	// SetDraining drains an agent (it finishes its jobs, takes no new
	// ones) or resumes it.
	SetDraining(ctx context.Context, orgID, id int64, draining bool) (*Agent, error)
	// RevokeAgent revokes an agent's token: its calls fail from now on
	// and the leases of its running jobs expire.
	RevokeAgent(ctx context.Context, orgID, id int64) error
	// WaitingReasons says, by job id, why queued jobs wait when no online
	// agent and no worker of the server can run them.
	WaitingReasons(ctx context.Context, orgID int64, jobs []*store.Job) (map[int64]string, error)
}
