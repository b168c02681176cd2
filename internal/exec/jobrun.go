package exec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/expr"
	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// jobRun is one job instance: one matrix combination in one sandbox. Its
// state is grouped by concern: what it runs (in), where (box), the
// expression contexts, the env its steps build up, the step lifecycle and
// how it is going (status).
type jobRun struct {
	e        *Executor
	job      *workflow.Job
	in       jobInput
	name     string // display name, matrix suffix included
	key      string // unique among the run's job instances
	box      jobBox
	contexts *jobContexts
	env      jobEnv
	steps    stepLifecycle
	status   jobStatus
	remote   *remoteActions
}

// jobInput is what one job instance runs: its workflow and matrix leg, with
// what the jobs it needs produced.
type jobInput struct {
	pw      *plan.Workflow
	call    *callInfo // set when the workflow runs as a reusable one
	needs   map[string]needContext
	leg     matrixLeg
	workDir string // job folders are made under it
}

// matrixLeg is one matrix combination and its place in the strategy.
type matrixLeg struct {
	combo     plan.Combo
	hasMatrix bool
	strategy  strategyContext
}

// jobBox is the job's folder and the sandbox that sees it.
type jobBox struct {
	dir  string // host path of the job folder (workspace, temp, files, ...)
	sb   backend.Sandbox
	dirs backend.Dirs // the job folder on the host and in the sandbox
}

// jobEnv is the env that steps inherit, besides the run's --env.
type jobEnv struct {
	job  []kv     // workflow env + job env, evaluated
	file []kv     // from GITHUB_ENV
	path []string // from GITHUB_PATH, first first
}

// stepLifecycle is what steps leave for later steps.
type stepLifecycle struct {
	seq     int                          // steps (and scripts) started so far
	posts   []func(ctx context.Context)  // post steps, run last first
	state   map[string]map[string]string // GITHUB_STATE by action
	spare   spareFiles                   // files of finished steps, for the next ones
	summary strings.Builder              // GITHUB_STEP_SUMMARY, all steps
}

// jobStatus is how the job instance is going.
type jobStatus struct {
	failed          bool
	cancelled       bool
	continueOnError bool
	res             *JobResult // filled as the job runs
	recorded        *JobResult // its result, once recorded (see runSafe)
}

type kv struct{ k, v string }

func setKV(list []kv, k, v string) []kv {
	for i := range list {
		if list[i].k == k {
			list[i].v = v
			return list
		}
	}
	return append(list, kv{k, v})
}

var nameExprRe = regexp.MustCompile(`(?i)\bmatrix\b`)

// run runs the instance. ctx is the matrix group's context (cancelled by
// fail-fast); runCtx is the whole run's (cancelled by Ctrl-C).
// runSafe is run with a panic turned into a failed job: a bug in Conveyor
// that some workflow finds fails that job, with the panic in its log, and
// never the process with every other job (or tenant) in it. The sandbox is
// still torn down: run defers that.
func (jr *jobRun) runSafe(ctx, runCtx context.Context) (res *JobResult) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		e := jr.e
		if jr.name == "" {
			jr.name = jr.in.call.prefixed(jr.job.ID)
		}
		if jr.key == "" {
			jr.key = fmt.Sprintf("%d-%s", e.nextJobSeq(), jr.job.ID)
		}
		msg := fmt.Sprintf("internal error in Conveyor, the job was stopped (please report it): %v", r)
		e.report(Event2{Type: Annotation, Level: "error", Job: jr.name, JobKey: jr.key, Text: e.opts.Masker.Apply(msg)})
		for _, l := range strings.Split(strings.TrimSpace(string(debug.Stack())), "\n") {
			e.report(Event2{Type: Output, Job: jr.name, JobKey: jr.key, Text: e.opts.Masker.Apply(l)})
		}
		if jr.status.recorded != nil {
			res = jr.status.recorded // the panic came after its result was recorded
			return
		}
		res = &JobResult{Workflow: jr.in.pw.File, JobID: jr.job.ID, Name: jr.name, Result: Failure, Error: e.opts.Masker.Apply(msg)}
		e.report(Event2{Type: JobFinished, Job: jr.name, JobKey: jr.key, Result: Failure})
		e.addResult(res)
	}()
	return jr.run(ctx, runCtx)
}

