package exec

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/host"
)

// boomBackend is the host backend but for jobs named boom, whose set-up
// panics: a stand-in for a bug in Conveyor that a workflow runs into.
type boomBackend struct{ backend.Backend }

func (b boomBackend) Setup(ctx context.Context, job *backend.JobSpec, log io.Writer) (backend.Sandbox, error) {
	if strings.HasPrefix(job.Name, "boom") {
		var names []string
		_ = names[len(job.Name)] // a real runtime error: index out of range
	}
	return b.Backend.Setup(ctx, job, log)
}

// A panic in one job fails that job with the panic in its log; the other
// jobs, and those that need it, go on as after any failure.
func TestPanicFailsOnlyItsJob(t *testing.T) {
	src := `on: push
jobs:
  boom:
    runs-on: x
    strategy:
      fail-fast: false
      matrix: {n: [1, 2]}
    steps:
      - run: echo never
  fine:
    runs-on: x
    steps:
      - run: echo fine-ran
  after:
    needs: boom
    if: always()
    runs-on: x
    steps:
      - run: echo "boom was ${{ needs.boom.result }}"
`
	res, rec := run(t, nil, src, Options{Backend: boomBackend{host.New(host.Options{})}})
	if r := resultOf(res, "fine"); r != Success {
		t.Errorf("fine = %s", r)
	}
	if !rec.hasOutput("after", "boom was failure") {
		t.Errorf("after: %q\n%s", rec.output("after"), rec.dump())
	}
	failed := 0
	for _, j := range res.Jobs {
		if strings.HasPrefix(j.Name, "boom") {
			failed++
			if j.Result != Failure || !strings.Contains(j.Error, "internal error in Conveyor") || !strings.Contains(j.Error, "index out of range") {
				t.Errorf("%s: %s %q", j.Name, j.Result, j.Error)
			}
		}
	}
	if failed != 2 {
		t.Errorf("%d boom instances recorded, want 2: %s", failed, resultsString(res))
	}
	annotated := false
	for _, ev := range rec.events() {
		if ev.Type == Annotation && ev.Level == "error" && strings.Contains(ev.Text, "internal error in Conveyor") {
			annotated = true
		}
	}
	if !annotated || !strings.Contains(strings.Join(rec.output("boom (1)"), "\n"), "panic_test.go") {
		t.Errorf("the panic is not in the job's log:\n%s", rec.dump())
	}
}
