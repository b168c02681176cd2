package exec

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/fake"
	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

var osLookPath = osexec.LookPath

// recorder is a Reporter keeping every event.
type recorder struct {
	mu      sync.Mutex
	evs     []Event2
	onEvent func(Event2)
}

func (r *recorder) Report(ev Event2) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	f := r.onEvent
	r.mu.Unlock()
	if f != nil {
		f(ev)
	}
}

// ReportLines makes the recorder a LinesReporter, as the console and the
// server's log are: the executor then hands over output in batches.
func (r *recorder) ReportLines(ev Event2, lines []string) {
	for _, l := range lines {
		ev.Text = l
		r.Report(ev)
	}
}

func (r *recorder) events() []Event2 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event2(nil), r.evs...)
}

// output is the Output lines of job (display name; "" for all jobs).
func (r *recorder) output(job string) []string {
	var out []string
	for _, ev := range r.events() {
		if ev.Type == Output && (job == "" || ev.Job == job) {
			out = append(out, ev.Text)
		}
	}
	return out
}

func (r *recorder) hasOutput(job, line string) bool {
	for _, l := range r.output(job) {
		if l == line {
			return true
		}
	}
	return false
}

// index is the position of the first event matching f, or -1.
func (r *recorder) index(f func(Event2) bool) int {
	for i, ev := range r.events() {
		if f(ev) {
			return i
		}
	}
	return -1
}

func (r *recorder) stepResult(job, stepID string) string {
	res := ""
	for _, ev := range r.events() {
		if ev.Type == StepFinished && ev.Job == job && ev.StepID == stepID {
			res = ev.Result
		}
	}
	return res
}

func (r *recorder) dump() string {
	var b strings.Builder
	for _, ev := range r.events() {
		fmt.Fprintf(&b, "  %d job=%q step=%q id=%q text=%q result=%q level=%q\n", ev.Type, ev.Job, ev.Step, ev.StepID, ev.Text, ev.Result, ev.Level)
	}
	return b.String()
}

func compile(t testing.TB, src string) *plan.Plan {
	t.Helper()
	wf, probs := workflow.Parse([]byte(src), ".github/workflows/test.yml")
	if len(probs) > 0 {
		t.Fatalf("parse: %v", probs)
	}
	p, err := plan.Compile([]*workflow.Workflow{wf}, plan.Select{Event: "push"})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return p
}

// run runs src (a workflow on push) with opts; the host backend unless
// opts.Backend is set. It fails the test if Run takes more than limit.
func run(t *testing.T, ctx context.Context, src string, opts Options) (*Result, *recorder) {
	t.Helper()
	rec, _ := opts.Reporter.(*recorder)
	if rec == nil {
		rec = &recorder{}
	}
	if opts.Reporter == nil {
		opts.Reporter = rec
	}
	if opts.Backend == nil {
		opts.Backend = host.New(host.Options{})
	}
	if opts.Event.Name == "" {
		opts.Event = Event{Name: "push", Ref: "refs/heads/main", SHA: "0123abcd", Repository: "octo/repo", Actor: "me", RunID: "7", RunNumber: 3}
	}
	if opts.WorkDir == "" {
		opts.WorkDir = t.TempDir()
	}
	p := compile(t, src)
	if ctx == nil {
		c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		ctx = c
	}
	res, err := New(opts).Run(ctx, p)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res, rec
}

func jobResult(res *Result, name string) *JobResult {
	for _, j := range res.Jobs {
		if j.Name == name {
			return j
		}
	}
	return nil
}

func resultOf(res *Result, name string) string {
	if j := jobResult(res, name); j != nil {
		return j.Result
	}
	return "<none>"
}

func resultsString(res *Result) string {
	var parts []string
	for _, j := range res.Jobs {
		s := j.Name + "=" + j.Result
		if j.Error != "" {
			s += " (" + j.Error + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// ---- fake backend scripting -------------------------------------------

// script is a tiny language for the fake backend, one command a line, read
// from the run: script (after expression evaluation):
//
//	print TEXT     output a line
//	out K=V        append to GITHUB_OUTPUT
//	exit N         exit with N
//	block          wait until the step's context ends
//	sleep MS       sleep, honouring the context
//	wait NAME      wait until signal NAME (or the context ends)
//	signal NAME    send signal NAME
type signals struct {
	mu sync.Mutex
	ch map[string]chan struct{}
}

func (s *signals) get(name string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = map[string]chan struct{}{}
	}
	if s.ch[name] == nil {
		s.ch[name] = make(chan struct{})
	}
	return s.ch[name]
}

type fakeScripts struct {
	sig signals
	// hook, when set, runs before each process with the job id (GITHUB_JOB)
	// and returns a func run after it.
	hook func(job string) func()
}

func (f *fakeScripts) backend() *fake.Backend {
	return fake.New(f.run)
}

func (f *fakeScripts) run(ctx context.Context, job *backend.JobSpec, p *backend.Process) (string, int, error) {
	if f.hook != nil {
		if done := f.hook(p.Env["GITHUB_JOB"]); done != nil {
			defer done()
		}
	}
	b, err := os.ReadFile(p.Argv[len(p.Argv)-1])
	if err != nil {
		return "", 0, nil // not a run: step
	}
	var out strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch cmd {
		case "print":
			out.WriteString(arg + "\n")
		case "out":
			fh, err := os.OpenFile(p.Env["GITHUB_OUTPUT"], os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return out.String(), 1, err
			}
			fmt.Fprintln(fh, arg)
			fh.Close()
		case "exit":
			n, _ := strconv.Atoi(arg)
			return out.String(), n, nil
		case "block":
			<-ctx.Done()
			return out.String(), -1, ctx.Err()
		case "sleep":
			ms, _ := strconv.Atoi(arg)
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
			case <-ctx.Done():
				return out.String(), -1, ctx.Err()
			}
		case "wait":
			select {
			case <-f.sig.get(arg):
			case <-ctx.Done():
				return out.String(), -1, ctx.Err()
			}
		case "signal":
			ch := f.sig.get(arg)
			f.sig.mu.Lock()
			select {
			case <-ch:
			default:
				close(ch)
			}
			f.sig.mu.Unlock()
		}
	}
	return out.String(), 0, nil
}

// concurrency counts processes running at once, per job id and overall.
type concurrency struct {
	mu       sync.Mutex
	cur, max map[string]int
}

func (c *concurrency) enter(job string) func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		c.cur, c.max = map[string]int{}, map[string]int{}
	}
	for _, k := range []string{job, "*"} {
		c.cur[k]++
		if c.cur[k] > c.max[k] {
			c.max[k] = c.cur[k]
		}
	}
	return func() {
		c.mu.Lock()
		c.cur[job]--
		c.cur["*"]--
		c.mu.Unlock()
	}
}

func (c *concurrency) maxOf(job string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.max[job]
}

// ---- DAG ----------------------------------------------------------------

