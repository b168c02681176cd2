package jobspec

import (
	"encoding/json"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// JobVersion is the oldest contract version whose compiled jobs (Job)
// this build reads: compiled jobs exist since version 2.
const JobVersion = 2

// Job is a compiled job: everything an executor needs to run one job of
// a workflow (every matrix leg of it, or the workflow it calls), as plain
// data. The server compiles it once, when it creates the run, and stores
// it with the job; a worker builds the executor's job from it and never
// reads the workflow file. Values that may hold ${{ }} are kept as
// written: they are evaluated when the job runs, where their contexts
// exist. Positions (line:column in Workflow.File) are kept for error
// messages.
type Job struct {
	// Version is the contract version the job was compiled under.
	Version  int      `json:"version"`
	Workflow Workflow `json:"workflow"`
	ID       string   `json:"id"`
	Name     string   `json:"name,omitempty"`
	Pos      Pos      `json:"pos"`
	Needs    []Ref    `json:"needs,omitempty"`
	If       Text     `json:"if,omitzero"`
	Env      []KV     `json:"env,omitempty"`
	Outputs  []KV     `json:"outputs,omitempty"`
	Steps    []Step   `json:"steps,omitempty"`
	// Call is set on a job that calls a reusable workflow (uses:).
	Call *Call `json:"call,omitempty"`
	Settings
}

// Settings are a job's keys that shape where and how it runs.
type Settings struct {
	RunsOn          *RunsOn      `json:"runs-on,omitempty"`
	Environment     string       `json:"environment,omitempty"`
	EnvironmentURL  string       `json:"environment-url,omitempty"`
	Defaults        *Defaults    `json:"defaults,omitempty"`
	Strategy        *Strategy    `json:"strategy,omitempty"`
	TimeoutMinutes  string       `json:"timeout-minutes,omitempty"`
	ContinueOnError string       `json:"continue-on-error,omitempty"`
	Container       *Container   `json:"container,omitempty"`
	Services        []Service    `json:"services,omitempty"`
	Permissions     *Permissions `json:"permissions,omitempty"`
	Concurrency     *Concurrency `json:"concurrency,omitempty"`
}

// Workflow is what a job reads of its workflow file's top level.
type Workflow struct {
	File        string       `json:"file"`
	Name        string       `json:"name,omitempty"`
	Env         []KV         `json:"env,omitempty"`
	Defaults    *Defaults    `json:"defaults,omitempty"`
	Permissions *Permissions `json:"permissions,omitempty"`
	Concurrency *Concurrency `json:"concurrency,omitempty"`
	// Trigger is the on: entry of the event the job was compiled for (the
	// types and defaults of its inputs); nil when on: has none.
	Trigger *Trigger `json:"trigger,omitempty"`
}

// Trigger is one event of on: as a job sees it.
type Trigger struct {
	Event  string  `json:"event"`
	Inputs []Input `json:"inputs,omitempty"`
}

// Input is an input of workflow_dispatch or workflow_call.
type Input struct {
	Name     string `json:"name"`
	Type     string `json:"type,omitempty"`
	Required bool   `json:"required,omitempty"`
	// Default is as written (it may hold an expression); HasDefault says
	// there is one (an empty default is one).
	Default    string   `json:"default,omitempty"`
	HasDefault bool     `json:"has-default,omitempty"`
	Options    []string `json:"options,omitempty"`
	Pos        Pos      `json:"pos,omitzero"`
}

// Pos is a 1-based line and column in the workflow file.
type Pos struct {
	Line int `json:"line"`
	Col  int `json:"col"`
}

// Text is a value as written, with where it was written.
type Text struct {
	Text string `json:"text"`
	Pos  Pos    `json:"pos,omitzero"`
}

// Ref is a job id as needs: names it.
type Ref struct {
	ID  string `json:"id"`
	Pos Pos    `json:"pos,omitzero"`
}

// KV is one entry of a mapping (env, with, outputs, secrets) in file
// order; Value is the scalar as written.
type KV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	Pos   Pos    `json:"pos,omitzero"`
}

