package jobrun

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/event"
	"github.com/conveyor-ci/conveyor/internal/exec"
	"github.com/conveyor-ci/conveyor/internal/jobspec"
)

// chunks is a ChunkWriter that keeps what it is given.
type chunks struct {
	mu  sync.Mutex
	got []string
}

func (c *chunks) AppendLog(_ context.Context, _ int64, data []byte) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, string(data))
	return int64(len(c.got)), nil
}

func (c *chunks) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

func (c *chunks) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.got, "")
}

const flow = `on: push
jobs:
  dep:
    runs-on: ubuntu-latest
    steps:
      - run: echo never here
  build:
    needs: dep
    runs-on: ubuntu-latest
    outputs:
      v: ${{ steps.s.outputs.v }}
    steps:
      - uses: actions/checkout@v4
      - id: s
        run: |
          echo "needs.dep=${{ needs.dep.result }}/${{ needs.dep.outputs.x }} sha=${{ github.sha }} repo=${{ github.repository }}"
          cat README.md
          echo "v=out-1" >> "$GITHUB_OUTPUT"
`

func spec(t *testing.T, yaml string) *jobspec.Assignment {
	t.Helper()
	ev, _ := json.Marshal(RunEvent{Event: &event.Event{Name: "push", Repository: event.Repository{FullName: "octo/repo"}},
		Payload: map[string]any{}})
	return &jobspec.Assignment{JobID: 7, Key: "build", Name: "build",
		Run: jobspec.Run{ID: 3, Number: 1, Workflow: ".github/workflows/ci.yml", WorkflowYAML: yaml, Event: "push",
			EventJSON: ev, SHA: "abc123", Ref: "refs/heads/main"},
		Needs: map[string]jobspec.Need{"dep": {Result: "success", Outputs: map[string]string{"x": "y"}}}}
}

func TestRun(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "README.md"), []byte("from the source dir\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := host.New(host.Options{})
	env := Env{Backend: h, Host: h, Platforms: map[string]string{"ubuntu-latest": "-self-hosted"}}
	var w chunks
	log := NewLog(&w, 7, "build", nil)
	first := make(chan struct{})
	log.OnFirstStep(func() { close(first) })
	c := Run(context.Background(), env, spec(t, flow), src, filepath.Join(t.TempDir(), "work"), log)
	log.Close()
	if c.Status != jobspec.Success || c.Outputs["v"] != "out-1" {
		t.Fatalf("completion: %+v\nlog:\n%s", c, w.text())
	}
	for _, want := range []string{"needs.dep=success/y sha=abc123 repo=octo/repo", "from the source dir", "Job build: success"} {
		if !strings.Contains(w.text(), want) {
			t.Errorf("log lacks %q:\n%s", want, w.text())
		}
	}
	select {
	case <-first:
	default:
		t.Error("OnFirstStep was not called")
	}

	cctx, cancel := context.WithCancelCause(context.Background())
	cancel(errs.E("test", errs.Canceled, "the run was cancelled"))
	if c := Run(cctx, env, spec(t, flow), src, t.TempDir(), NewLog(&chunks{}, 7, "build", nil)); c.Status != jobspec.Cancelled {
		t.Errorf("cancelled run: %+v", c)
	}
}

func TestRunFailsWithAReason(t *testing.T) {
	h := host.New(host.Options{})
	var w chunks
	log := NewLog(&w, 7, "build", nil)
	c := Run(context.Background(), Env{Backend: h}, spec(t, "jobs: [not a map"), t.TempDir(), t.TempDir(), log)
	log.Close()
	if c.Status != jobspec.Error || !strings.Contains(c.Error, "invalid workflow") || !strings.Contains(w.text(), "Error: job: invalid workflow") {
		t.Errorf("completion %+v, log %q", c, w.text())
	}
}

func TestLogChunks(t *testing.T) {
	var w chunks
	l := NewLog(&w, 1, "job", nil)
	l.Report(exec.Event2{Type: exec.Output, Job: "job", Text: "one"})
	l.Report(exec.Event2{Type: exec.Output, Job: "job (linux)", Text: "two"})
	time.Sleep(3 * ChunkDelay)
	if got := w.text(); got != "one\n[job (linux)] two\n" {
		t.Errorf("after the delay: %q", got)
	}
	big := strings.Repeat("x", ChunkBytes)
	l.Line(big)
	deadline := time.Now().Add(ChunkDelay / 2) // not the chunk delay: at once
	for w.count() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := w.count(); n != 2 {
		t.Errorf("a full buffer is written at once: %d chunks", n)
	}
	l.Line("last")
	l.Close()
	l.Close()
	l.Line("dropped")
	if !strings.HasSuffix(w.text(), "last\n") {
		t.Errorf("close: %q", w.text()[len(w.text())-20:])
	}
}

// A panic while a job is prepared fails that job with the reason.
func TestRunRecoversAPanic(t *testing.T) {
	var w chunks
	log := NewLog(&w, 7, "build", nil)
	c := Run(context.Background(), Env{Backend: host.New(host.Options{})}, nil, t.TempDir(), t.TempDir(), log)
	log.Close()
	if c.Status != jobspec.Error || !strings.Contains(c.Error, "internal error in Conveyor") || !strings.Contains(c.Error, "nil pointer") ||
		!strings.Contains(w.text(), "internal error in Conveyor") {
		t.Errorf("completion %+v, log %q", c, w.text())
	}
}