func TestDAGStartsJobWhenItsOwnNeedsFinish(t *testing.T) {
	// b only finishes once c has started: an executor that runs levels
	// (a and b, then c) never gets there and b fails on its own deadline.
	src := `on: push
jobs:
  a:
    runs-on: x
    steps:
      - run: print a
  b:
    runs-on: x
    steps:
      - run: |
          wait c-started
          print b-done
  c:
    needs: a
    runs-on: x
    steps:
      - run: |
          signal c-started
          print c
`
	fs := &fakeScripts{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, rec := run(t, ctx, src, Options{Backend: fs.backend(), Parallel: 4})
	for _, j := range []string{"a", "b", "c"} {
		if r := resultOf(res, j); r != Success {
			t.Errorf("job %s = %s; all: %s", j, r, resultsString(res))
		}
	}
	cStart := rec.index(func(e Event2) bool { return e.Type == JobStarted && e.Job == "c" })
	bEnd := rec.index(func(e Event2) bool { return e.Type == JobFinished && e.Job == "b" })
	aEnd := rec.index(func(e Event2) bool { return e.Type == JobFinished && e.Job == "a" })
	if cStart < 0 || bEnd < 0 || !(aEnd < cStart && cStart < bEnd) {
		t.Errorf("want a finished < c started < b finished, got %d, %d, %d\n%s", aEnd, cStart, bEnd, rec.dump())
	}
}

func TestDAGParallelLimit(t *testing.T) {
	var jobs strings.Builder
	jobs.WriteString("on: push\njobs:\n")
	for i := 0; i < 8; i++ {
		fmt.Fprintf(&jobs, "  j%d:\n    runs-on: x\n    steps:\n      - run: sleep 30\n      - run: sleep 5\n", i)
	}
	for _, parallel := range []int{1, 2, 3} {
		t.Run(strconv.Itoa(parallel), func(t *testing.T) {
			cc := &concurrency{}
			fs := &fakeScripts{hook: func(string) func() { return cc.enter("x") }}
			// count whole jobs: from setup to teardown is not visible, so
			// count processes; with one process at a time per job this is
			// the number of jobs running steps.
			res, _ := run(t, nil, jobs.String(), Options{Backend: fs.backend(), Parallel: parallel})
			if len(res.Jobs) != 8 || res.Failed() {
				t.Fatalf("results: %s", resultsString(res))
			}
			if m := cc.maxOf("*"); m > parallel || m < 1 {
				t.Errorf("Parallel=%d: %d processes ran at once", parallel, m)
			}
		})
	}
}

func TestDAGNeedsResultsAndConditions(t *testing.T) {
	src := `on: push
jobs:
  ok:
    runs-on: x
    outputs:
      v: ${{ steps.s.outputs.v }}
      w: static-${{ steps.s.outputs.v }}
    steps:
      - id: s
        run: out v=42
  bad:
    runs-on: x
    steps:
      - run: exit 1
  after-bad:
    needs: bad
    runs-on: x
    steps:
      - run: print should-not-run
  after-after-bad:
    needs: after-bad
    runs-on: x
    steps:
      - run: print should-not-run
  always:
    needs: [bad, ok]
    if: always()
    runs-on: x
    steps:
      - run: print bad=${{ needs.bad.result }} ok=${{ needs.ok.result }} v=${{ needs.ok.outputs.v }} w=${{ needs.ok.outputs.w }}
  on-failure:
    needs: bad
    if: failure()
    runs-on: x
    steps:
      - run: print failure-ran
  on-success:
    needs: ok
    if: success()
    runs-on: x
    steps:
      - run: print ${{ needs.ok.outputs.v }}
  skipped-need-always:
    needs: after-bad
    if: ${{ always() && needs.after-bad.result == 'skipped' }}
    runs-on: x
    steps:
      - run: print saw-skipped
  false-if:
    if: github.event_name == 'pull_request'
    runs-on: x
    steps:
      - run: print no
  needs-false-if:
    needs: false-if
    runs-on: x
    steps:
      - run: print no
`
	fs := &fakeScripts{}
	res, rec := run(t, nil, src, Options{Backend: fs.backend()})
	want := map[string]string{
		"ok": Success, "bad": Failure, "after-bad": Skipped, "after-after-bad": Skipped, "always": Success,
		"on-failure": Success, "on-success": Success, "skipped-need-always": Success, "false-if": Skipped, "needs-false-if": Skipped,
	}
	for j, w := range want {
		if got := resultOf(res, j); got != w {
			t.Errorf("job %s = %s, want %s", j, got, w)
		}
	}
	if len(res.Jobs) != len(want) {
		t.Errorf("%d results, want %d: %s", len(res.Jobs), len(want), resultsString(res))
	}
	if !res.Failed() {
		t.Error("Result.Failed() = false with a failed job")
	}
	if !rec.hasOutput("always", "bad=failure ok=success v=42 w=static-42") {
		t.Errorf("always output %q", rec.output("always"))
	}
	if got := jobResult(res, "ok").Outputs; got["v"] != "42" || got["w"] != "static-42" {
		t.Errorf("ok outputs %v", got)
	}
	for _, j := range []string{"after-bad", "after-after-bad", "false-if", "needs-false-if"} {
		if rec.index(func(e Event2) bool { return e.Type == JobStarted && e.Job == j }) >= 0 {
			t.Errorf("skipped job %s was started", j)
		}
	}
	if !rec.hasOutput("on-failure", "failure-ran") || !rec.hasOutput("on-success", "42") || !rec.hasOutput("skipped-need-always", "saw-skipped") {
		t.Errorf("outputs: %q", rec.output(""))
	}
}

// ---- matrix: fail-fast, max-parallel ------------------------------------

func TestMatrixFailFast(t *testing.T) {
	tmpl := `on: push
jobs:
  m:
    runs-on: x
    strategy:
      %s
      matrix:
        n: [1, 2, 3]
    steps:
      - run: |
          ${{ matrix.n == 1 && 'sleep 50' || 'print started' }}
          ${{ matrix.n == 1 && 'exit 1' || '%s' }}
          print finished
  after:
    needs: m
    if: always()
    runs-on: x
    steps:
      - run: print m=${{ needs.m.result }}
`
	tests := []struct {
		name       string
		strategy   string
		others     string // what combos 2 and 3 do
		wantOthers string
		wantM      string
	}{
		{"default fail-fast cancels siblings", "", "block", Cancelled, Failure},
		{"fail-fast true cancels siblings", "fail-fast: true", "block", Cancelled, Failure},
		{"fail-fast false lets siblings finish", "fail-fast: false", "sleep 300", Success, Failure},
		{"fail-fast expression false", "fail-fast: ${{ github.event_name != 'push' }}", "sleep 300", Success, Failure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := &fakeScripts{}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			res, rec := run(t, ctx, fmt.Sprintf(tmpl, tc.strategy, tc.others), Options{Backend: fs.backend(), Parallel: 8})
			if ctx.Err() != nil {
				t.Fatalf("Run only returned after the test deadline (%v)", time.Since(start))
			}
			if r := resultOf(res, "m (1)"); r != Failure {
				t.Errorf("m (1) = %s", r)
			}
			for _, n := range []string{"m (2)", "m (3)"} {
				if r := resultOf(res, n); r != tc.wantOthers {
					t.Errorf("%s = %s, want %s; all %s", n, r, tc.wantOthers, resultsString(res))
				}
			}
			if !rec.hasOutput("after", "m="+tc.wantM) {
				t.Errorf("after saw %q", rec.output("after"))
			}
			if tc.wantOthers == Success && !rec.hasOutput("m (2)", "finished") {
				t.Errorf("m (2) did not finish: %q", rec.output("m (2)"))
			}
		})
	}
}

