// Package console prints a run as it happens: every line prefixed with its
// job's name, colors on a terminal, ::group:: blocks indented, and at the
// end a summary table.
package console

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/exec"
)

var palette = []string{"\x1b[36m", "\x1b[35m", "\x1b[33m", "\x1b[34m", "\x1b[32m", "\x1b[96m", "\x1b[95m", "\x1b[93m"}

const (
	reset = "\x1b[0m"
	red   = "\x1b[31m"
	green = "\x1b[32m"
	gray  = "\x1b[90m"
	bold  = "\x1b[1m"
)

// Printer is an exec.Reporter writing to a terminal or a plain stream.
type Printer struct {
	mu     sync.Mutex
	w      *bufio.Writer
	timer  *time.Timer // pending flush; nil when none is scheduled
	color  bool
	colors map[string]string
	depth  map[string]int
}

var _ exec.LinesReporter = (*Printer)(nil)

// New returns a Printer; color turns on ANSI colors.
func New(w io.Writer, color bool) *Printer {
	return &Printer{w: bufio.NewWriterSize(w, 64<<10), color: color, colors: map[string]string{}, depth: map[string]int{}}
}

// flushDelay bounds how long a line waits in the buffer: output stays live
// while a step printing many lines costs one write per buffer, not per line.
const flushDelay = 50 * time.Millisecond

// scheduleFlush arranges a flush soon; p.mu is held.
func (p *Printer) scheduleFlush() {
	if p.timer != nil {
		return
	}
	p.timer = time.AfterFunc(flushDelay, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.timer = nil
		p.w.Flush()
	})
}

// Flush writes out what is buffered.
func (p *Printer) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.w.Flush()
}

func (p *Printer) paint(c, s string) string {
	if !p.color || c == "" {
		return s
	}
	return c + s + reset
}

func (p *Printer) prefix(ev exec.Event2) string {
	c, ok := p.colors[ev.JobKey]
	if !ok {
		c = palette[len(p.colors)%len(palette)]
		p.colors[ev.JobKey] = c
	}
	return p.paint(c, "["+ev.Job+"]")
}

// Report implements exec.Reporter.
func (p *Printer) Report(ev exec.Event2) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.scheduleFlush()
	if ev.Type == exec.RunError {
		fmt.Fprintln(p.w, p.paint(red, "error: "+ev.Text))
		return
	}
	pre := p.prefix(ev)
	indent := strings.Repeat("  ", p.depth[ev.JobKey])
	switch ev.Type {
	case exec.JobStarted:
		fmt.Fprintf(p.w, "%s %s\n", pre, p.paint(bold, "🚀 Start job"))
	case exec.JobFinished:
		fmt.Fprintf(p.w, "%s %s\n", pre, p.result("🏁 Job "+ev.Result, ev.Result, ev.Duration))
	case exec.StepStarted:
		p.depth[ev.JobKey] = 0
		fmt.Fprintf(p.w, "%s ⭐ %s\n", pre, ev.Step)
	case exec.StepFinished:
		p.depth[ev.JobKey] = 0
		if ev.Result == exec.Skipped {
			fmt.Fprintf(p.w, "%s %s\n", pre, p.paint(gray, "⏭  "+ev.Step+" (skipped)"))
			return
		}
		mark := "✅"
		if ev.Result != exec.Success {
			mark = "❌"
		}
		fmt.Fprintf(p.w, "%s %s\n", pre, p.result(mark+" "+ev.Step, ev.Result, ev.Duration))
	case exec.Output:
		p.output(pre, indent, ev.Text)
	case exec.GroupStart:
		fmt.Fprintf(p.w, "%s   | %s▼ %s\n", pre, indent, p.paint(bold, ev.Text))
		p.depth[ev.JobKey]++
	case exec.GroupEnd:
		if p.depth[ev.JobKey] > 0 {
			p.depth[ev.JobKey]--
		}
	case exec.Annotation:
		where := ""
		if ev.File != "" {
			where = " " + ev.File
			if ev.Line > 0 {
				where += fmt.Sprintf(":%d", ev.Line)
			}
		}
		level := strings.ToUpper(ev.Level[:1]) + ev.Level[1:]
		c := gray
		if ev.Level == "error" {
			c = red
		} else if ev.Level == "warning" {
			c = "\x1b[33m"
		}
		fmt.Fprintf(p.w, "%s   %s\n", pre, p.paint(c, level+where+": "+ev.Text))
	case exec.Notice:
		fmt.Fprintf(p.w, "%s %s\n", pre, p.paint(gray, "  "+ev.Text))
	}
}

// ReportLines implements exec.LinesReporter.
func (p *Printer) ReportLines(ev exec.Event2, lines []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.scheduleFlush()
	pre := p.prefix(ev)
	indent := strings.Repeat("  ", p.depth[ev.JobKey])
	for _, l := range lines {
		p.output(pre, indent, l)
	}
}

// output writes one output line; p.mu is held.
func (p *Printer) output(pre, indent, text string) {
	p.w.WriteString(pre)
	p.w.WriteString("   | ")
	p.w.WriteString(indent)
	p.w.WriteString(text)
	p.w.WriteByte('\n')
}

func (p *Printer) result(text, result string, d time.Duration) string {
	c := green
	if result != exec.Success {
		c = red
	}
	return p.paint(c, text) + p.paint(gray, " ["+round(d)+"]")
}

func round(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

// Summary prints the table of jobs and the step summaries.
func (p *Printer) Summary(r *exec.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.w.Flush()
	for _, s := range r.Summaries {
		fmt.Fprintf(p.w, "\n%s\n%s", p.paint(bold, "Summary of "+s.Job+":"), s.Content)
	}
	if len(r.Jobs) == 0 {
		fmt.Fprintln(p.w, "\nno jobs ran")
		return
	}
	w := len("JOB")
	for _, j := range r.Jobs {
		if len(j.Name) > w {
			w = len(j.Name)
		}
	}
	fmt.Fprintf(p.w, "\n%-*s  %-9s  %s\n", w, "JOB", "RESULT", "DURATION")
	for _, j := range r.Jobs {
		res := fmt.Sprintf("%-9s", j.Result)
		switch j.Result {
		case exec.Success:
			res = p.paint(green, res)
		case exec.Failure, exec.Cancelled:
			res = p.paint(red, res)
		default:
			res = p.paint(gray, res)
		}
		dur := round(j.Duration)
		if j.Error != "" && j.Result != exec.Success {
			// Why a job was skipped or failed before its steps (no
			// runner, an invalid workflow file) is one line here.
			dur = fmt.Sprintf("%-8s  %s", dur, p.paint(gray, firstLine(j.Error)))
		}
		fmt.Fprintf(p.w, "%-*s  %s  %s\n", w, j.Name, res, dur)
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}
