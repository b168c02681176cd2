package console

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/exec"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPrinter(t *testing.T) {
	var buf syncBuf
	p := New(&buf, false)
	ev := func(typ exec.EventType, text string) exec.Event2 {
		return exec.Event2{Type: typ, Job: "build (linux)", JobKey: "1", Step: "Run make", Text: text, Result: exec.Success}
	}
	p.Report(ev(exec.StepStarted, ""))
	p.Report(ev(exec.Output, "plain"))
	p.Report(ev(exec.GroupStart, "details"))
	p.Report(ev(exec.Output, "inside"))
	p.Report(ev(exec.GroupEnd, ""))
	p.Report(ev(exec.Output, "after"))
	p.Report(exec.Event2{Type: exec.Annotation, Level: "error", Job: "build (linux)", JobKey: "1", Text: "bad", File: "a.go", Line: 3})
	// Lines reach the writer without an explicit flush, within the delay.
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(buf.String(), "after") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	p.Summary(&exec.Result{Jobs: []*exec.JobResult{{Name: "build (linux)", Result: exec.Success, Duration: time.Second},
		{Name: "win", Result: exec.Skipped, Error: "no runner for windows-latest; use -P"}},
		Summaries: []exec.Summary{{Job: "build (linux)", Content: "## done\n"}}})
	out := buf.String()
	for _, want := range []string{
		"[build (linux)]   | plain\n",
		"[build (linux)]   | ▼ details\n",
		"[build (linux)]   |   inside\n",
		"[build (linux)]   | after\n",
		"Error a.go:3: bad",
		"## done",
		"build (linux)  success",
		"win            skipped    0s        no runner for windows-latest; use -P\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colors printed with color off")
	}
}

// ReportLines prints what Report prints line by line.
func TestReportLines(t *testing.T) {
	var one, batch bytes.Buffer
	a, b := New(&one, true), New(&batch, true)
	lines := []string{"first", "", "third"}
	for _, p := range []*Printer{a, b} {
		p.Report(exec.Event2{Type: exec.JobStarted, Job: "j", JobKey: "1-j"})
		p.Report(exec.Event2{Type: exec.GroupStart, Job: "j", JobKey: "1-j", Text: "g"})
	}
	for _, l := range lines {
		a.Report(exec.Event2{Type: exec.Output, Job: "j", JobKey: "1-j", Text: l})
	}
	b.ReportLines(exec.Event2{Type: exec.Output, Job: "j", JobKey: "1-j"}, lines)
	a.Flush()
	b.Flush()
	if one.String() != batch.String() || !strings.Contains(batch.String(), "   |   third\n") {
		t.Errorf("batched output differs:\n%q\n%q", one.String(), batch.String())
	}
}