func TestMatrixMaxParallel(t *testing.T) {
	for _, mp := range []int{1, 2} {
		t.Run(strconv.Itoa(mp), func(t *testing.T) {
			src := fmt.Sprintf(`on: push
jobs:
  m:
    runs-on: x
    strategy:
      max-parallel: %d
      matrix:
        n: [1, 2, 3, 4, 5]
    steps:
      - run: sleep 30
  other:
    runs-on: x
    steps:
      - run: sleep 30
`, mp)
			cc := &concurrency{}
			fs := &fakeScripts{hook: cc.enter}
			res, rec := run(t, nil, src, Options{Backend: fs.backend(), Parallel: 10})
			if res.Failed() || len(res.Jobs) != 6 {
				t.Fatalf("results %s", resultsString(res))
			}
			if m := cc.maxOf("m"); m > mp {
				t.Errorf("max-parallel %d: %d instances ran at once", mp, m)
			}
			// strategy.max-parallel is visible to expressions
			_ = rec
		})
	}
}

// ---- steps ----------------------------------------------------------------

func TestStepStatusSemantics(t *testing.T) {
	src := `on: push
jobs:
  j:
    runs-on: x
    steps:
      - id: ok
        run: print ok
      - id: soft
        continue-on-error: true
        run: exit 3
      - id: report-soft
        run: print soft=${{ steps.soft.outcome }}/${{ steps.soft.conclusion }} ok=${{ steps.ok.outcome }}/${{ steps.ok.conclusion }}
      - id: still-running
        run: print still-running
      - id: hard
        run: exit 1
      - id: skipped-by-failure
        run: print must-not-run
      - id: on-failure
        if: failure()
        run: print failure=${{ steps.hard.outcome }}/${{ steps.hard.conclusion }} skipped=${{ steps.skipped-by-failure.outcome }}/${{ steps.skipped-by-failure.conclusion }}
      - id: on-always
        if: always()
        run: print always
      - id: on-cancelled
        if: cancelled()
        run: print must-not-run
      - id: on-success
        if: success()
        run: print must-not-run
      - id: expression-if
        if: steps.ok.outcome == 'success'
        run: print must-not-run
      - id: expression-if-always
        if: always() && steps.ok.outcome == 'success'
        run: print expr-always
`
	fs := &fakeScripts{}
	res, rec := run(t, nil, src, Options{Backend: fs.backend()})
	if r := resultOf(res, "j"); r != Failure {
		t.Errorf("job = %s", r)
	}
	out := strings.Join(rec.output("j"), "\n")
	for _, want := range []string{"ok", "soft=failure/success ok=success/success", "still-running", "failure=failure/failure skipped=skipped/skipped", "always", "expr-always"} {
		if !rec.hasOutput("j", want) {
			t.Errorf("missing output %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "must-not-run") {
		t.Errorf("a step ran that should not have:\n%s", out)
	}
	wantResults := map[string]string{"ok": Success, "soft": Success, "hard": Failure, "skipped-by-failure": Skipped, "on-failure": Success,
		"on-cancelled": Skipped, "on-success": Skipped, "expression-if": Skipped, "expression-if-always": Success}
	for id, w := range wantResults {
		if got := rec.stepResult("j", id); got != w {
			t.Errorf("step %s finished %q, want %q", id, got, w)
		}
	}
}

func TestContinueOnErrorJob(t *testing.T) {
	src := `on: push
jobs:
  j:
    runs-on: x
    continue-on-error: true
    steps:
      - run: exit 1
  k:
    needs: j
    runs-on: x
    steps:
      - run: print j=${{ needs.j.result }}
`
	res, rec := run(t, nil, src, Options{Backend: (&fakeScripts{}).backend()})
	if resultOf(res, "j") != Success || resultOf(res, "k") != Success || !rec.hasOutput("k", "j=success") {
		t.Errorf("results %s, k output %q", resultsString(res), rec.output("k"))
	}
}

// continue-on-error written as a literal false (or False) must not let a
// failure through, at step or job level.
func TestContinueOnErrorFalse(t *testing.T) {
	src := `on: push
jobs:
  step-false:
    runs-on: x
    steps:
      - id: s
        continue-on-error: false
        run: exit 1
      - if: always()
        run: print s=${{ steps.s.outcome }}/${{ steps.s.conclusion }}
  step-expr-false:
    runs-on: x
    steps:
      - continue-on-error: ${{ github.event_name == 'pull_request' }}
        run: exit 1
  job-false:
    runs-on: x
    continue-on-error: false
    steps:
      - run: exit 1
  job-false-cap:
    runs-on: x
    continue-on-error: False
    steps:
      - run: exit 1
`
	res, rec := run(t, nil, src, Options{Backend: (&fakeScripts{}).backend()})
	for _, j := range []string{"step-false", "step-expr-false", "job-false", "job-false-cap"} {
		if r := resultOf(res, j); r != Failure {
			t.Errorf("job %s = %s, want failure (continue-on-error is false)", j, r)
		}
	}
	if !rec.hasOutput("step-false", "s=failure/failure") {
		t.Errorf("step-false output %q", rec.output("step-false"))
	}
}

func TestStepTimeout(t *testing.T) {
	src := `on: push
jobs:
  j:
    runs-on: x
    steps:
      - id: slow
        timeout-minutes: 0.01
        run: |
          echo begin
          sleep 30
          echo never
      - id: next
        run: echo must-not-run
      - id: after
        if: failure()
        run: echo outcome=${{ steps.slow.outcome }} cancelled=${{ cancelled() }}
      - id: soft-slow
        if: always()
        continue-on-error: true
        timeout-minutes: 0.01
        run: sleep 30
      - if: always()
        run: echo soft=${{ steps.soft-slow.outcome }}/${{ steps.soft-slow.conclusion }}
`
	start := time.Now()
	res, rec := run(t, nil, src, Options{})
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("run took %v: the timed-out step was not killed", d)
	}
	if r := resultOf(res, "j"); r != Failure {
		t.Errorf("job = %s", r)
	}
	out := rec.output("j")
	if !rec.hasOutput("j", "begin") || rec.hasOutput("j", "never") || rec.hasOutput("j", "must-not-run") {
		t.Errorf("output %q", out)
	}
	if !rec.hasOutput("j", "outcome=failure cancelled=false") || !rec.hasOutput("j", "soft=failure/success") {
		t.Errorf("output %q", out)
	}
	found := false
	for _, ev := range rec.events() {
		if ev.Type == Annotation && ev.StepID == "slow" && strings.Contains(ev.Text, "timed out") {
			found = true
		}
	}
	if !found {
		t.Errorf("no 'timed out' annotation for the slow step:\n%s", rec.dump())
	}
}

func TestJobTimeout(t *testing.T) {
	src := `on: push
jobs:
  j:
    runs-on: x
    timeout-minutes: 0.02
    steps:
      - run: |
          echo begin
          sleep 30
      - run: echo must-not-run
      - if: cancelled()
        run: echo cleanup cancelled=${{ cancelled() }}
      - if: always()
        run: echo always-ran
      - if: success()
        run: echo must-not-run
  dependent:
    needs: j
    runs-on: x
    steps:
      - run: echo must-not-run
`
	start := time.Now()
	res, rec := run(t, nil, src, Options{})
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("run took %v", d)
	}
	if r := resultOf(res, "j"); r == Success || r == Skipped {
		t.Errorf("timed-out job = %s", r)
	}
	if r := resultOf(res, "dependent"); r != Skipped {
		t.Errorf("dependent = %s", r)
	}
	if !rec.hasOutput("j", "cleanup cancelled=true") || !rec.hasOutput("j", "always-ran") || rec.hasOutput("", "must-not-run") {
		t.Errorf("output %q", rec.output(""))
	}
}

