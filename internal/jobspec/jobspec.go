// Package jobspec is the job contract: what a worker receives when it
// leases a job (an Assignment, with the compiled job: Job) and what it
// reports when the job ends (a Report), wherever it runs (a server's own
// worker, a remote agent). The JSON encoding is versioned: Version says
// which contract a party speaks, and a change that an older party would
// misread bumps it. The server converts to and from its rows, package
// plan to and from the parsed workflow (plan.Spec, plan.FromSpec); the
// executor's types never travel.
//
// It imports nothing from the server side nor from the executor.
package jobspec

import (
	"encoding/json"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Version is the contract this build speaks. MinVersion is the oldest it
// serves. Version 0 is what agents older than the versioned contract
// send (no version field): their wire format is version 1's, so it is
// served as 1.
//
// Version 2 adds the compiled job (Assignment.Job, see Job): a worker of
// version 2 runs the job from it and never reads the workflow file. The
// server encodes each assignment in the version of the agent that leases
// it (Assignment.For): a version 1 agent gets the workflow file
// (Run.WorkflowYAML) and no compiled job, as before, a version 2 one
// the compiled job and no file.
const (
	Version    = 2
	MinVersion = 1
)

// Check says whether an agent speaking contract v can be served by this
// server: an Invalid error that says what to upgrade otherwise.
func Check(v int) error {
	switch v = max(v, 1); {
	case v > Version:
		return errs.E("job contract", errs.Invalid,
			"this agent speaks job contract version %d, this server only %d to %d: upgrade the server or run an older agent",
			v, MinVersion, Version)
	case v < MinVersion:
		return errs.E("job contract", errs.Invalid,
			"this agent speaks job contract version %d, this server only %d to %d: upgrade the agent",
			v, MinVersion, Version)
	}
	return nil
}

// CheckAssignment says whether an agent of this build can run an
// assignment encoded in contract v: an Invalid error otherwise.
func CheckAssignment(v int) error {
	if v = max(v, 1); v > Version || v < MinVersion {
		return errs.E("job contract", errs.Invalid,
			"the server sent job contract version %d, this agent speaks %d to %d: upgrade the agent", v, MinVersion, Version)
	}
	return nil
}

// Results of jobs and steps, as GitHub names them, and Error: the job
// could not run (infrastructure). These are the only statuses a Report
// may carry; the store and the executor use these constants.
const (
	Success   = "success"
	Failure   = "failure"
	Cancelled = "cancelled"
	Skipped   = "skipped"
	Error     = "error"
)

// Final reports whether status is one a job may end with.
func Final(status string) bool {
	switch status {
	case Success, Failure, Cancelled, Skipped, Error:
		return true
	}
	return false
}

// Assignment is a leased job: everything a worker needs to run it but
// the source tree, which it is given (a server worker) or downloads with
// the lease token (an agent).
type Assignment struct {
	// Version is the contract the server encoded this with.
	Version    int    `json:"version,omitempty"`
	JobID      int64  `json:"job_id"`
	LeaseToken int64  `json:"lease_token"`
	LeaseTTLMS int64  `json:"lease_ttl_ms"`
	Key        string `json:"key"`
	Name       string `json:"name"`
	Attempt    int    `json:"attempt"`
	// Labels are the job's runs-on labels.
	Labels []string        `json:"labels,omitempty"`
	Run    Run             `json:"run"`
	Needs  map[string]Need `json:"needs,omitempty"`
	// Keep are the matrix instances a re-run of failed jobs keeps from the
	// earlier attempt (not run again).
	Keep []Instance `json:"keep,omitempty"`
	// Job is the compiled job (contract version 2): what the worker runs.
	// Nil from a version 1 server: the worker compiles Run.WorkflowYAML.
	Job *Job `json:"job,omitempty"`
	Grants
	Sandbox
}

// For is a as a worker of contract version v reads it, v between 1 and
// Version (0, an agent older than versioned contracts, is 1): version 1
// has no compiled job (its workers run the workflow file), version 2 and
// later need no workflow file when the compiled job is there.
func (a Assignment) For(v int) *Assignment {
	a.Version = min(max(v, 1), Version)
	switch {
	case a.Version < JobVersion:
		a.Job = nil
	case a.Job != nil:
		a.Run.WorkflowYAML = ""
	}
	return &a
}

// Sandbox is the job's sandbox settings: its repository's.
type Sandbox struct {
	// NetworkPolicy (open, no-private, none) and Runtime (an OCI runtime;
	// "" the engine's default) are applied on the Docker backend; a
	// worker whose backend cannot apply them fails the job.
	NetworkPolicy string `json:"network_policy,omitempty"`
	Runtime       string `json:"runtime,omitempty"`
	// Org and OrgID are the job's organisation: backends that keep
	// tenants apart (kubernetes) place its sandbox by it.
	Org   string `json:"org,omitempty"`
	OrgID int64  `json:"org_id,omitempty"`
	// MaxJobs is the organisation's quota of concurrent jobs (0: none):
	// the kubernetes backend makes it its namespace's ResourceQuota.
	MaxJobs int `json:"max_jobs,omitempty"`
}

// Grants are what the job may use: held in memory only.
type Grants struct {
	// CacheToken is the job's ACTIONS_RUNTIME_TOKEN for the server's cache
	// service (its repository and ref); empty when the server has none or
	// the worker uses the cache directly.
	CacheToken string `json:"cache_token,omitempty"`
	// Secrets and Vars are the job's secrets and vars contexts; every
	// secret value is masked in the job's output.
	Secrets map[string]string `json:"secrets,omitempty"`
	Vars    map[string]string `json:"vars,omitempty"`
	// MaxTimeoutMinutes caps the job's timeout-minutes: its
	// organisation's quota (0: none).
	MaxTimeoutMinutes int `json:"max_timeout_minutes,omitempty"`
}

// Run is the run of an assigned job, as it was planned.
type Run struct {
	ID     int64 `json:"id"`
	Number int64 `json:"number"`
	// Attempt is the run's attempt (github.run_attempt); 0 from an older
	// server counts as 1.
	Attempt    int    `json:"attempt,omitempty"`
	Repository string `json:"repository"`
	Workflow   string `json:"workflow"`
	// WorkflowYAML is the workflow file: what a version 1 agent runs the
	// job from. A version 2 worker reads Assignment.Job instead.
	WorkflowYAML string `json:"workflow_yaml"`
	Event        string `json:"event"`
	// EventJSON is the stored event: {"event": model, "payload": ...}.
	EventJSON json.RawMessage   `json:"event_json"`
	SHA       string            `json:"sha"`
	Ref       string            `json:"ref"`
	Inputs    map[string]string `json:"inputs,omitempty"`
}

// Need is the outcome of a job the assigned job needs.
type Need struct {
	Result  string            `json:"result"`
	Outputs map[string]string `json:"outputs,omitempty"`
}

// Report is the end of an assigned job.
type Report struct {
	// Version is the contract the worker encoded this with.
	Version int               `json:"version,omitempty"`
	Status  string            `json:"status"` // one of the statuses above
	Outputs map[string]string `json:"outputs,omitempty"`
	// Results are the job's instances (one per matrix combination).
	Results []Instance `json:"results,omitempty"`
	Error   string     `json:"error,omitempty"`
	// BuildMS is the life of the job's sandboxes in milliseconds (setup
	// to teardown), metered to the organisation.
	BuildMS int64 `json:"build_ms,omitempty"`
}

// Build is r's sandbox time.
func (r Report) Build() time.Duration { return time.Duration(r.BuildMS) * time.Millisecond }

// Instance is the outcome of one job instance (one matrix combination).
type Instance struct {
	Workflow string            `json:"workflow"`
	Job      string            `json:"job"`
	Name     string            `json:"name"`
	Result   string            `json:"result"`
	Started  time.Time         `json:"started"`
	Duration time.Duration     `json:"duration"` // nanoseconds
	Outputs  map[string]string `json:"outputs,omitempty"`
	Error    string            `json:"error,omitempty"`
	// Reused is set on an instance kept from an earlier attempt.
	Reused bool `json:"reused,omitempty"`
}

// DecodeInstances reads stored instances (a job's results); nil when
// there are none or they are not readable.
func DecodeInstances(b []byte) []Instance {
	if len(b) == 0 {
		return nil
	}
	var out []Instance
	if json.Unmarshal(b, &out) != nil {
		return nil
	}
	return out
}

// EncodeInstances is the stored form of in (nil for none).
func EncodeInstances(in []Instance) []byte {
	if len(in) == 0 {
		return nil
	}
	b, _ := json.Marshal(in) // plain data: cannot fail
	return b
}
