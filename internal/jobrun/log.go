package jobrun

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/exec"
)

// Log chunks are written when this much output is buffered or this long
// after the first unwritten byte, whichever comes first.
const (
	ChunkBytes = 64 << 10
	ChunkDelay = 100 * time.Millisecond
)

// ChunkWriter stores the next chunk of a job's output: the server's store
// (store.Logs) or, on an agent, the server's log endpoint.
type ChunkWriter interface {
	AppendLog(ctx context.Context, jobID int64, data []byte) (seq int64, err error)
}

// Log is the executor's Reporter for a leased job: it renders events as
// text lines (already masked by the executor) and writes them in chunks
// as they are produced.
type Log struct {
	w     ChunkWriter
	jobID int64
	name  string // the job's display name: other names (matrix instances) prefix their lines
	log   *slog.Logger

	mu          sync.Mutex
	buf         bytes.Buffer
	timer       *time.Timer
	closed      bool
	started     bool
	onFirstStep func()
}

var _ exec.LinesReporter = (*Log)(nil)

// NewLog returns the log of job jobID named name; write errors go to log.
func NewLog(w ChunkWriter, jobID int64, name string, log *slog.Logger) *Log {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Log{w: w, jobID: jobID, name: name, log: log}
}

// OnFirstStep sets f to be called when the job's first step starts (the
// server measures dispatch latency with it).
func (l *Log) OnFirstStep(f func()) {
	l.mu.Lock()
	l.onFirstStep = f
	l.mu.Unlock()
}

// Report renders one executor event.
func (l *Log) Report(ev exec.Event2) {
	prefix := ""
	if ev.Job != "" && ev.Job != l.name {
		prefix = "[" + ev.Job + "] "
	}
	switch ev.Type {
	case exec.JobStarted:
		l.Line(prefix + "Job " + ev.Job + " started")
	case exec.StepStarted:
		l.mu.Lock()
		first := !l.started
		l.started = true
		f := l.onFirstStep
		l.mu.Unlock()
		if first && f != nil {
			f()
		}
		l.Line(prefix + "##[step] " + ev.Step)
	case exec.StepFinished:
		l.Line(fmt.Sprintf("%s##[step] %s: %s (%s)", prefix, ev.Step, ev.Result, ev.Duration.Round(time.Millisecond)))
	case exec.Output, exec.Notice:
		l.Line(prefix + ev.Text)
	case exec.GroupStart:
		l.Line(prefix + "##[group]" + ev.Text)
	case exec.GroupEnd:
		l.Line(prefix + "##[endgroup]")
	case exec.Annotation:
		where := ""
		if ev.File != "" {
			where = fmt.Sprintf(" %s:%d", ev.File, ev.Line)
		}
		l.Line(fmt.Sprintf("%s##[%s]%s %s", prefix, ev.Level, where, ev.Text))
	case exec.JobFinished:
		l.Line(fmt.Sprintf("%sJob %s: %s", prefix, ev.Job, ev.Result))
	case exec.RunError:
		l.Line(prefix + "Error: " + ev.Text)
	}
}

// ReportLines implements exec.LinesReporter: Output lines, as Report would
// write them one by one.
func (l *Log) ReportLines(ev exec.Event2, lines []string) {
	prefix := ""
	if ev.Job != "" && ev.Job != l.name {
		prefix = "[" + ev.Job + "] "
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range lines {
		if !l.lineLocked(prefix, s) {
			return
		}
	}
}

// Line buffers one line of text (not masked: callers write only their
// own messages here).
func (l *Log) Line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lineLocked("", s)
}

// lineLocked buffers prefix+s as a line; false when the log is closed.
// l.mu is held.
func (l *Log) lineLocked(prefix, s string) bool {
	if l.closed {
		return false
	}
	l.buf.WriteString(prefix)
	l.buf.WriteString(s)
	l.buf.WriteByte('\n')
	if l.buf.Len() >= ChunkBytes {
		l.flushLocked()
		return true
	}
	if l.timer == nil {
		l.timer = time.AfterFunc(ChunkDelay, l.flush)
	}
	return true
}

func (l *Log) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
}

// flushLocked writes the buffer; chunks stay in order because writes are
// made under the lock.
func (l *Log) flushLocked() {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if l.buf.Len() == 0 {
		return
	}
	data := bytes.Clone(l.buf.Bytes())
	l.buf.Reset()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := l.w.AppendLog(ctx, l.jobID, data); err != nil {
		l.log.Error("storing log chunk", "job", l.jobID, "err", err)
	}
}

// Close writes what is buffered; later lines are dropped. Safe to call
// twice.
func (l *Log) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.flushLocked()
	l.closed = true
}