func TestCancelRunKillsStepAndRunsCleanup(t *testing.T) {
	src := `on: push
jobs:
  j:
    runs-on: x
    steps:
      - run: |
          echo ready
          sleep 60
          echo never
      - run: echo must-not-run
      - if: always()
        run: echo always cancelled=${{ cancelled() }}
      - if: cancelled()
        run: echo cancelled-step
  later:
    needs: j
    runs-on: x
    steps:
      - run: echo must-not-run
`
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &recorder{}
	rec.onEvent = func(ev Event2) {
		if ev.Type == Output && ev.Text == "ready" {
			cancel()
		}
	}
	start := time.Now()
	res, _ := run(t, ctx, src, Options{Reporter: rec})
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("Run returned after %v", d)
	}
	if r := resultOf(res, "j"); r != Cancelled {
		t.Errorf("j = %s", r)
	}
	if r := resultOf(res, "later"); r != Skipped && r != Cancelled {
		t.Errorf("later = %s", r)
	}
	if !rec.hasOutput("j", "always cancelled=true") || !rec.hasOutput("j", "cancelled-step") {
		t.Errorf("cleanup steps did not run: %q", rec.output(""))
	}
	if rec.hasOutput("", "never") || rec.hasOutput("", "must-not-run") {
		t.Errorf("output %q", rec.output(""))
	}
	if !res.Failed() {
		t.Error("Failed() = false for a cancelled run")
	}
}

func TestCancelTeardownOncePerJob(t *testing.T) {
	src := `on: push
jobs:
  a:
    runs-on: x
    steps:
      - run: |
          signal a-running
          block
      - if: always()
        run: print cleanup-a
  b:
    runs-on: x
    strategy:
      matrix:
        n: [1, 2]
    steps:
      - run: block
  c:
    needs: a
    runs-on: x
    steps:
      - run: print must-not-run
`
	fs := &fakeScripts{}
	fb := fs.backend()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-fs.sig.get("a-running"):
			time.Sleep(50 * time.Millisecond)
			cancel()
		case <-time.After(10 * time.Second):
		}
	}()
	done := make(chan struct{})
	var res *Result
	var rec *recorder
	go func() {
		defer close(done)
		res, rec = run(t, ctx, src, Options{Backend: fb, Parallel: 4})
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	setups := 0
	for _, c := range fb.Calls() {
		if c.Op == "setup" {
			setups++
			if n := fb.Teardowns(c.JobID); n != 1 {
				t.Errorf("job %s torn down %d times", c.JobID, n)
			}
		}
	}
	if setups != 3 {
		t.Errorf("%d setups, want 3 (a, b (1), b (2))", setups)
	}
	if live := fb.Live(); len(live) != 0 {
		t.Errorf("live sandboxes after Run: %v", live)
	}
	if !rec.hasOutput("a", "cleanup-a") || rec.hasOutput("", "must-not-run") {
		t.Errorf("output %q", rec.output(""))
	}
	for _, n := range []string{"a", "b (1)", "b (2)"} {
		if r := resultOf(res, n); r != Cancelled {
			t.Errorf("%s = %s", n, r)
		}
	}
}

func TestTeardownOncePerJobOnSuccessAndFailure(t *testing.T) {
	src := `on: push
jobs:
  a:
    runs-on: x
    steps:
      - run: print a
  b:
    runs-on: x
    steps:
      - run: exit 2
  m:
    runs-on: x
    strategy:
      fail-fast: false
      matrix:
        n: [1, 2, 3]
    steps:
      - run: print ${{ matrix.n }}
`
	fb := (&fakeScripts{}).backend()
	res, _ := run(t, nil, src, Options{Backend: fb})
	if len(res.Jobs) != 5 {
		t.Fatalf("results %s", resultsString(res))
	}
	n := 0
	for _, c := range fb.Calls() {
		if c.Op == "setup" {
			n++
			if td := fb.Teardowns(c.JobID); td != 1 {
				t.Errorf("%s: %d teardowns", c.JobID, td)
			}
		}
	}
	if n != 5 || len(fb.Live()) != 0 {
		t.Errorf("%d setups, live %v", n, fb.Live())
	}
}

// ---- env, files, workflow commands (real processes) ----------------------

func TestEnvAndFileCommands(t *testing.T) {
	src := `on: push
env:
  WF: wf-level
jobs:
  j:
    runs-on: x
    env:
      JOB: job-${{ env.WF }}
    steps:
      - id: s1
        run: |
          echo "FOO=bar" >> "$GITHUB_ENV"
          {
            echo "ML<<EOF_DELIM"
            echo "line 1"
            echo "line 2"
            echo "EOF_DELIM"
          } >> "$GITHUB_ENV"
          echo "v=1" >> "$GITHUB_OUTPUT"
          {
            echo "multi<<X"
            echo "a"
            echo "b"
            echo "X"
          } >> "$GITHUB_OUTPUT"
          mkdir -p "$RUNNER_TEMP/mybin"
          printf '#!/bin/sh\necho mytool-ran\n' > "$RUNNER_TEMP/mybin/mytool"
          chmod +x "$RUNNER_TEMP/mybin/mytool"
          echo "$RUNNER_TEMP/mybin" >> "$GITHUB_PATH"
          echo "st=9" >> "$GITHUB_STATE"
          echo "# Summary of j" >> "$GITHUB_STEP_SUMMARY"
          echo "::set-output name=old::42"
          echo "in-step FOO=[$FOO]"
      - id: s2
        env:
          STEP: step-${{ env.FOO }}
        run: |
          echo "FOO=$FOO ${{ env.FOO }}"
          echo "ML=$ML"
          echo 'outputs ${{ steps.s1.outputs.v }} ${{ steps.s1.outputs.old }} ${{ toJSON(steps.s1.outputs.multi) }}'
          mytool
          echo "state=[$STATE_st]"
          echo "WF=$WF JOB=$JOB STEP=$STEP"
          echo "CI=$CI GITHUB_ACTIONS=$GITHUB_ACTIONS GITHUB_JOB=$GITHUB_JOB GITHUB_REF_NAME=$GITHUB_REF_NAME GITHUB_REPOSITORY=$GITHUB_REPOSITORY"
          echo "summary2" >> "$GITHUB_STEP_SUMMARY"
          test "$PWD" = "$GITHUB_WORKSPACE" && echo pwd-is-workspace
      - run: echo "FOO=$FOO"
        env:
          FOO: step-overrides
`
	res, rec := run(t, nil, src, Options{})
	if r := resultOf(res, "j"); r != Success {
		t.Fatalf("j = %s\n%s", r, rec.dump())
	}
	for _, want := range []string{
		"in-step FOO=[]",
		"FOO=bar bar",
		"ML=line 1",
		"line 2",
		`outputs 1 42 "a\nb"`,
		"mytool-ran",
		"state=[]",
		"WF=wf-level JOB=job-wf-level STEP=step-bar",
		"CI=true GITHUB_ACTIONS=true GITHUB_JOB=j GITHUB_REF_NAME=main GITHUB_REPOSITORY=octo/repo",
		"pwd-is-workspace",
		"FOO=step-overrides",
	} {
		if !rec.hasOutput("j", want) {
			t.Errorf("missing %q in %q", want, rec.output("j"))
		}
	}
	if len(res.Summaries) != 1 || res.Summaries[0].Job != "j" || res.Summaries[0].Content != "# Summary of j\nsummary2\n" {
		t.Errorf("summaries %+v", res.Summaries)
	}
}

