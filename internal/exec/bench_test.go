package exec

import (
	"context"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/backend/host"
)

// benchJob runs a one-job workflow of steps on the host backend b.N times.
// Profiles of the executor's side of a step:
//
//	go test -run - -bench HostSteps -cpuprofile cpu.out ./internal/exec/
func benchJob(b *testing.B, steps []string, rep Reporter) {
	var src strings.Builder
	src.WriteString("on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n")
	for _, s := range steps {
		src.WriteString("      - run: " + s + "\n")
	}
	wf := src.String()
	p := compile(b, wf)
	opts := Options{Backend: host.New(host.Options{}), Reporter: rep, WorkDir: b.TempDir(),
		Event: Event{Name: "push", Ref: "refs/heads/main", SHA: "0123abcd", Repository: "octo/repo", Actor: "me", RunID: "7", RunNumber: 3}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := New(opts).Run(context.Background(), p)
		if err != nil || res.Failed() {
			b.Fatalf("run: %v %+v", err, res)
		}
	}
}

func BenchmarkHostSteps20(b *testing.B) {
	benchJob(b, repeatStr("echo hi", 20), nil)
}

func BenchmarkHostOutput100k(b *testing.B) {
	benchJob(b, []string{"seq 1 100000"}, discardLines{})
}

// discardLines is a LinesReporter that drops everything, so the output
// benchmark measures the executor's side.
type discardLines struct{}

func (discardLines) Report(Event2)                {}
func (discardLines) ReportLines(Event2, []string) {}

func repeatStr(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
