// Package exec runs a plan: the jobs of each workflow as a DAG (a job starts
// the moment its own needs finish), each job in a fresh sandbox from a
// backend, its steps in order with expressions, env, outputs and workflow
// commands. `conveyor run` and the server use this one executor.
package exec

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/artifact"
	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/jobspec"
	"github.com/conveyor-ci/conveyor/internal/logs"
	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/profiles"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// Results of jobs and steps, as GitHub names them: the job contract's
// (package jobspec defines them once).
const (
	Success   = jobspec.Success
	Failure   = jobspec.Failure
	Cancelled = jobspec.Cancelled
	Skipped   = jobspec.Skipped
)

// Options configure an Executor. Everything is passed in; nothing is read
// from the process environment.
type Options struct {
	// Backend makes job sandboxes. Host, when set, is used for jobs whose
	// runs-on maps to "-self-hosted". Containers, when set, runs jobs that
	// have a container: even when their runs-on maps to the host.
	Backend    backend.Backend
	Host       backend.Backend
	Containers backend.Backend
	// Platforms maps runs-on labels to images ("-self-hosted": host).
	Platforms map[string]string
	// Parallel is the most jobs running at once (default: CPUs).
	Parallel int
	// RepoDir is the local repository: checkout source, local actions and
	// reusable workflows are read from it.
	RepoDir string
	// WorkDir is where job directories are made (default: a temp dir).
	WorkDir string
	// KeepJobDirs leaves job directories behind (for debugging).
	KeepJobDirs bool

	Event    Event
	Secrets  map[string]string
	Vars     map[string]string
	Env      map[string]string // added to every job's env (like act --env)
	Inputs   map[string]string
	Reporter Reporter
	Masker   *logs.Masker
	// Resources are per-job sandbox limits.
	Resources backend.Resources
	// Network is every job's network policy ("": open).
	Network backend.NetworkPolicy
	// Runtime is the OCI runtime of every job's containers ("": the
	// engine's default), e.g. runsc.
	Runtime string
	// Profiles are the sandbox profiles of runs-on labels (the label
	// config; nil: none): a job gets the merge of its labels' profiles.
	// A label's runtime and Runtime both set and different fail the job.
	Profiles *profiles.Config
	// Tenant is whom the jobs run for (a server's job; zero otherwise).
	Tenant backend.Tenant
	// Keep are matrix instances of an earlier attempt kept by a re-run of
	// failed jobs: an instance with the same name is not run again; its
	// earlier result and outputs count, marked Reused.
	Keep []*JobResult
	// Artifacts keeps the run's artifacts for the native
	// actions/upload-artifact and actions/download-artifact (nil: those
	// steps fail). Every job of the run shares it.
	Artifacts artifact.Store
	// Cache serves the native actions/cache steps and GitHub's cache
	// protocol to jobs (zero: neither).
	Cache Cache
	// MatrixFilter keeps only the matrix legs whose values match (name to
	// value as text), like act's --matrix; a job whose matrix lacks a
	// name is not filtered by it.
	MatrixFilter map[string]string
	// ParseWorkflow reads a reusable workflow file (path relative to
	// RepoDir). Default: read and parse with the workflow package.
	ParseWorkflow func(path string) (*workflow.Workflow, error)
	// Actions fetches remote actions and reusable workflows (nil: a job
	// that uses one fails before its first step, saying so).
	Actions ActionResolver
	// MaxTimeout, when set, caps every job's timeout-minutes (and the
	// 360-minute default); a capped job says so in its log.
	MaxTimeout time.Duration
}

// Event is what triggered the run, and the repository facts GitHub puts in
// the github context.
type Event struct {
	Name       string
	Payload    map[string]any
	SHA        string
	Ref        string
	Repository string // owner/name
	Actor      string
	RunID      string
	RunNumber  int
	// RunAttempt counts re-runs of the run, from 1 (0 counts as 1).
	RunAttempt int
	ServerURL  string
	HeadRef    string
	BaseRef    string
}

// JobResult is the outcome of one job instance (one matrix combination).
type JobResult struct {
	Workflow string            `json:"workflow"`
	JobID    string            `json:"job"`
	Name     string            `json:"name"`
	Result   string            `json:"result"`
	Started  time.Time         `json:"started"`
	Duration time.Duration     `json:"duration"`
	Outputs  map[string]string `json:"outputs,omitempty"`
	Error    string            `json:"error,omitempty"`
	// Reused is set on an instance kept from an earlier attempt.
	Reused bool `json:"reused,omitempty"`
}

// Result is the outcome of a plan.
type Result struct {
	Jobs      []*JobResult `json:"jobs"`
	Summaries []Summary    `json:"summaries,omitempty"`
}

// Summary is a job's GITHUB_STEP_SUMMARY content.
type Summary struct {
	Job     string `json:"job"`
	Content string `json:"content"`
}

// Failed reports whether any job failed or was cancelled.
func (r *Result) Failed() bool {
	for _, j := range r.Jobs {
		if j.Result == Failure || j.Result == Cancelled {
			return true
		}
	}
	return false
}