func TestMasking(t *testing.T) {
	src := `on: push
jobs:
  j:
    runs-on: x
    steps:
      - name: uses ${{ secrets.TOKEN }}
        run: |
          echo "token ${{ secrets.TOKEN }}"
          echo "env $TOK"
          echo "line-one-secret"
          echo "second-line-secret here"
          echo "before mask: dynamic-value"
          echo "::add-mask::dynamic-value"
          echo "after mask: dynamic-value"
          echo "::add-mask::$(echo ml-a; echo ml-b)"
        env:
          TOK: ${{ secrets.TOKEN }}
      - run: |
          echo "next step: dynamic-value"
          echo "::error::bad dynamic-value"
          echo "x=s3cr3t-value" >> "$GITHUB_OUTPUT"
          echo "# s3cr3t-value" >> "$GITHUB_STEP_SUMMARY"
`
	rec := &recorder{}
	res, _ := run(t, nil, src, Options{Reporter: rec, Secrets: map[string]string{"TOKEN": "s3cr3t-value", "MULTI": "line-one-secret\nsecond-line-secret"}})
	if r := resultOf(res, "j"); r != Success {
		t.Fatalf("j = %s\n%s", r, rec.dump())
	}
	for _, want := range []string{"token ***", "env ***", "***", "*** here", "before mask: dynamic-value", "after mask: ***", "next step: ***"} {
		if !rec.hasOutput("j", want) {
			t.Errorf("missing %q in %q", want, rec.output("j"))
		}
	}
	for _, ev := range rec.events() {
		for _, s := range []string{ev.Text, ev.Step} {
			if strings.Contains(s, "s3cr3t-value") || strings.Contains(s, "line-one-secret") || strings.Contains(s, "second-line-secret") {
				t.Errorf("secret leaked in event %+v", ev)
			}
			if strings.Contains(s, "add-mask") {
				t.Errorf("add-mask command shown: %+v", ev)
			}
			if ev.Type == Annotation && strings.Contains(s, "dynamic-value") {
				t.Errorf("masked value in annotation: %+v", ev)
			}
		}
	}
	if rec.index(func(e Event2) bool { return e.Type == StepStarted && e.Step == "uses ***" }) < 0 {
		t.Errorf("step name not masked:\n%s", rec.dump())
	}
	for _, s := range res.Summaries {
		if strings.Contains(s.Content, "s3cr3t") {
			t.Errorf("summary not masked: %q", s.Content)
		}
	}
}

// Encoded forms of secrets and of ::add-mask:: values are masked in the
// step output, annotations and summaries, and a job output holding a
// secret is not passed on (as GitHub's runner skips it).
func TestMaskingEncodedForms(t *testing.T) {
	src := `on: push
jobs:
  j:
    runs-on: x
    outputs:
      leak: ${{ steps.s.outputs.v }}
      fine: ${{ steps.s.outputs.ok }}
    steps:
      - id: s
        run: |
          printf '%s' "$TOK" | base64
          printf 'x%s' "$TOK" | base64
          printf 'user:%s' "$TOK" | base64
          printf 'user:%s' "$TOK" | base64 | tr '+/' '-_' | tr -d '='
          printf 'q=%s\n' 's3cr3t%22val%27ue%2Fx+y%3D%3D'
          printf 'q=%s\n' 's3cr3t%22val%27ue%2fx%20y%3d%3d'
          printf '{"t":"%s"}\n' 's3cr3t\"val'"'"'ue/x y=='
          printf '%q\n' "$TOK"
          echo "sh -c 'echo s3cr3t\"val'\''ue/x y=='"
          echo "::add-mask::dyn-secret-42"
          printf 'ab%s\n' dyn-secret-42 | base64
          echo "::warning::$(printf 'k:%s' "$TOK" | base64)"
          printf '%s' "$TOK" | base64 >> "$GITHUB_STEP_SUMMARY"
          echo "v=$(printf '%s' "$TOK" | base64)" >> "$GITHUB_OUTPUT"
          echo "ok=plain" >> "$GITHUB_OUTPUT"
        env:
          TOK: ${{ secrets.TOKEN }}
`
	const secret = `s3cr3t"val'ue/x y==`
	rec := &recorder{}
	res, _ := run(t, nil, src, Options{Reporter: rec, Secrets: map[string]string{"TOKEN": secret}})
	if r := resultOf(res, "j"); r != Success {
		t.Fatalf("j = %s\n%s", r, rec.dump())
	}
	var leaks []string
	for _, form := range []string{"s3cr3t", "czNjcjN0", "M2NyM3Qi", "Y3IzdCJ2", "eW4tc2VjcmV0", "dyn-secret"} {
		for _, ev := range rec.events() {
			if strings.Contains(ev.Text, form) {
				leaks = append(leaks, fmt.Sprintf("%q in %q", form, ev.Text))
			}
		}
		for _, s := range res.Summaries {
			if strings.Contains(s.Content, form) {
				leaks = append(leaks, fmt.Sprintf("%q in summary %q", form, s.Content))
			}
		}
	}
	if len(leaks) > 0 {
		t.Errorf("leaked:\n%s\n%s", strings.Join(leaks, "\n"), rec.dump())
	}
	if n := strings.Count(strings.Join(rec.output("j"), "\n"), "***"); n < 10 {
		t.Errorf("%d masks, want one per encoded line:\n%s", n, rec.dump())
	}
	var out map[string]string
	for _, j := range res.Jobs {
		out = j.Outputs
	}
	if _, ok := out["leak"]; ok || out["fine"] != "plain" {
		t.Errorf("job outputs %v: the one holding a secret must be skipped, the other kept", out)
	}
}