// blockedWriter holds every write until release is closed.
type blockedWriter struct {
	chunks
	release chan struct{}
}

func (b *blockedWriter) AppendLog(ctx context.Context, id int64, data []byte) (int64, error) {
	<-b.release
	return b.chunks.AppendLog(ctx, id, data)
}

// A store that does not answer does not hold the job's output up until
// MaxPending bytes wait; then it does (back-pressure), and every line is
// written once, in order, when it answers.
func TestLogWritesBesideTheJob(t *testing.T) {
	w := &blockedWriter{release: make(chan struct{})}
	l := NewLog(w, 1, "job", nil)
	line := strings.Repeat("z", 1023)
	// A write may take up to MaxPending when it starts late: twice that
	// is sure to be held.
	n := 2*MaxPending/1024 + 64
	wrote := make(chan int, 1)
	go func() {
		for i := range n {
			l.Line(fmt.Sprintf("%05d%s", i, line[5:]))
		}
		wrote <- n
	}()
	select {
	case <-wrote:
		t.Fatal("over MaxPending bytes were taken while the store did not answer")
	case <-time.After(300 * time.Millisecond):
	}
	close(w.release)
	select {
	case <-wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("the output stayed held after the store answered")
	}
	l.Close()
	for i, c := range w.got {
		if len(c) > ChunkBytes+1024 || !strings.HasSuffix(c, "\n") {
			t.Errorf("chunk %d: %d bytes, want whole lines, about ChunkBytes", i, len(c))
		}
	}
	got := strings.Split(strings.TrimSuffix(w.text(), "\n"), "\n")
	if len(got) != n {
		t.Fatalf("%d lines written, want %d", len(got), n)
	}
	for i, g := range got {
		if !strings.HasPrefix(g, fmt.Sprintf("%05d", i)) {
			t.Fatalf("line %d is %.10q: out of order", i, g)
		}
	}
}

// ReportLines writes what Report would write line by line, and flushes a
// full buffer in the middle of a batch.
func TestLogReportLines(t *testing.T) {
	var one, batch chunks
	a, b := NewLog(&one, 1, "job", nil), NewLog(&batch, 1, "job", nil)
	big := strings.Repeat("y", ChunkBytes/2)
	lines := []string{"one", "", big, big, "after"}
	for _, job := range []string{"job", "job (linux)"} {
		for _, l := range lines {
			a.Report(exec.Event2{Type: exec.Output, Job: job, Text: l})
		}
		b.ReportLines(exec.Event2{Type: exec.Output, Job: job}, lines)
	}
	// A full buffer is written at once, beside the job (the chunk delay
	// is not waited for).
	deadline := time.Now().Add(ChunkDelay / 2)
	for batch.count() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if batch.count() == 0 {
		t.Error("no chunk written for a batch over ChunkBytes")
	}
	a.Close()
	b.Close()
	b.ReportLines(exec.Event2{Type: exec.Output, Job: "job"}, []string{"dropped"})
	if one.text() != batch.text() {
		t.Errorf("batched log differs:\n%q\n%q", one.text()[:40], batch.text()[:40])
	}
	if strings.Contains(batch.text(), "dropped") {
		t.Error("line written after Close")
	}
}

// The log chunks a worker stores (and an agent uploads, through the same
// Log) hold an ::add-mask:: value in none of its encoded forms, and a job
// output holding it is not reported.
func TestStoredLogMasksEncodedForms(t *testing.T) {
	const yaml = `on: push
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      v: ${{ steps.s.outputs.v }}
    steps:
      - id: s
        name: print it # the default name would show the script's first line
        run: |
          echo "::add-mask::p4ss/w0rd?value"
          printf 'user:%s' 'p4ss/w0rd?value' | base64
          printf '%s\n' 'p4ss%2Fw0rd%3Fvalue' '{"pw":"p4ss/w0rd?value"}'
          echo "::error::$(printf '%s' 'p4ss/w0rd?value' | base64)"
          echo "v=$(printf '%s' 'p4ss/w0rd?value' | base64)" >> "$GITHUB_OUTPUT"
`
	h := host.New(host.Options{})
	env := Env{Backend: h, Host: h, Platforms: map[string]string{"ubuntu-latest": "-self-hosted"}}
	var w chunks
	log := NewLog(&w, 7, "build", nil)
	c := Run(t.Context(), env, spec(t, yaml), t.TempDir(), filepath.Join(t.TempDir(), "work"), log)
	log.Close()
	if c.Status != jobspec.Success {
		t.Fatalf("completion: %+v\nlog:\n%s", c, w.text())
	}
	// The plain value, its URL form, and base64 at offsets 0 and 5 (user:).
	for _, leak := range []string{"p4ss", "cDRzc", "NHNzL3cwcmQ"} {
		if strings.Contains(w.text(), leak) {
			t.Errorf("stored log holds %q:\n%s", leak, w.text())
		}
	}
	if strings.Count(w.text(), "***") < 4 {
		t.Errorf("want 4 masks in:\n%s", w.text())
	}
	if _, ok := c.Outputs["v"]; ok {
		t.Errorf("an output holding a masked value was reported: %v", c.Outputs)
	}
}