func (jr *jobRun) run(ctx, runCtx context.Context) *JobResult {
	e := jr.e
	start := time.Now()
	c := jr.prepare()
	if kept := e.kept(jr.job.ID, jr.name); kept != nil {
		e.report(Event2{Type: Notice, Job: jr.name, JobKey: jr.key, Text: "kept from the earlier attempt (" + kept.Result + "): not run again"})
		e.report(Event2{Type: JobFinished, Job: jr.name, JobKey: jr.key, Result: kept.Result})
		e.addResult(kept)
		return kept
	}
	jr.status.res = &JobResult{Workflow: jr.in.pw.File, JobID: jr.job.ID, Name: jr.name, Started: start}
	e.report(Event2{Type: JobStarted, Job: jr.name, JobKey: jr.key})
	if ctx.Err() != nil {
		return jr.finish(Cancelled, nil)
	}
	if jr.job.ContinueOnError != "" {
		jr.status.continueOnError = boolValue(jr.job.ContinueOnError, c)
	}
	timeout, err := jr.timeout(c)
	if err != nil {
		return jr.finish(Failure, err)
	}
	jobCtx, cancelJob := context.WithTimeout(ctx, timeout)
	defer cancelJob()

	release, result, err := jr.setUp(jobCtx, runCtx, c, timeout)
	defer release()
	if result != "" {
		return jr.finish(result, err)
	}
	sc := jr.runSteps(jobCtx, runCtx)
	jr.status.res.Outputs = jr.outputs(sc)
	switch {
	case runCtx.Err() != nil:
		return jr.finish(Cancelled, nil)
	case jobCtx.Err() == context.DeadlineExceeded && ctx.Err() == nil:
		jr.notice(fmt.Sprintf("The job has exceeded the maximum execution time of %v", timeout))
		return jr.finish(jr.failureUnlessContinue(), nil)
	case ctx.Err() != nil:
		return jr.finish(Cancelled, nil)
	case jr.status.failed:
		return jr.finish(jr.failureUnlessContinue(), nil)
	}
	return jr.finish(Success, nil)
}

// prepare sets the instance's contexts, name and key, and returns the
// context that its job-level expressions (runs-on, timeout, ...) see.
func (jr *jobRun) prepare() *expr.Context {
	cx := jr.e.baseContexts(jr.in.pw.Source, jr.in.call)
	cx.needs = jr.in.needs
	cx.matrix = map[string]any{}
	for k, v := range jr.in.leg.combo.Values {
		cx.matrix[k] = v
	}
	st := jr.in.leg.strategy
	cx.strategy = &st
	cx.github.job = jr.job.ID
	jr.contexts = cx
	c := newContext(cx.values())

	name := jr.job.Name
	if name == "" {
		name = jr.job.ID
	}
	if n, err := interp(name, c); err == nil {
		if jr.in.leg.hasMatrix && !nameExprRe.MatchString(jr.job.Name) {
			n += jr.in.leg.combo.Suffix()
		}
		name = n
	}
	jr.name = jr.in.call.prefixed(name)
	jr.key = fmt.Sprintf("%d-%s", jr.e.nextJobSeq(), jr.job.ID)
	return c
}

// finish records the instance's result (err, when set, says why it failed)
// and returns it.
func (jr *jobRun) finish(result string, err error) *JobResult {
	e, res := jr.e, jr.status.res
	res.Result = result
	res.Duration = time.Since(res.Started)
	if err != nil {
		res.Error = e.opts.Masker.Apply(err.Error())
		jr.notice("Error: " + err.Error())
	}
	e.report(Event2{Type: JobFinished, Job: jr.name, JobKey: jr.key, Result: result, Duration: res.Duration})
	if s := jr.steps.summary.String(); s != "" {
		e.addSummary(jr.name, e.opts.Masker.Apply(s))
	}
	e.addResult(res)
	jr.status.recorded = res
	return res
}

// timeout is the job's timeout-minutes (360 by default), capped by the
// quota's most.
func (jr *jobRun) timeout(c *expr.Context) (time.Duration, error) {
	timeout := 360 * time.Minute
	if jr.job.TimeoutMinutes != "" {
		d, err := minutes(jr.job.TimeoutMinutes, c)
		if err != nil {
			return 0, err
		}
		timeout = d
	}
	if limit := jr.e.opts.MaxTimeout; limit > 0 && timeout > limit {
		jr.notice(fmt.Sprintf("The job's timeout of %v is capped to %v, the most its organisation's quota allows", timeout, limit))
		timeout = limit
	}
	return timeout, nil
}

