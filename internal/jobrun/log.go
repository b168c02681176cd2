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
// after the first unwritten byte, whichever comes first. Writes happen
// beside the job: its output waits only when MaxPending bytes are
// waiting to be written (the store or server is slow or away).
const (
	ChunkBytes = 64 << 10
	ChunkDelay = 100 * time.Millisecond
	MaxPending = 4 << 20
)

// ChunkWriter stores the next chunk of a job's output: the server's store
// (store.Logs) or, on an agent, the server's log endpoint.
type ChunkWriter interface {
	AppendLog(ctx context.Context, jobID int64, data []byte) (seq int64, err error)
}

// Log is the executor's Reporter for a leased job: it renders events as
// text lines (already masked by the executor) and writes them in chunks
// as they are produced, in order, one write at a time.
type Log struct {
	w     ChunkWriter
	jobID int64
	name  string // the job's display name: other names (matrix instances) prefix their lines
	log   *slog.Logger

	mu          sync.Mutex
	drained     *sync.Cond // signalled when a write ends
	writing     bool       // a write is under way: it takes what is buffered next
	buf         bytes.Buffer
	timer       *time.Timer
	closed      bool
	started     bool
	onFirstStep func()
	persist     time.Duration // how long one chunk may take to be stored
}

var _ exec.LinesReporter = (*Log)(nil)

// NewLog returns the log of job jobID named name; write errors go to log.
func NewLog(w ChunkWriter, jobID int64, name string, log *slog.Logger) *Log {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Log{w: w, jobID: jobID, name: name, log: log, persist: 30 * time.Second}
	l.drained = sync.NewCond(&l.mu)
	return l
}

// PersistFor sets how long the writing of one chunk may take, retries
// included (default 30 s); output waits meanwhile.
func (l *Log) PersistFor(d time.Duration) {
	l.mu.Lock()
	l.persist = d
	l.mu.Unlock()
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
	switch {
	case l.buf.Len() >= ChunkBytes:
		l.startWriteLocked()
		for l.writing && l.buf.Len() >= MaxPending {
			l.drained.Wait() // back-pressure: the writes cannot keep up
		}
	case l.timer == nil && !l.writing:
		l.timer = time.AfterFunc(ChunkDelay, l.flush)
	}
	return true
}

// flush starts writing what is buffered (the chunk delay passed).
func (l *Log) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer = nil
	l.startWriteLocked()
}

// startWriteLocked writes the buffer in the background unless a write is
// under way (it takes the buffer next). l.mu is held.
func (l *Log) startWriteLocked() {
	if l.writing || l.closed || l.buf.Len() == 0 {
		return
	}
	l.writing = true
	go func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.writeLocked()
	}()
}

// writeLocked writes the buffer until it is empty, one chunk at a time
// (in order), releasing l.mu during each write. l.mu is held and
// l.writing set; it clears it.
func (l *Log) writeLocked() {
	defer func() { l.writing = false; l.drained.Broadcast() }()
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	for l.buf.Len() > 0 {
		data := bytes.Clone(l.buf.Next(chunkEnd(l.buf.Bytes())))
		persist := l.persist
		l.mu.Unlock()
		l.write(data, persist)
		l.mu.Lock()
	}
}

// chunkEnd is the length of the next chunk of b: whole lines, about
// ChunkBytes (what piled up while a write was slow goes in several).
func chunkEnd(b []byte) int {
	if len(b) <= ChunkBytes {
		return len(b)
	}
	if i := bytes.IndexByte(b[ChunkBytes-1:], '\n'); i >= 0 {
		return ChunkBytes + i
	}
	return len(b)
}

func (l *Log) write(data []byte, persist time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), persist)
	defer cancel()
	if _, err := l.w.AppendLog(ctx, l.jobID, data); err != nil {
		l.log.Error("storing log chunk", "job", l.jobID, "err", err)
	}
}

// Close writes what is buffered and waits for the writes to end; later
// lines are dropped. Safe to call twice.
func (l *Log) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	for l.writing {
		l.drained.Wait()
	}
	l.writing = true
	l.writeLocked()
}
