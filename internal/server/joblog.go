package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/exec"
	"github.com/conveyor-ci/conveyor/internal/logs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// Log chunks are written when this much output is buffered or this long
// after the first unwritten byte, whichever comes first.
const (
	chunkBytes = 64 << 10
	chunkDelay = 100 * time.Millisecond
)

// jobLog is the executor's Reporter for a server job: it renders events as
// text lines (already masked by the executor) and stores them in chunks.
type jobLog struct {
	st    store.Logs
	hub   *logs.Hub
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

func newJobLog(st store.Logs, hub *logs.Hub, jobID int64, name string, log *slog.Logger) *jobLog {
	return &jobLog{st: st, hub: hub, jobID: jobID, name: name, log: log}
}

// Report renders one executor event.
func (l *jobLog) Report(ev exec.Event2) {
	prefix := ""
	if ev.Job != "" && ev.Job != l.name {
		prefix = "[" + ev.Job + "] "
	}
	switch ev.Type {
	case exec.JobStarted:
		l.line(prefix + "Job " + ev.Job + " started")
	case exec.StepStarted:
		l.mu.Lock()
		first := !l.started
		l.started = true
		f := l.onFirstStep
		l.mu.Unlock()
		if first && f != nil {
			f()
		}
		l.line(prefix + "##[step] " + ev.Step)
	case exec.StepFinished:
		l.line(fmt.Sprintf("%s##[step] %s: %s (%s)", prefix, ev.Step, ev.Result, ev.Duration.Round(time.Millisecond)))
	case exec.Output, exec.Notice:
		l.line(prefix + ev.Text)
	case exec.GroupStart:
		l.line(prefix + "##[group]" + ev.Text)
	case exec.GroupEnd:
		l.line(prefix + "##[endgroup]")
	case exec.Annotation:
		where := ""
		if ev.File != "" {
			where = fmt.Sprintf(" %s:%d", ev.File, ev.Line)
		}
		l.line(fmt.Sprintf("%s##[%s]%s %s", prefix, ev.Level, where, ev.Text))
	case exec.JobFinished:
		l.line(fmt.Sprintf("%sJob %s: %s", prefix, ev.Job, ev.Result))
	case exec.RunError:
		l.line(prefix + "Error: " + ev.Text)
	}
}

// line buffers one line of text.
func (l *jobLog) line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.buf.WriteString(s)
	l.buf.WriteByte('\n')
	if l.buf.Len() >= chunkBytes {
		l.flushLocked()
		return
	}
	if l.timer == nil {
		l.timer = time.AfterFunc(chunkDelay, l.flush)
	}
}

func (l *jobLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
}

func (l *jobLog) flushLocked() {
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
	if _, err := l.st.AppendLog(ctx, l.jobID, data); err != nil {
		l.log.Error("storing log chunk", "job", l.jobID, "err", err)
		return
	}
	l.hub.Notify(l.jobID)
}

// Close writes what is buffered; later lines are dropped. Safe to call
// twice.
func (l *jobLog) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.flushLocked()
	l.closed = true
}