// setUp makes the job folder, resolves the remote actions, starts the
// sandbox (told the job's timeout) and evaluates the job's env. A
// non-empty result says the job ends there (with err saying why when it
// failed). release, always set and called once the job is done, tears the
// sandbox down and removes the folder.
func (jr *jobRun) setUp(jobCtx, runCtx context.Context, c *expr.Context, timeout time.Duration) (release func(), result string, err error) {
	release = func() {}
	spec, b, err := jr.sandboxSpec(c)
	if u, ok := err.(errUnmapped); ok {
		// As act does: a platform with no runner is skipped, not failed;
		// the summary says why.
		reason := u.reason()
		jr.notice("skipped: " + reason)
		jr.status.res.Error = reason
		return release, Skipped, nil
	}
	if err != nil {
		return release, Failure, err
	}
	spec.Timeout = timeout
	if err := jr.makeJobDir(); err != nil {
		return release, Failure, err
	}
	removeDir := !jr.e.opts.KeepJobDirs
	release = func() {
		if removeDir {
			os.RemoveAll(jr.box.dir)
		}
	}
	// Set up job: every remote action resolved before the sandbox and the
	// first step, so that a workflow that cannot run fails now.
	jr.remote = newRemoteActions(jr.e.opts.Actions, jr.box.dir, jr.notice)
	if err := jr.remote.preflight(jobCtx, jr.job.Steps, 0); err != nil {
		return release, Failure, err
	}
	spec.ImageSteps = jr.remote.imageSteps(jr.job.Steps, "", 0)
	sandboxStart := time.Now()
	if result, err := jr.startSandbox(jobCtx, runCtx, spec, b, c); result != "" {
		return release, result, err
	}
	release = func() {
		jr.releaseCache()
		jr.e.teardownLater(runCtx, jr, jr.box.sb, removeDir, sandboxStart)
	}
	if err := jr.enterSandbox(jobCtx); err != nil {
		return release, Failure, err
	}
	return release, "", nil
}

// makeJobDir makes the job folder and the folders in it.
func (jr *jobRun) makeJobDir() error {
	jr.box.dir = filepath.Join(jr.in.workDir, jr.key)
	for _, d := range []string{"workspace", "temp", "tool", "_actions", "files"} {
		if err := os.MkdirAll(filepath.Join(jr.box.dir, d), 0o777); err != nil {
			return errs.Wrap("job dir", errs.Unavailable, err)
		}
	}
	os.Chmod(jr.box.dir, 0o777)
	return nil
}

// startSandbox sets the sandbox up on backend b; a non-empty result says
// it could not.
func (jr *jobRun) startSandbox(jobCtx, runCtx context.Context, spec *backend.JobSpec, b backend.Backend, c *expr.Context) (string, error) {
	e := jr.e
	spec.JobDir = jr.box.dir
	spec.ID = "conveyor-" + e.token + "-" + jr.key
	spec.Name = jr.name
	setupLog := jr.noticeWriter()
	sandboxStart := time.Now()
	sb, err := b.Setup(jobCtx, spec, setupLog)
	setupLog.Flush()
	if err != nil {
		e.addSandboxTime(sandboxStart)
		if runCtx.Err() != nil {
			return Cancelled, nil
		}
		if errs.Is(err, errs.NotFound) && spec.Container == nil && spec.Image != "" {
			l := firstOr(jr.labels(c), "LABEL")
			err = fmt.Errorf("%w; map runs-on %s to an image you have with -P %s=IMAGE, or to this host with -P %s=-self-hosted", err, l, l, l)
		}
		return Failure, err
	}
	jr.box.sb = sb
	jr.box.dirs = sb.Dirs()
	return "", nil
}

// enterSandbox completes the contexts with the sandbox's paths, writes the
// event file, evaluates the workflow and job env and checks that the
// actions' runtimes are there.
func (jr *jobRun) enterSandbox(jobCtx context.Context) error {
	if d, ok := jr.box.sb.(backend.Describer); ok {
		jr.notice(d.Describe())
	}
	jr.contexts.github.workspace = jr.sandboxPath("workspace")
	jr.contexts.runner.temp = jr.sandboxPath("temp")
	jr.contexts.runner.toolCache = jr.toolCache()
	jr.contexts.job = &jobContext{status: Success}
	if err := jr.writeEventFile(); err != nil {
		return err
	}
	// Workflow and job env, evaluated in order (job env may read workflow env).
	for _, list := range [][]workflow.KV{jr.in.pw.Source.Env, jr.job.Env} {
		for _, p := range list {
			v, err := interp(p.Value, jr.exprContext(nil, nil))
			if err != nil {
				return errs.Wrap(fmt.Sprintf("env %s (line %d)", p.Key, p.Pos.Line), errs.Invalid, err)
			}
			jr.env.job = setKV(jr.env.job, p.Key, v)
		}
	}
	if err := jr.checkNodeActions(jobCtx); err != nil {
		return err
	}
	return jr.checkRemoteNode(jobCtx)
}