// Executor runs plans.
type Executor struct {
	opts  Options
	lines LinesReporter // opts.Reporter, when it has the ability
	sem   chan struct{}

	mu     sync.Mutex
	result Result
	jobSeq int
	// token makes sandbox names unique across runs on one engine.
	token string
	// teardowns are the sandboxes being removed (teardownLater).
	teardowns sync.WaitGroup
	// nodes are the node programs each sandbox has (node.go).
	nodes nodeCache
	// sandboxTime adds up each sandbox's life, from the start of its
	// setup to the end of its teardown (under mu).
	sandboxTime time.Duration
}

// SandboxTime is the time job sandboxes have existed so far, each from
// the start of its setup to the end of its teardown: what a server meters
// as build time. Teardowns still running are not in it yet (Run and
// RunJob wait for them).
func (e *Executor) SandboxTime() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sandboxTime
}

func (e *Executor) addSandboxTime(since time.Time) {
	d := time.Since(since)
	e.mu.Lock()
	e.sandboxTime += d
	e.mu.Unlock()
}

// New returns an Executor. Options are copied.
func New(opts Options) *Executor {
	if opts.Parallel <= 0 {
		opts.Parallel = runtime.NumCPU()
	}
	if opts.Masker == nil {
		opts.Masker = logs.NewMasker()
	}
	if opts.Reporter == nil {
		opts.Reporter = ReporterFunc(func(Event2) {})
	}
	for _, s := range opts.Secrets {
		opts.Masker.Add(s)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	lr, _ := opts.Reporter.(LinesReporter)
	return &Executor{opts: opts, lines: lr, sem: make(chan struct{}, opts.Parallel), token: hex.EncodeToString(b[:])}
}

// Run executes every workflow of the plan (workflows in parallel, jobs as a
// DAG) and returns when all are done. When ctx ends, running steps are
// killed, cleanup steps (if: always() / cancelled()) still run with a short
// deadline, and every sandbox is torn down before Run returns.
func (e *Executor) Run(ctx context.Context, p *plan.Plan) (*Result, error) {
	if e.opts.Backend == nil {
		return nil, errs.E("exec", errs.Invalid, "no backend")
	}
	workDir := e.opts.WorkDir
	if workDir == "" {
		d, err := os.MkdirTemp("", "conveyor-run-")
		if err != nil {
			return nil, errs.Wrap("exec", errs.Unavailable, err)
		}
		workDir = d
		if !e.opts.KeepJobDirs {
			defer os.RemoveAll(d)
		}
	}
	var wg sync.WaitGroup
	for _, pw := range p.Workflows {
		wg.Add(1)
		go func(pw *plan.Workflow) {
			defer wg.Done()
			e.runWorkflow(ctx, workDir, pw, nil)
		}(pw)
	}
	wg.Wait()
	e.teardowns.Wait() // each bounded by cleanupTimeout
	e.mu.Lock()
	defer e.mu.Unlock()
	res := e.result
	return &res, nil
}

// jobNode is a job id of a workflow: all its matrix instances.
type jobNode struct {
	pj      *plan.Job
	done    chan struct{}
	result  string
	outputs map[string]any
}

// callInfo is set when a workflow runs as a reusable workflow.
type callInfo struct {
	prefix  string // "caller / "
	inputs  map[string]any
	secrets map[string]string
	parent  *callInfo // the caller's own call, when it is called too
}

// runWorkflow runs the jobs of one workflow as a DAG and returns the nodes
// (for reusable workflows, whose outputs read the jobs context).
func (e *Executor) runWorkflow(ctx context.Context, workDir string, pw *plan.Workflow, call *callInfo) map[string]*jobNode {
	nodes := map[string]*jobNode{}
	for _, pj := range pw.Jobs {
		nodes[pj.ID] = &jobNode{pj: pj, done: make(chan struct{})}
	}
	if _, err := pw.Order(); err != nil {
		for _, n := range nodes {
			n.result = Failure
			close(n.done)
		}
		e.report(Event2{Type: RunError, Text: pw.File + ": " + err.Error()})
		return nodes
	}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func(n *jobNode) {
			defer wg.Done()
			defer close(n.done)
			for _, need := range n.pj.Needs {
				if d, ok := nodes[need]; ok {
					<-d.done // needs always finish: every node closes done
				}
			}
			e.runJobNode(ctx, workDir, pw, n, nodes, call)
		}(n)
	}
	wg.Wait()
	return nodes
}

func (e *Executor) report(ev Event2) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	e.opts.Reporter.Report(ev)
}

// reportLines reports lines (masked) as Output events like ev.
func (e *Executor) reportLines(ev Event2, lines []string) {
	if len(lines) == 0 {
		return
	}
	ev.Type = Output
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if e.lines != nil {
		e.lines.ReportLines(ev, lines)
		return
	}
	for _, l := range lines {
		ev.Text = l
		e.opts.Reporter.Report(ev)
	}
}

func (e *Executor) addResult(r *JobResult) {
	e.mu.Lock()
	e.result.Jobs = append(e.result.Jobs, r)
	e.mu.Unlock()
}

func (e *Executor) addSummary(job, content string) {
	e.mu.Lock()
	e.result.Summaries = append(e.result.Summaries, Summary{Job: job, Content: content})
	e.mu.Unlock()
}

func (e *Executor) nextJobSeq() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.jobSeq++
	return e.jobSeq
}