func TestWorkflowCommands(t *testing.T) {
	src := `on: push
jobs:
  j:
    runs-on: x
    steps:
      - id: s
        run: |
          echo "::group::My group"
          echo "inside"
          echo "::endgroup::"
          echo "::error file=app.js,line=10,col=3,title=T::bad thing"
          echo "::warning::careful%0Asecond line"
          echo "::notice file=README.md::note"
          echo "::debug::hidden"
          echo "::stop-commands::pause-token"
          echo "::set-output name=stopped::1"
          echo "::error::not-an-annotation"
          echo "::pause-token::"
          echo "::set-output name=resumed::2"
          echo "::set-env name=INSECURE::1"
          echo "::add-path::/nonexistent-insecure"
          echo "::unknown-cmd::shown as is"
      - run: |
          echo "stopped=[${{ steps.s.outputs.stopped }}] resumed=[${{ steps.s.outputs.resumed }}]"
          echo "INSECURE=[$INSECURE]"
          case ":$PATH:" in *:/nonexistent-insecure:*) echo path-added;; *) echo path-not-added;; esac
      - id: allowed
        env:
          ACTIONS_ALLOW_UNSECURE_COMMANDS: "true"
        run: |
          echo "::set-env name=ALLOWED::yes"
      - run: echo "ALLOWED=[$ALLOWED]"
`
	res, rec := run(t, nil, src, Options{})
	if r := resultOf(res, "j"); r != Success {
		t.Fatalf("j = %s\n%s", r, rec.dump())
	}
	evs := rec.events()
	gs := rec.index(func(e Event2) bool { return e.Type == GroupStart && e.Text == "My group" && e.StepID == "s" })
	in := rec.index(func(e Event2) bool { return e.Type == Output && e.Text == "inside" })
	ge := rec.index(func(e Event2) bool { return e.Type == GroupEnd && e.StepID == "s" })
	if gs < 0 || !(gs < in && in < ge) {
		t.Errorf("group events %d %d %d", gs, in, ge)
	}
	var annots []Event2
	for _, ev := range evs {
		if ev.Type == Annotation {
			annots = append(annots, ev)
		}
	}
	find := func(level, text string) *Event2 {
		for i := range annots {
			if annots[i].Level == level && strings.Contains(annots[i].Text, text) {
				return &annots[i]
			}
		}
		return nil
	}
	if a := find("error", "bad thing"); a == nil || a.File != "app.js" || a.Line != 10 || a.StepID != "s" || a.Job != "j" {
		t.Errorf("error annotation %+v", a)
	}
	if a := find("warning", "careful\nsecond line"); a == nil {
		t.Errorf("warning annotation missing: %+v", annots)
	}
	if a := find("notice", "note"); a == nil || a.File != "README.md" {
		t.Errorf("notice annotation %+v", a)
	}
	if find("error", "not-an-annotation") != nil {
		t.Error("a command was processed during stop-commands")
	}
	if find("error", "set-env") == nil || find("error", "add-path") == nil {
		t.Errorf("set-env/add-path not refused: %+v", annots)
	}
	for _, want := range []string{"inside", "::set-output name=stopped::1", "::error::not-an-annotation", "::unknown-cmd::shown as is",
		"stopped=[] resumed=[2]", "INSECURE=[]", "path-not-added", "ALLOWED=[yes]"} {
		if !rec.hasOutput("j", want) {
			t.Errorf("missing %q in %q", want, rec.output("j"))
		}
	}
	for _, bad := range []string{"::pause-token::", "hidden", "::debug::hidden", "::group::My group"} {
		if rec.hasOutput("j", bad) {
			t.Errorf("unexpected output line %q", bad)
		}
	}
}

// ---- composite actions, reusable workflows -------------------------------

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCompositeAction(t *testing.T) {
	repo := t.TempDir()
	writeFiles(t, repo, map[string]string{
		".github/actions/greet/action.yml": `name: greet
inputs:
  who:
    required: true
  greeting:
    default: Hello
outputs:
  msg:
    value: ${{ steps.g.outputs.msg }}
  inner:
    value: ${{ steps.in.outputs.y }}
runs:
  using: composite
  steps:
    - id: g
      shell: bash
      run: echo "msg=${{ inputs.greeting }}, ${{ inputs.who }}" >> "$GITHUB_OUTPUT"
    - id: in
      uses: ./.github/actions/inner
      with:
        x: ${{ inputs.who }}
    - shell: bash
      run: |
        echo "inner said ${{ steps.in.outputs.y }}"
        test -f "$GITHUB_ACTION_PATH/action.yml" && echo "action path ok"
        echo "outer env $OUTER"
        echo "COMPOSITE_ENV=from-composite" >> "$GITHUB_ENV"
`,
		".github/actions/inner/action.yml": `name: inner
inputs:
  x:
    description: x
outputs:
  y:
    value: ${{ steps.i.outputs.y }}
runs:
  using: composite
  steps:
    - id: i
      shell: sh
      run: echo "y=X-${{ inputs.x }}" >> "$GITHUB_OUTPUT"
`,
		".github/actions/fails/action.yml": `name: fails
runs:
  using: composite
  steps:
    - shell: bash
      run: exit 4
    - shell: bash
      run: echo must-not-run
    - if: failure()
      shell: bash
      run: echo inner-failure-step
`,
		".github/actions/noshell/action.yml": `name: noshell
runs:
  using: composite
  steps:
    - run: echo no shell
`,
	})
	src := `on: push
jobs:
  j:
    runs-on: x
    steps:
      - id: greet
        uses: ./.github/actions/greet
        env:
          OUTER: outer-value
        with:
          who: World
      - run: |
          echo "msg=${{ steps.greet.outputs.msg }} inner=${{ steps.greet.outputs.inner }}"
          echo "COMPOSITE_ENV=$COMPOSITE_ENV"
      - id: fails
        uses: ./.github/actions/fails
        continue-on-error: true
      - run: echo "fails=${{ steps.fails.outcome }}/${{ steps.fails.conclusion }}"
      - id: noshell
        uses: ./.github/actions/noshell
        continue-on-error: true
      - run: echo "noshell=${{ steps.noshell.outcome }}"
`
	res, rec := run(t, nil, src, Options{RepoDir: repo})
	if r := resultOf(res, "j"); r != Success {
		t.Errorf("j = %s\n%s", r, rec.dump())
	}
	for _, want := range []string{"inner said X-World", "action path ok", "outer env outer-value", "msg=Hello, World inner=X-World",
		"COMPOSITE_ENV=from-composite", "inner-failure-step", "fails=failure/success", "noshell=failure"} {
		if !rec.hasOutput("j", want) {
			t.Errorf("missing %q in %q", want, rec.output("j"))
		}
	}
	if rec.hasOutput("j", "must-not-run") {
		t.Error("a composite step ran after a failure")
	}
}

func TestReusableWorkflow(t *testing.T) {
	repo := t.TempDir()
	writeFiles(t, repo, map[string]string{
		".github/workflows/callee.yml": `on:
  workflow_call:
    inputs:
      name:
        type: string
        required: true
      n:
        type: number
        default: 3
      flag:
        type: boolean
        default: false
    secrets:
      tok:
        required: true
    outputs:
      greeting:
        value: ${{ jobs.inner.outputs.g }}
jobs:
  inner:
    runs-on: x
    outputs:
      g: ${{ steps.s.outputs.g }}
    steps:
      - id: s
        run: |
          echo "g=hi ${{ inputs.name }} ${{ inputs.n }}" >> "$GITHUB_OUTPUT"
          echo "tok=${{ secrets.tok }} other=[${{ secrets.OTHER }}] flag=${{ inputs.flag }} typed=${{ inputs.n == 3 }}"
  second:
    needs: inner
    runs-on: x
    steps:
      - run: echo "second saw ${{ needs.inner.outputs.g }}"
`,
		".github/workflows/fails.yml": `on: workflow_call
jobs:
  boom:
    runs-on: x
    steps:
      - run: exit 1
`,
	})
	src := `on: push
jobs:
  call:
    uses: ./.github/workflows/callee.yml
    with:
      name: bob
    secrets:
      tok: ${{ secrets.MY }}
  after:
    needs: call
    runs-on: x
    steps:
      - run: echo "got ${{ needs.call.outputs.greeting }} ${{ needs.call.result }}"
  call-fails:
    uses: ./.github/workflows/fails.yml
  after-fails:
    needs: call-fails
    runs-on: x
    steps:
      - run: echo must-not-run
  missing-input:
    uses: ./.github/workflows/callee.yml
    secrets: inherit
`
	res, rec := run(t, nil, src, Options{RepoDir: repo, Secrets: map[string]string{"MY": "my-secret-123", "OTHER": "other-secret-456"}})
	if !rec.hasOutput("after", "got hi bob 3 success") {
		t.Errorf("after output %q\n%s", rec.output("after"), resultsString(res))
	}
	if !rec.hasOutput("call / inner", "tok=*** other=[] flag=false typed=true") {
		t.Errorf("callee output %q", rec.output(""))
	}
	if !rec.hasOutput("call / second", "second saw hi bob 3") {
		t.Errorf("callee second output %q", rec.output(""))
	}
	if r := resultOf(res, "after-fails"); r != Skipped {
		t.Errorf("after-fails = %s; %s", r, resultsString(res))
	}
	if r := resultOf(res, "missing-input"); r != Failure {
		t.Errorf("missing-input = %s", r)
	} else if j := jobResult(res, "missing-input"); !strings.Contains(j.Error, `"name" is required`) {
		t.Errorf("missing-input error %q", j.Error)
	}
	if rec.hasOutput("", "must-not-run") {
		t.Error("dependent of a failed reusable workflow ran")
	}
}