// runSteps runs the pre steps, the steps, then the post steps (last
// first; after a cancel or timeout, with a deadline of their own).
func (jr *jobRun) runSteps(jobCtx, runCtx context.Context) *scope {
	sc := &scope{steps: map[string]stepContext{}}
	jr.runPres(jobCtx, sc)
	for i, s := range jr.job.Steps {
		jr.runStep(jobCtx, runCtx, sc, s, i)
	}
	for i := len(jr.steps.posts) - 1; i >= 0; i-- {
		pctx := jobCtx
		if jobCtx.Err() != nil {
			var cancel context.CancelFunc
			pctx, cancel = context.WithTimeout(context.WithoutCancel(runCtx), cleanupTimeout)
			defer cancel()
		}
		jr.steps.posts[i](pctx)
	}
	return sc
}

// outputs evaluates the job's outputs with the steps context.
func (jr *jobRun) outputs(sc *scope) map[string]string {
	if len(jr.job.Outputs) == 0 {
		return nil
	}
	out := map[string]string{}
	oc := jr.exprContext(sc, nil)
	for _, o := range jr.job.Outputs {
		v, err := interp(o.Value, oc)
		if err != nil {
			jr.notice(fmt.Sprintf("output %s: %v", o.Key, err))
			continue
		}
		if jr.e.opts.Masker.Apply(v) != v {
			// As GitHub's runner: an output holding a secret would
			// carry it past the log masking into the store and to
			// other jobs' logs.
			jr.notice(fmt.Sprintf("Skip output '%s' since it may contain secret.", o.Key))
			continue
		}
		out[o.Key] = v
	}
	return out
}

// teardownLater removes a finished job's sandbox, then its folder, in the
// background: the job's slot and the jobs that need it do not wait for the
// engine's removal (a container's takes 100–300 ms). Run and RunJob wait
// for every teardown before they return, so nothing outlives them.
func (e *Executor) teardownLater(runCtx context.Context, jr *jobRun, sb backend.Sandbox, removeDir bool, started time.Time) {
	e.teardowns.Add(1)
	go func() {
		defer e.teardowns.Done()
		defer e.nodes.forget(sb)
		tctx, cancel := context.WithTimeout(context.WithoutCancel(runCtx), cleanupTimeout)
		defer cancel()
		if err := sb.Teardown(tctx); err != nil {
			jr.notice("teardown: " + err.Error())
		}
		e.addSandboxTime(started)
		if removeDir {
			os.RemoveAll(jr.box.dir)
		}
	}()
}

func (jr *jobRun) failureUnlessContinue() string {
	if jr.status.continueOnError {
		return Success
	}
	return Failure
}

func maxOr(a, b int) int {
	if a > 0 {
		return a
	}
	return b
}

func minutes(s string, c *expr.Context) (time.Duration, error) {
	v, err := interp(s, c)
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f <= 0 {
		return 0, errs.E("timeout-minutes", errs.Invalid, "%q is not a positive number", v)
	}
	return time.Duration(f * float64(time.Minute)), nil
}

func (jr *jobRun) writeEventFile() error {
	ev := jr.e.opts.Event.Payload
	if ev == nil {
		ev = map[string]any{}
	}
	b, err := marshalJSON(ev)
	if err != nil {
		return errs.Wrap("event", errs.Invalid, err)
	}
	return os.WriteFile(filepath.Join(jr.box.dir, "files", "event.json"), b, 0o666)
}

func (jr *jobRun) notice(text string) {
	jr.e.report(Event2{Type: Notice, Job: jr.name, JobKey: jr.key, Text: jr.e.opts.Masker.Apply(text)})
}

// noticeWriter turns backend set-up output into notice lines.
func (jr *jobRun) noticeWriter() *lineSink {
	return newLineSink(func(l string) { jr.notice(l) })
}

// kept returns a copy of the kept instance of job named name, if any (see
// Options.Keep).
func (e *Executor) kept(jobID, name string) *JobResult {
	for _, k := range e.opts.Keep {
		if k != nil && k.JobID == jobID && k.Name == name {
			c := *k
			c.Reused = true
			return &c
		}
	}
	return nil
}
