// Package fake is a scripted in-memory backend for tests of the executor:
// the test decides what each process prints and returns, and inspects
// every call afterwards.
package fake

import (
	"context"
	"io"
	"os"
	"sync"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Script decides the outcome of one Exec. job is the sandbox's job.
// Returning ctx.Err() from a Script that waits on ctx models a cancelled step.
type Script func(ctx context.Context, job *backend.JobSpec, p *backend.Process) (output string, exitCode int, err error)

// Call is one recorded call.
type Call struct {
	Op      string // "setup", "exec", "teardown"
	JobID   string
	Process *backend.Process // exec only
}

// Backend is a scripted backend. The zero value runs every process
// successfully with no output.
type Backend struct {
	// Script runs each Exec; nil: exit 0, no output.
	Script Script
	// SetupErr, when it returns an error, makes Setup fail for that job.
	SetupErr func(job *backend.JobSpec) error
	// BeforeTeardown, when set, runs at the start of each Teardown (a test
	// may block it to see what happens meanwhile).
	BeforeTeardown func(job *backend.JobSpec)

	mu        sync.Mutex
	calls     []Call
	teardowns map[string]int
	live      map[string]bool
}

var _ backend.Backend = (*Backend)(nil)

// New returns a backend running script.
func New(script Script) *Backend { return &Backend{Script: script} }

// Name implements backend.Backend.
func (b *Backend) Name() string { return "fake" }

func (b *Backend) record(c Call) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, c)
}

// Setup implements backend.Backend. If job.JobDir is empty, a temporary
// directory is made (and removed by Teardown).
func (b *Backend) Setup(ctx context.Context, job *backend.JobSpec, _ io.Writer) (backend.Sandbox, error) {
	b.record(Call{Op: "setup", JobID: job.ID})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if b.SetupErr != nil {
		if err := b.SetupErr(job); err != nil {
			return nil, err
		}
	}
	dir, owned := job.JobDir, false
	if dir == "" {
		d, err := os.MkdirTemp("", "conveyor-fake-")
		if err != nil {
			return nil, errs.Wrap("fake: setup", errs.Other, err)
		}
		dir, owned = d, true
	}
	b.mu.Lock()
	if b.live == nil {
		b.live = map[string]bool{}
	}
	b.live[job.ID] = true
	b.mu.Unlock()
	j := *job
	return &Sandbox{b: b, job: &j, dir: dir, ownDir: owned}, nil
}

// Calls returns every call so far, in order.
func (b *Backend) Calls() []Call {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Call(nil), b.calls...)
}

// Execs returns the processes run for a job, in order.
func (b *Backend) Execs(jobID string) []*backend.Process {
	var ps []*backend.Process
	for _, c := range b.Calls() {
		if c.Op == "exec" && c.JobID == jobID {
			ps = append(ps, c.Process)
		}
	}
	return ps
}

// Teardowns returns how many times a job's sandbox was torn down.
func (b *Backend) Teardowns(jobID string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.teardowns[jobID]
}

// Live returns the IDs of jobs set up and not torn down yet.
func (b *Backend) Live() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ids []string
	for id, ok := range b.live {
		if ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// Sandbox is one fake job.
type Sandbox struct {
	b      *Backend
	job    *backend.JobSpec
	dir    string
	ownDir bool
}

var (
	_ backend.Sandbox   = (*Sandbox)(nil)
	_ backend.Describer = (*Sandbox)(nil)
)

// Dirs implements backend.Sandbox: the same directory on both sides.
func (s *Sandbox) Dirs() backend.Dirs { return backend.Dirs{Host: s.dir, Sandbox: s.dir} }

// Describe implements backend.Describer.
func (s *Sandbox) Describe() string { return "fake sandbox" }

// Exec implements backend.Sandbox by running the script.
func (s *Sandbox) Exec(ctx context.Context, p *backend.Process, out io.Writer) (int, error) {
	cp := *p
	s.b.record(Call{Op: "exec", JobID: s.job.ID, Process: &cp})
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	if s.b.Script == nil {
		return 0, nil
	}
	text, code, err := s.b.Script(ctx, s.job, &cp)
	if text != "" && out != nil {
		if _, werr := io.WriteString(out, text); werr != nil && err == nil {
			err = werr
		}
	}
	return code, err
}

// Teardown implements backend.Sandbox; every call is counted.
func (s *Sandbox) Teardown(context.Context) error {
	if s.b.BeforeTeardown != nil {
		s.b.BeforeTeardown(s.job)
	}
	s.b.mu.Lock()
	if s.b.teardowns == nil {
		s.b.teardowns = map[string]int{}
	}
	s.b.teardowns[s.job.ID]++
	first := s.b.live[s.job.ID]
	s.b.live[s.job.ID] = false
	s.b.calls = append(s.b.calls, Call{Op: "teardown", JobID: s.job.ID})
	s.b.mu.Unlock()
	if first && s.ownDir {
		_ = os.RemoveAll(s.dir)
	}
	return nil
}