// ---- shells, working directories, defaults -------------------------------

func TestShells(t *testing.T) {
	_, perlErr := osLookPath("perl")
	src := `on: push
defaults:
  run:
    working-directory: wfdir
jobs:
  prep:
    runs-on: x
    defaults:
      run:
        working-directory: .
    steps:
      - run: echo prep
  j:
    runs-on: x
    defaults:
      run:
        shell: bash
        working-directory: sub
    steps:
      - working-directory: .
        run: mkdir -p sub/deeper wfdir
      - run: echo "pwd=${PWD#$GITHUB_WORKSPACE}"
      - working-directory: sub/deeper
        run: echo "pwd=${PWD#$GITHUB_WORKSPACE}"
      - id: pipefail
        continue-on-error: true
        run: |
          false | true
          echo pipefail-not-applied
      - id: py
        shell: python
        working-directory: .
        run: |
          import os, sys
          print("python", sys.version_info[0], os.environ["GITHUB_JOB"])
      - id: sh
        shell: sh
        working-directory: .
        run: echo "sh ran"
      - id: perl
        if: ${{ env.HAVE_PERL == 'yes' }}
        shell: perl {0}
        working-directory: .
        run: print "perl ", 1+1, "\n";
      - id: custom-no-placeholder
        shell: python3 -u
        working-directory: .
        run: print("custom", 40+2)
    env:
      HAVE_PERL: ` + map[bool]string{true: "yes", false: "no"}[perlErr == nil] + `
  default-shell:
    runs-on: x
    steps:
      - run: mkdir -p wfdir
        working-directory: .
      - id: errexit
        continue-on-error: true
        run: |
          false
          echo errexit-not-applied
      - run: echo "default pwd=${PWD#$GITHUB_WORKSPACE}"
`
	res, rec := run(t, nil, src, Options{})
	for _, j := range []string{"prep", "j", "default-shell"} {
		if r := resultOf(res, j); r != Success {
			t.Errorf("%s = %s\n%s", j, r, rec.dump())
		}
	}
	for _, want := range []string{"pwd=/sub", "pwd=/sub/deeper", "python 3 j", "sh ran", "custom 42"} {
		if !rec.hasOutput("j", want) {
			t.Errorf("missing %q in %q", want, rec.output("j"))
		}
	}
	if perlErr == nil && !rec.hasOutput("j", "perl 2") {
		t.Errorf("perl output missing: %q", rec.output("j"))
	}
	if rec.stepResult("j", "pipefail") != Success || rec.hasOutput("j", "pipefail-not-applied") {
		t.Errorf("bash pipefail: result %s output %q", rec.stepResult("j", "pipefail"), rec.output("j"))
	}
	if rec.hasOutput("default-shell", "errexit-not-applied") {
		t.Error("default shell does not stop at the first error")
	}
	if !rec.hasOutput("default-shell", "default pwd=/wfdir") {
		t.Errorf("workflow defaults.run.working-directory: %q", rec.output("default-shell"))
	}
}

func TestDynamicMatrixAndStrategyContext(t *testing.T) {
	src := `on: push
jobs:
  setup:
    runs-on: x
    outputs:
      list: ${{ steps.s.outputs.list }}
    steps:
      - id: s
        run: out list=["a","b","c"]
  m:
    needs: setup
    runs-on: x
    strategy:
      matrix:
        v: ${{ fromJSON(needs.setup.outputs.list) }}
        include:
          - v: b
            extra: yes
    steps:
      - run: print v=${{ matrix.v }} extra=${{ matrix.extra }} index=${{ strategy.job-index }}/${{ strategy.job-total }} ff=${{ strategy.fail-fast }}
  empty:
    needs: setup
    runs-on: x
    strategy:
      matrix:
        v: ${{ fromJSON('[]') }}
    steps:
      - run: print must-not-run
`
	res, rec := run(t, nil, src, Options{Backend: (&fakeScripts{}).backend()})
	for n, want := range map[string]string{
		"m (a)":      "v=a extra= index=0/3 ff=true",
		"m (b, yes)": "v=b extra=yes index=1/3 ff=true",
		"m (c)":      "v=c extra= index=2/3 ff=true",
	} {
		if r := resultOf(res, n); r != Success || !rec.hasOutput(n, want) {
			t.Errorf("%s = %s, output %q, want %q; all %s", n, r, rec.output(n), want, resultsString(res))
		}
	}
	if r := resultOf(res, "empty"); r != Failure || rec.hasOutput("", "must-not-run") {
		t.Errorf("empty matrix job = %s", r)
	}
}

func TestCycleIsARunError(t *testing.T) {
	src := `on: push
jobs:
  a:
    needs: b
    runs-on: x
    steps:
      - run: print a
  b:
    needs: a
    runs-on: x
    steps:
      - run: print b
`
	wf, _ := workflow.Parse([]byte(src), "cycle.yml")
	if wf == nil {
		t.Skip("the parser refuses the cycle")
	}
	p := &plan.Plan{Event: "push"}
	pw := &plan.Workflow{File: "cycle.yml", Source: wf}
	for _, j := range wf.Jobs {
		pw.Jobs = append(pw.Jobs, &plan.Job{ID: j.ID, Name: j.ID, Needs: j.Needs, Source: j})
	}
	p.Workflows = []*plan.Workflow{pw}
	rec := &recorder{}
	fb := (&fakeScripts{}).backend()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := New(Options{Backend: fb, Reporter: rec, WorkDir: t.TempDir()}).Run(ctx, p); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run deadlocked on a cycle")
	}
	if rec.index(func(e Event2) bool { return e.Type == RunError && strings.Contains(e.Text, "dependency cycle") }) < 0 {
		t.Errorf("no RunError for the cycle:\n%s", rec.dump())
	}
	if len(fb.Calls()) != 0 {
		t.Errorf("jobs of a cyclic workflow ran: %v", fb.Calls())
	}
}