// Step is one entry of a job's steps:.
type Step struct {
	ID               string `json:"id,omitempty"`
	Name             string `json:"name,omitempty"`
	Pos              Pos    `json:"pos"`
	If               Text   `json:"if,omitzero"`
	Run              Text   `json:"run,omitzero"`
	Uses             Text   `json:"uses,omitzero"`
	Shell            string `json:"shell,omitempty"`
	WorkingDirectory string `json:"working-directory,omitempty"`
	Env              []KV   `json:"env,omitempty"`
	With             []KV   `json:"with,omitempty"`
	ContinueOnError  string `json:"continue-on-error,omitempty"`
	TimeoutMinutes   string `json:"timeout-minutes,omitempty"`
}

// Call is a job's call of a reusable workflow.
type Call struct {
	Uses           Text `json:"uses"`
	With           []KV `json:"with,omitempty"`
	Secrets        []KV `json:"secrets,omitempty"`
	SecretsInherit bool `json:"secrets-inherit,omitempty"`
}

// RunsOn is runs-on: labels (each may be an expression) and a group.
type RunsOn struct {
	Labels []string `json:"labels,omitempty"`
	Group  string   `json:"group,omitempty"`
	Pos    Pos      `json:"pos,omitzero"`
}

// Defaults is defaults.run.
type Defaults struct {
	Shell            string `json:"shell,omitempty"`
	WorkingDirectory string `json:"working-directory,omitempty"`
}

// Strategy is strategy:. Matrix is the matrix as written (nil: none): it
// is expanded when the job runs, as it may read needs and inputs.
type Strategy struct {
	Matrix      *Node  `json:"matrix,omitempty"`
	FailFast    string `json:"fail-fast,omitempty"`
	MaxParallel string `json:"max-parallel,omitempty"`
	Pos         Pos    `json:"pos,omitzero"`
}

// Node kinds.
const (
	Scalar   = "scalar"
	Sequence = "sequence"
	Mapping  = "mapping"
)

// Node is a YAML value as written: a scalar with its tag (!!str, !!int,
// !!bool, !!float, !!null), or a sequence, or a mapping (Content holds
// key, value, key, value...). Aliases are resolved when it is compiled.
type Node struct {
	Kind    string `json:"kind"`
	Tag     string `json:"tag,omitempty"`
	Value   string `json:"value,omitempty"`
	Content []Node `json:"content,omitempty"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
}

// Container is a job's container: or one of its services:.
type Container struct {
	Image       string       `json:"image"`
	Env         []KV         `json:"env,omitempty"`
	Options     string       `json:"options,omitempty"`
	Volumes     []string     `json:"volumes,omitempty"`
	Ports       []string     `json:"ports,omitempty"`
	Credentials *Credentials `json:"credentials,omitempty"`
	Pos         Pos          `json:"pos,omitzero"`
}

// Credentials of a private registry image, as written (expressions such
// as ${{ secrets.X }}, never their values).
type Credentials struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// Service is one entry of services:.
type Service struct {
	Name string `json:"name"`
	Container
}

// Permissions is permissions: one level for all scopes or per scope.
type Permissions struct {
	All    string            `json:"all,omitempty"`
	Scopes map[string]string `json:"scopes"` // {} (none) is not null (not given)
}

// Concurrency is concurrency: group and cancel-in-progress as written.
type Concurrency struct {
	Group            string `json:"group"`
	CancelInProgress string `json:"cancel-in-progress,omitempty"`
}

// EncodeJob is the stored and wire form of j.
func EncodeJob(j *Job) ([]byte, error) {
	b, err := json.Marshal(j)
	if err != nil {
		return nil, errs.Wrap("compiled job", errs.Invalid, err)
	}
	return b, nil
}

// DecodeJob reads a compiled job: an Invalid error when it is not one or
// was compiled under a contract version this build does not read (the
// caller compiles the job again from its workflow file).
func DecodeJob(b []byte) (*Job, error) {
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, errs.Wrap("compiled job", errs.Invalid, err)
	}
	if j.Version < JobVersion || j.Version > Version {
		return nil, errs.E("compiled job", errs.Invalid, "compiled under job contract version %d, this build reads %d to %d",
			j.Version, JobVersion, Version)
	}
	if j.ID == "" {
		return nil, errs.E("compiled job", errs.Invalid, "the job has no id")
	}
	return &j, nil
}
