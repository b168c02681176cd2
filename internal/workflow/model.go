// Package workflow holds the model of GitHub-Actions workflow and action files
// and their parser. Every node keeps its line:column. The package does no I/O:
// it takes bytes and a file name.
//
// Values that may hold ${{ }} expressions are kept as written (strings);
// the executor evaluates them when their contexts exist.
package workflow

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Pos is a 1-based line and column in a file.
type Pos struct {
	Line int `json:"line"`
	Col  int `json:"col"`
}

func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

// KV is one entry of a mapping (env, with, outputs, secrets) in file order.
// Value is the scalar as written ("true", "3", "${{ x }}"); Node is the YAML
// node for callers that need its type (typed inputs of reusable workflows).
type KV struct {
	Key   string     `json:"key"`
	Value string     `json:"value"`
	Pos   Pos        `json:"-"`
	Node  *yaml.Node `json:"-"`
}

// Workflow is one workflow file.
type Workflow struct {
	File        string       `json:"file"`
	Name        string       `json:"name,omitempty"`
	RunName     string       `json:"run-name,omitempty"`
	On          []*Trigger   `json:"on"`
	Env         []KV         `json:"env,omitempty"`
	Defaults    *Defaults    `json:"defaults,omitempty"`
	Permissions *Permissions `json:"permissions,omitempty"`
	Concurrency *Concurrency `json:"concurrency,omitempty"`
	Jobs        []*Job       `json:"jobs"`
	// Dialect is "" for GitHub Actions, "serverless-cd" for a file with a
	// top-level steps: list (turned into one job with id "default").
	Dialect string `json:"dialect,omitempty"`
	// Node is the root mapping of the file as parsed, for lint (positions
	// of every value). Nil when the file could not be read.
	Node *yaml.Node `json:"-"`
}

// Job returns the job with the given id, or nil.
func (w *Workflow) Job(id string) *Job {
	for _, j := range w.Jobs {
		if j.ID == id {
			return j
		}
	}
	return nil
}

// Trigger returns the trigger for an event name, or nil.
func (w *Workflow) Trigger(event string) *Trigger {
	for _, t := range w.On {
		if t.Event == event {
			return t
		}
	}
	return nil
}

// Trigger is one event of on: with its filters.
type Trigger struct {
	Event          string   `json:"event"`
	Types          []string `json:"types,omitempty"`
	Branches       []string `json:"branches,omitempty"`
	BranchesIgnore []string `json:"branches-ignore,omitempty"`
	Tags           []string `json:"tags,omitempty"`
	TagsIgnore     []string `json:"tags-ignore,omitempty"`
	Paths          []string `json:"paths,omitempty"`
	PathsIgnore    []string `json:"paths-ignore,omitempty"`
	Workflows      []string `json:"workflows,omitempty"` // workflow_run
	Cron           []string `json:"cron,omitempty"`      // schedule
	// Inputs of workflow_dispatch and workflow_call, in file order.
	Inputs []*Input `json:"inputs,omitempty"`
	// Outputs and Secrets of workflow_call.
	Outputs []*Output `json:"outputs,omitempty"`
	Secrets []*Secret `json:"secrets,omitempty"`
	// Filter is Conveyor's extension: a CEL expression over {headers, body}.
	Filter    string `json:"filter,omitempty"`
	FilterPos Pos    `json:"-"`
	Pos       Pos    `json:"-"`
}

// Input is an input of workflow_dispatch, workflow_call or an action.
type Input struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Type        string   `json:"type,omitempty"` // string, boolean, number, choice, environment
	Required    bool     `json:"required,omitempty"`
	Default     string   `json:"default,omitempty"` // as written; may hold an expression
	HasDefault  bool     `json:"-"`
	Options     []string `json:"options,omitempty"`
	Pos         Pos      `json:"-"`
}

// Output is an output of a reusable workflow or an action.
type Output struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Value       string `json:"value,omitempty"`
	Pos         Pos    `json:"-"`
}

// Secret is a secret declared by workflow_call.
type Secret struct {
	Name     string `json:"name"`
	Required bool   `json:"required,omitempty"`
	Pos      Pos    `json:"-"`
}

// Defaults is defaults.run.
type Defaults struct {
	Shell            string `json:"shell,omitempty"`
	WorkingDirectory string `json:"working-directory,omitempty"`
}

// Permissions is permissions: either one level for all scopes or per scope.
type Permissions struct {
	All    string            `json:"all,omitempty"` // read-all, write-all, or {} as ""
	Scopes map[string]string `json:"scopes,omitempty"`
}

// Concurrency is concurrency: (a group string, or group + cancel-in-progress).
type Concurrency struct {
	Group            string `json:"group"`
	CancelInProgress string `json:"cancel-in-progress,omitempty"` // "true", "false" or an expression
}

// RunsOn is runs-on: labels (string or list) and/or a group.
type RunsOn struct {
	Labels []string `json:"labels,omitempty"` // each may be an expression
	Group  string   `json:"group,omitempty"`
	Pos    Pos      `json:"-"`
}

// Strategy is strategy:.
type Strategy struct {
	// Matrix is the matrix as written: a mapping (dimensions, include,
	// exclude; values may hold expressions) or a scalar expression. Nil when
	// absent. The executor expands it when its contexts exist.
	Matrix      *yaml.Node `json:"-"`
	FailFast    string     `json:"fail-fast,omitempty"`    // "" = true
	MaxParallel string     `json:"max-parallel,omitempty"` // "" = no limit
	Pos         Pos        `json:"-"`
}