// Step files are recycled between steps (renamed, not created anew): every
// step must still see fresh, empty files of its own, and a file a step
// replaced must be read but never emptied or reused.
func TestStepFilesFreshEachStep(t *testing.T) {
	src := `on: push
jobs:
  j:
    runs-on: x
    steps:
      - run: |
          echo "A=1" >> "$GITHUB_ENV"
          echo "o=1" >> "$GITHUB_OUTPUT"
          echo "# one" >> "$GITHUB_STEP_SUMMARY"
          echo "$GITHUB_ENV $GITHUB_OUTPUT $GITHUB_PATH $GITHUB_STATE $GITHUB_STEP_SUMMARY" > "$RUNNER_TEMP/paths1"
      - id: two
        run: |
          for f in "$GITHUB_ENV" "$GITHUB_OUTPUT" "$GITHUB_PATH" "$GITHUB_STATE" "$GITHUB_STEP_SUMMARY"; do
            test -f "$f" && test -w "$f" && ! test -s "$f" || { echo "not fresh: $f"; exit 1; }
            case " $(cat "$RUNNER_TEMP/paths1") " in *" $f "*) echo "reused path: $f"; exit 1;; esac
          done
          echo "two sees A=$A"
          printf 'KEEP=1\n' > "$RUNNER_TEMP/victim"
          rm "$GITHUB_ENV" && ln -s "$RUNNER_TEMP/victim" "$GITHUB_ENV"
          echo "p=2" >> "$GITHUB_OUTPUT" && chmod 0600 "$GITHUB_OUTPUT"
          rm "$GITHUB_PATH"
          rm "$0"
      - shell: python
        run: |
          import os
          for v in ["GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_PATH", "GITHUB_STATE", "GITHUB_STEP_SUMMARY"]:
              p = os.environ[v]
              assert os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) == 0, v
              assert os.stat(p).st_mode & 0o666 == 0o666, v
          print("three sees KEEP=" + os.environ.get("KEEP", ""))
      - run: |
          echo "victim=$(cat "$RUNNER_TEMP/victim")"
          echo "outputs ${{ steps.two.outputs.p }}"
          echo "# four" >> "$GITHUB_STEP_SUMMARY"
`
	res, rec := run(t, nil, src, Options{})
	if r := resultOf(res, "j"); r != Success {
		t.Fatalf("j = %s\n%s", r, rec.dump())
	}
	for _, want := range []string{"two sees A=1", "three sees KEEP=1", "victim=KEEP=1", "outputs 2"} {
		if !rec.hasOutput("j", want) {
			t.Errorf("missing %q in %q", want, rec.output("j"))
		}
	}
	if len(res.Summaries) != 1 || res.Summaries[0].Content != "# one\n# four\n" {
		t.Errorf("summaries %+v", res.Summaries)
	}
}

// Output comes in writes of many lines: commands in the middle of one write
// apply from their line on, in order, and secrets are hidden however the
// writes cut them.
func TestOutputBatches(t *testing.T) {
	src := `on: push
jobs:
  j:
    runs-on: x
    steps:
      - run: |
          printf 'a dyn-value-2\n::add-mask::dyn-value-2\nb dyn-value-2\n::group::g dyn-value-2\nin group\n::endgroup::\n  ::notice::note\n::stop-commands::tok\n::error::not a command\n::tok::\nafter\n'
          printf 'x s3cr3t-val'; sleep 0.2; printf 'ue split\n'
          printf 'first-line-of\nsecond-line-of\nend'
`
	// Batches (the recorder is a LinesReporter) and a plain Reporter, which
	// gets the lines one by one.
	for _, batches := range []bool{true, false} {
		rec := &recorder{}
		var rep Reporter = rec
		if !batches {
			rep = ReporterFunc(rec.Report)
		}
		res, _ := run(t, nil, src, Options{Reporter: rep, Secrets: map[string]string{"A": "s3cr3t-value", "B": "first-line-of\nsecond-line-of"}})
		if r := resultOf(res, "j"); r != Success {
			t.Fatalf("j = %s\n%s", r, rec.dump())
		}
		want := []string{"a dyn-value-2", "b ***", "in group", "::error::not a command", "after", "x *** split", "***", "***", "end"}
		if got := rec.output("j"); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("batches %v: output %q, want %q", batches, got, want)
		}
		var kinds []string
		for _, ev := range rec.events() {
			switch ev.Type {
			case Output:
				kinds = append(kinds, "out:"+ev.Text)
			case GroupStart:
				kinds = append(kinds, "group:"+ev.Text)
			case GroupEnd:
				kinds = append(kinds, "endgroup")
			case Annotation:
				kinds = append(kinds, ev.Level+":"+ev.Text)
			}
		}
		order := "out:a dyn-value-2|out:b ***|group:g ***|out:in group|endgroup|notice:note|out:::error::not a command|out:after"
		if got := strings.Join(kinds, "|"); !strings.HasPrefix(got, order) {
			t.Errorf("batches %v: events in order %q, want them to start with %q", batches, got, order)
		}
	}
}

// Script files are written over the previous step's: a shorter script
// must not keep the end of a longer one.
func TestScriptFileReused(t *testing.T) {
	short := `echo "short $(wc -c < "$0") $(cmp -s "$0" "$RUNNER_TEMP/first" && echo same || echo differs)"`
	src := `on: push
jobs:
  j:
    runs-on: x
    steps:
      - run: |
          echo "long $(basename "$0")" # ` + strings.Repeat("padding ", 40) + `
          cp "$0" "$RUNNER_TEMP/first"
      - run: ` + short + `
      - shell: python
        run: print("py")
      - run: cat "$0"
`
	res, rec := run(t, nil, src, Options{})
	if r := resultOf(res, "j"); r != Success {
		t.Fatalf("j = %s\n%s", r, rec.dump())
	}
	out := rec.output("j")
	if len(out) != 4 || !strings.HasPrefix(out[0], "long ") || out[1] != fmt.Sprintf("short %d differs", len(short)+1) || out[2] != "py" || out[3] != `cat "$0"` {
		t.Errorf("output %q", out)
	}
}

// A finished job's sandbox is removed in the background: the job that
// needs it starts meanwhile, and Run returns only once every sandbox is
// gone.
func TestTeardownInBackground(t *testing.T) {
	fb := fake.New(nil)
	bStarted := make(chan struct{})
	var once sync.Once
	fb.SetupErr = func(job *backend.JobSpec) error {
		if strings.HasSuffix(job.ID, "-b") {
			once.Do(func() { close(bStarted) })
		}
		return nil
	}
	var overlapped atomic.Bool
	fb.BeforeTeardown = func(job *backend.JobSpec) {
		if !strings.HasSuffix(job.ID, "-a") {
			return
		}
		select {
		case <-bStarted:
			overlapped.Store(true)
		case <-time.After(10 * time.Second):
		}
	}
	src := `
on: push
jobs:
  a:
    runs-on: x
    steps: [{run: "true"}]
  b:
    needs: a
    runs-on: x
    steps: [{run: "true"}]
`
	res, _ := run(t, nil, src, Options{Backend: fb, Platforms: map[string]string{"x": "img"}})
	if resultOf(res, "a") != Success || resultOf(res, "b") != Success {
		t.Fatalf("results: %s", resultsString(res))
	}
	if !overlapped.Load() {
		t.Error("b was not set up while a's sandbox was being removed")
	}
	if live := fb.Live(); len(live) != 0 {
		t.Errorf("live sandboxes after Run: %v", live)
	}
}