// Container is a job's container: or one of its services:.
type Container struct {
	Image       string       `json:"image"`
	Env         []KV         `json:"env,omitempty"`
	Options     string       `json:"options,omitempty"`
	Volumes     []string     `json:"volumes,omitempty"`
	Ports       []string     `json:"ports,omitempty"`
	Credentials *Credentials `json:"credentials,omitempty"`
	Pos         Pos          `json:"-"`
}

// Credentials of a private registry image.
type Credentials struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// Service is one entry of services:.
type Service struct {
	Name string `json:"name"`
	Container
}

// Job is one entry of jobs:.
type Job struct {
	ID              string       `json:"id"`
	Name            string       `json:"name,omitempty"`
	Needs           []string     `json:"needs,omitempty"`
	NeedsPos        []Pos        `json:"-"`
	If              string       `json:"if,omitempty"`
	IfPos           Pos          `json:"-"`
	RunsOn          *RunsOn      `json:"runs-on,omitempty"`
	Environment     string       `json:"environment,omitempty"` // name, may be an expression
	EnvironmentURL  string       `json:"environment-url,omitempty"`
	Env             []KV         `json:"env,omitempty"`
	Defaults        *Defaults    `json:"defaults,omitempty"`
	Outputs         []KV         `json:"outputs,omitempty"`
	Strategy        *Strategy    `json:"strategy,omitempty"`
	TimeoutMinutes  string       `json:"timeout-minutes,omitempty"`   // number or expression; "" = 360
	ContinueOnError string       `json:"continue-on-error,omitempty"` // bool or expression
	Container       *Container   `json:"container,omitempty"`
	Services        []*Service   `json:"services,omitempty"`
	Permissions     *Permissions `json:"permissions,omitempty"`
	Concurrency     *Concurrency `json:"concurrency,omitempty"`
	Steps           []*Step      `json:"steps,omitempty"`
	// Uses names a reusable workflow (./.github/workflows/x.yml or
	// owner/repo/path@ref); then With, Secrets and SecretsInherit apply.
	Uses           string `json:"uses,omitempty"`
	With           []KV   `json:"with,omitempty"`
	Secrets        []KV   `json:"secrets,omitempty"`
	SecretsInherit bool   `json:"secrets-inherit,omitempty"`
	UsesPos        Pos    `json:"-"`
	Pos            Pos    `json:"-"`
}

// Step is one entry of steps: (of a job or of a composite action).
type Step struct {
	ID               string `json:"id,omitempty"`
	Name             string `json:"name,omitempty"`
	If               string `json:"if,omitempty"`
	IfPos            Pos    `json:"-"`
	Run              string `json:"run,omitempty"`
	RunPos           Pos    `json:"-"`
	Uses             string `json:"uses,omitempty"`
	UsesPos          Pos    `json:"-"`
	Shell            string `json:"shell,omitempty"`
	WorkingDirectory string `json:"working-directory,omitempty"`
	Env              []KV   `json:"env,omitempty"`
	With             []KV   `json:"with,omitempty"`
	ContinueOnError  string `json:"continue-on-error,omitempty"` // bool or expression
	TimeoutMinutes   string `json:"timeout-minutes,omitempty"`
	// Background (bool or expression) runs the step in the background;
	// Control is "wait", "wait-all", "cancel" or "parallel" for the steps
	// that manage background steps; Parallel holds a parallel step's steps.
	Background string  `json:"background,omitempty"`
	Control    string  `json:"control,omitempty"`
	Parallel   []*Step `json:"parallel,omitempty"`
	Pos        Pos     `json:"-"`
}

// Action is an action.yml / action.yaml file.
type Action struct {
	File        string    `json:"file"`
	Name        string    `json:"name,omitempty"`
	Description string    `json:"description,omitempty"`
	Inputs      []*Input  `json:"inputs,omitempty"`
	Outputs     []*Output `json:"outputs,omitempty"`
	Runs        Runs      `json:"runs"`
	// Node is the root mapping of the file as parsed; nil when unreadable.
	Node *yaml.Node `json:"-"`
}

// Runs is an action's runs: section.
type Runs struct {
	Using string `json:"using"` // composite, docker, node12, node16, node20, node24
	// composite
	Steps []*Step `json:"steps,omitempty"`
	// docker: Image is "Dockerfile" (a path) or "docker://image".
	Image          string   `json:"image,omitempty"`
	Entrypoint     string   `json:"entrypoint,omitempty"`
	PreEntrypoint  string   `json:"pre-entrypoint,omitempty"`
	PostEntrypoint string   `json:"post-entrypoint,omitempty"`
	Args           []string `json:"args,omitempty"`
	Env            []KV     `json:"env,omitempty"`
	// node
	Main   string `json:"main,omitempty"`
	Pre    string `json:"pre,omitempty"`
	PreIf  string `json:"pre-if,omitempty"`
	Post   string `json:"post,omitempty"`
	PostIf string `json:"post-if,omitempty"`
}

// Problem is a problem found in a file, with its position.
type Problem struct {
	File    string `json:"file"`
	Pos     Pos    `json:"pos"`
	Message string `json:"message"`
}

func (p *Problem) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Pos.Line, p.Pos.Col, p.Message)
}

// Problems is a list of problems; as an error it prints one per line.
type Problems []*Problem

func (ps Problems) Error() string {
	s := ""
	for i, p := range ps {
		if i > 0 {
			s += "\n"
		}
		s += p.Error()
	}
	return s
}
