package exec

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/expr"
	"github.com/conveyor-ci/conveyor/internal/logs"
	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// scope is where steps run: the job itself, or a composite action.
type scope struct {
	steps      map[string]stepContext // the steps context
	inputs     map[string]any         // the inputs context of a composite action
	env        []kv                   // env of the enclosing uses: step (composite)
	actionPath string                 // sandbox path of the composite action
	actionDir  string                 // host path of the composite action
	prefix     string                 // display prefix for nested steps
	failed     bool                   // a step of this scope failed
	parent     *scope                 // enclosing scope
	source     actionSource           // the remote action running in this scope
}

// exprContext is the context for expressions of a step in scope sc, with
// stepEnv (the step's own env, evaluated) on top of the env context.
func (jr *jobRun) exprContext(sc *scope, stepEnv []kv) *expr.Context {
	vals := jr.contexts.values()
	env := map[string]any{}
	for k, v := range jr.e.opts.Env {
		env[k] = v
	}
	for _, layer := range [][]kv{jr.env.job, jr.env.file, scopeEnv(sc), stepEnv} {
		for _, p := range layer {
			env[p.k] = p.v
		}
	}
	vals["env"] = env
	if sc != nil && sc.actionPath != "" {
		gh := jr.contexts.github
		gh.action = &actionFacts{path: sc.actionPath, repository: sc.source.repository, ref: sc.source.ref}
		vals["github"] = gh.value()
	}
	if sc != nil {
		vals["steps"] = stepsValue(sc.steps)
		if sc.inputs != nil {
			vals["inputs"] = sc.inputs
		}
	}
	c := newContext(vals)
	failed := jr.status.failed
	if sc != nil {
		failed = failed || sc.failed
	}
	c.Status = expr.Status{Failed: failed, Cancelled: jr.status.cancelled}
	ws := filepath.Join(jr.box.dir, "workspace")
	c.HashFiles = func(patterns []string) (string, error) { return expr.HashFiles(ws, patterns) }
	return c
}

func scopeEnv(sc *scope) []kv {
	if sc == nil {
		return nil
	}
	return append(scopeEnv(sc.parent), sc.env...)
}

// processEnv is the environment of a step's process.
func (jr *jobRun) processEnv(sc *scope, stepEnv []kv, files map[string]string, action string) map[string]string {
	ev := jr.e.opts.Event
	gh := &jr.contexts.github
	env := map[string]string{
		"CI": "true", "GITHUB_ACTIONS": "true", "CONVEYOR": "true",
		"GITHUB_WORKSPACE": jr.sandboxPath("workspace"), "GITHUB_EVENT_PATH": jr.sandboxPath("files/event.json"),
		"GITHUB_EVENT_NAME": ev.Name, "GITHUB_SHA": ev.SHA, "GITHUB_REF": ev.Ref,
		"GITHUB_REF_NAME": gh.event.refName, "GITHUB_REF_TYPE": gh.event.refType,
		"GITHUB_REPOSITORY": ev.Repository, "GITHUB_REPOSITORY_OWNER": gh.repo.owner,
		"GITHUB_ACTOR": ev.Actor, "GITHUB_TRIGGERING_ACTOR": ev.Actor, "GITHUB_WORKFLOW": gh.run.workflow,
		"GITHUB_WORKFLOW_REF": gh.run.workflowRef,
		"GITHUB_RUN_ID":       ev.RunID, "GITHUB_RUN_NUMBER": strconv.Itoa(ev.RunNumber), "GITHUB_RUN_ATTEMPT": "1",
		"GITHUB_JOB": jr.job.ID, "GITHUB_ACTION": action, "GITHUB_SERVER_URL": gh.repo.serverURL,
		"GITHUB_API_URL": gh.repo.apiURL(), "GITHUB_GRAPHQL_URL": gh.repo.apiURL() + "/graphql",
		"GITHUB_HEAD_REF": ev.HeadRef, "GITHUB_BASE_REF": ev.BaseRef, "GITHUB_RETENTION_DAYS": "0",
		"RUNNER_OS": "Linux", "RUNNER_ARCH": runnerArch(), "RUNNER_NAME": "conveyor", "RUNNER_ENVIRONMENT": "self-hosted",
		"RUNNER_TEMP": jr.sandboxPath("temp"), "RUNNER_TOOL_CACHE": jr.toolCache(), "AGENT_TOOLSDIRECTORY": jr.toolCache(),
	}
	if t := jr.e.opts.Secrets["GITHUB_TOKEN"]; t != "" {
		env["GITHUB_TOKEN"] = t
	}
	if sc != nil && sc.actionPath != "" {
		env["GITHUB_ACTION_PATH"] = sc.actionPath
		env["GITHUB_ACTION_REPOSITORY"] = sc.source.repository
		env["GITHUB_ACTION_REF"] = sc.source.ref
	}
	jr.cacheEnv(env)
	for k, v := range files {
		env[k] = v
	}
	for k, v := range jr.e.opts.Env {
		env[k] = v
	}
	for _, layer := range [][]kv{jr.env.job, jr.env.file, scopeEnv(sc), stepEnv} {
		for _, p := range layer {
			env[p.k] = p.v
		}
	}
	return env
}

func (jr *jobRun) sandboxFiles(host map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range host {
		out[k] = jr.toSandbox(v)
	}
	return out
}

// stepRun is the state of one step while it runs.
type stepRun struct {
	jr       *jobRun
	sc       *scope
	step     *workflow.Step
	id       string
	name     string
	env      []kv
	outputs  map[string]string
	files    map[string]string // host paths
	unsecure bool
	actionID string // key for GITHUB_STATE of the action this step runs
}

// runStep runs one step of scope sc and records it in sc.steps.
func (jr *jobRun) runStep(jobCtx, runCtx context.Context, sc *scope, s *workflow.Step, index int) {
	e := jr.e
	if jobCtx.Err() != nil && !jr.status.cancelled {
		jr.status.cancelled = true
		if jobCtx.Err() == context.DeadlineExceeded && runCtx.Err() == nil {
			jr.status.failed = true
		}
	}
	jr.steps.seq++
	id := s.ID
	if id == "" {
		id = fmt.Sprintf("__%d", jr.steps.seq)
	}
	sr := &stepRun{jr: jr, sc: sc, step: s, id: id, outputs: map[string]string{}, actionID: id}
	if sc.parent == nil {
		sr.actionID = stateKey(index) // its pre: ran before the step numbers
	}
	start := time.Now()
	c, setupErr := sr.prepare(index)

	okSoFar := !jr.status.failed && !sc.failed && !jr.status.cancelled
	run, err := evalIf(s.If, c, okSoFar)
	if setupErr == nil && err != nil {
		setupErr = err
	}
	if setupErr == nil && !run {
		sc.steps[id] = stepContext{outcome: Skipped, conclusion: Skipped}
		e.report(Event2{Type: StepFinished, Job: jr.name, JobKey: jr.key, Step: sr.name, StepID: id, Result: Skipped})
		return
	}
	e.report(Event2{Type: StepStarted, Job: jr.name, JobKey: jr.key, Step: sr.name, StepID: id})

	ctx, cancel, err := sr.context(jobCtx, runCtx, c)
	defer cancel()
	if setupErr == nil {
		setupErr = err
	}
	contErr := false
	if s.ContinueOnError != "" {
		contErr = boolValue(s.ContinueOnError, c)
	}
	outcome := Success
	if setupErr != nil {
		sr.errorLine(setupErr)
		outcome = Failure
	} else if err := sr.execute(ctx, c); err != nil {
		sr.executeError(ctx, jobCtx, err)
		outcome = Failure
	}
	sr.record(outcome, contErr, start)
}

// prepare evaluates the step's env (each with the env below it) and name,
// and returns the context of its other expressions.
func (sr *stepRun) prepare(index int) (*expr.Context, error) {
	jr, sc, s := sr.jr, sr.sc, sr.step
	var stepEnv []kv
	var setupErr error
	for _, p := range s.Env {
		v, err := interp(p.Value, jr.exprContext(sc, stepEnv))
		if err != nil {
			setupErr = errs.Wrap(fmt.Sprintf("env %s (line %d)", p.Key, p.Pos.Line), errs.Invalid, err)
			break
		}
		stepEnv = setKV(stepEnv, p.Key, v)
	}
	sr.env = stepEnv
	c := jr.exprContext(sc, stepEnv)
	// Only an explicit name is evaluated; the default one shows the run:
	// text as written, as GitHub does. Names are masked like output.
	sr.name = plan.StepName(s, index)
	if s.Name != "" && strings.Contains(s.Name, "${{") {
		if v, err := interp(s.Name, c); err == nil {
			sr.name = v
		}
	}
	sr.name = jr.e.opts.Masker.Apply(sc.prefix + sr.name)
	return c, setupErr
}

// context is the step's context: the job's, or after a cancel or timeout a
// cleanup deadline of its own; bounded by its timeout-minutes (an error
// when that does not evaluate).
func (sr *stepRun) context(jobCtx, runCtx context.Context, c *expr.Context) (context.Context, context.CancelFunc, error) {
	ctx, cancel := jobCtx, context.CancelFunc(func() {})
	if jobCtx.Err() != nil {
		ctx, cancel = context.WithTimeout(context.WithoutCancel(runCtx), cleanupTimeout)
	}
	if sr.step.TimeoutMinutes == "" {
		return ctx, cancel, nil
	}
	d, err := minutes(sr.step.TimeoutMinutes, c)
	if err != nil {
		return ctx, cancel, err
	}
	ctx, cancelStep := context.WithTimeout(ctx, d)
	return ctx, func() { cancelStep(); cancel() }, nil
}

// executeError reports why the step failed: its timeout, the job's
// cancel, or err.
func (sr *stepRun) executeError(ctx, jobCtx context.Context, err error) {
	switch {
	case ctx.Err() == context.DeadlineExceeded && jobCtx.Err() == nil:
		sr.errorLine(errs.E("step", errs.Timeout, "the step has timed out after %s", sr.step.TimeoutMinutes+" minutes"))
	case jobCtx.Err() != nil:
		sr.errorLine(errs.E("step", errs.Canceled, "the step was cancelled"))
	default:
		sr.errorLine(err)
	}
}

// record sets the step's outcome and conclusion in the steps context and
// the scope's and job's status, and reports the step finished.
func (sr *stepRun) record(outcome string, contErr bool, start time.Time) {
	jr, sc := sr.jr, sr.sc
	conclusion := outcome
	if outcome == Failure && contErr {
		conclusion = Success
	}
	if conclusion == Failure {
		// Inside a composite action a failure fails the scope; the uses:
		// step that runs it then fails in its own scope.
		sc.failed = true
		if sc.actionPath == "" {
			jr.status.failed = true
		}
	}
	outs := make(map[string]string, len(sr.outputs))
	for k, v := range sr.outputs {
		outs[k] = v
	}
	sc.steps[sr.id] = stepContext{outputs: outs, outcome: outcome, conclusion: conclusion}
	if outcome != conclusion {
		jr.e.report(Event2{Type: Notice, Job: jr.name, JobKey: jr.key, Step: sr.name, StepID: sr.id, Text: "continue-on-error: the step failed, the job goes on"})
	}
	jr.e.report(Event2{Type: StepFinished, Job: jr.name, JobKey: jr.key, Step: sr.name, StepID: sr.id, Result: conclusion, Duration: time.Since(start)})
}

func (sr *stepRun) errorLine(err error) {
	sr.jr.e.report(Event2{Type: Annotation, Level: "error", Job: sr.jr.name, JobKey: sr.jr.key, Step: sr.name, StepID: sr.id,
		Text: sr.jr.e.opts.Masker.Apply(err.Error())})
}

// execute runs the step by its kind.
func (sr *stepRun) execute(ctx context.Context, c *expr.Context) error {
	s := sr.step
	if s.Run != "" {
		return sr.runScript(ctx, c, s.Run, s.Shell, s.WorkingDirectory)
	}
	if kind := artifactAction(s.Uses); kind != "" {
		return sr.artifactStep(ctx, c, kind)
	}
	if kind := cacheAction(s.Uses); kind != "" {
		return sr.cacheStep(ctx, c, kind)
	}
	switch plan.StepKind(s.Uses) {
	case "checkout":
		return sr.checkout(ctx, c)
	case "local-action":
		return sr.localAction(ctx, c)
	case "remote-action":
		return sr.remoteAction(ctx, c)
	case "docker":
		with, err := sr.evalWith(c)
		if err != nil {
			return err
		}
		return sr.containerAction(ctx, c, strings.TrimPrefix(s.Uses, "docker://"), &workflow.Action{Runs: workflow.Runs{Using: "docker"}}, with, "", "")
	case "run":
		return errs.E("step", errs.Invalid, "step has neither run nor uses")
	}
	return errs.E("step", errs.Invalid, "step uses %q: unknown kind of action", s.Uses)
}

// evalWith evaluates the step's with: values.
func (sr *stepRun) evalWith(c *expr.Context) (map[string]string, error) {
	with := map[string]string{}
	for _, p := range sr.step.With {
		v, err := interp(p.Value, c)
		if err != nil {
			return nil, errs.Wrap(fmt.Sprintf("with %s (line %d)", p.Key, p.Pos.Line), errs.Invalid, err)
		}
		with[p.Key] = v
	}
	return with, nil
}

// runScript runs a run: script with its shell.
func (sr *stepRun) runScript(ctx context.Context, c *expr.Context, script, shell, wd string) error {
	jr := sr.jr
	body, err := interp(script, c)
	if err != nil {
		return errs.Wrap("run", errs.Invalid, err)
	}
	if shell == "" {
		shell = jr.defaultShell(sr.sc)
	}
	if shell, err = interp(shell, c); err != nil {
		return err
	}
	argv, fallback, ext, err := shellArgv(shell)
	if err != nil {
		return err
	}
	if wd == "" {
		wd = jr.defaultWorkingDirectory(sr.sc)
	}
	if wd, err = interp(wd, c); err != nil {
		return err
	}
	script = body
	if ext == ".sh" && shell != "sh" && !strings.HasSuffix(script, "\n") {
		script += "\n"
	}
	jr.steps.seq++
	scriptHost := filepath.Join(jr.box.dir, "temp", fmt.Sprintf("%s-%d%s", safeName(sr.id), jr.steps.seq, ext))
	if err := jr.writeScript(scriptHost, []byte(script)); err != nil {
		return err
	}
	scriptPath := jr.toSandbox(scriptHost)
	for _, a := range [][]string{argv, fallback} {
		for i := range a {
			a[i] = strings.ReplaceAll(a[i], "{0}", scriptPath)
		}
	}
	if err := jr.checkWorkdir(wd, jr.workdir(wd)); err != nil {
		return err
	}
	return sr.process(ctx, &backend.Process{Argv: argv, Fallback: fallback, Dir: jr.workdir(wd)}, nil, "__run")
}

// process runs p (Argv, Fallback and Dir set) in the sandbox with fresh
// GITHUB_* files, handles its output and workflow commands, and applies the
// files afterwards.
func (sr *stepRun) process(ctx context.Context, p *backend.Process, extraEnv map[string]string, action string) error {
	jr := sr.jr
	files, err := jr.stepFiles(jr.steps.seq)
	if err != nil {
		return err
	}
	sr.files = files
	env := jr.processEnv(sr.sc, sr.env, jr.sandboxFiles(files), action)
	for k, v := range extraEnv {
		env[k] = v
	}
	if st := jr.steps.state[sr.actionID]; st != nil {
		for k, v := range st {
			env["STATE_"+k] = v
		}
	}
	sr.unsecure = strings.EqualFold(env["ACTIONS_ALLOW_UNSECURE_COMMANDS"], "true")
	sink := outputSink(&outHandler{sr: sr})
	p.Env, p.PathPrepend = env, jr.env.path
	code, err := jr.box.sb.Exec(ctx, p, sink)
	sink.Flush()
	return sr.finish(code, err, "Process completed with exit code %d.")
}

// finish applies the step's GITHUB_* files and turns the exit into the
// step's error: the run error first, then a non-zero code (exitMsg has one
// %d), then a malformed file.
func (sr *stepRun) finish(code int, err error, exitMsg string) error {
	ferr := sr.applyFiles()
	switch {
	case err != nil:
		return err
	case code != 0:
		return errs.E("", errs.Other, exitMsg, code)
	}
	return ferr
}

// applyFiles reads the step's GITHUB_* files into the job.
func (sr *stepRun) applyFiles() error {
	jr := sr.jr
	read := func(name string) ([]kvPair, error) {
		b := jr.takeStepFile(sr.files[name], name)
		if len(b) == 0 {
			return nil, nil
		}
		return parseEnvFile(bytes.NewReader(b))
	}
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	outs, err := read("GITHUB_OUTPUT")
	keep(err)
	for _, p := range outs {
		sr.outputs[p.Key] = p.Value
	}
	envs, err := read("GITHUB_ENV")
	keep(err)
	for _, p := range envs {
		jr.env.file = setKV(jr.env.file, p.Key, p.Value)
	}
	states, err := read("GITHUB_STATE")
	keep(err)
	for _, p := range states {
		jr.setState(sr.actionID, p.Key, p.Value)
	}
	if b := jr.takeStepFile(sr.files["GITHUB_PATH"], "GITHUB_PATH"); len(b) > 0 {
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				jr.env.path = append([]string{l}, jr.env.path...)
			}
		}
	}
	if b := jr.takeStepFile(sr.files["GITHUB_STEP_SUMMARY"], "GITHUB_STEP_SUMMARY"); len(b) > 0 {
		jr.steps.summary.Write(b)
		if b[len(b)-1] != '\n' {
			jr.steps.summary.WriteByte('\n')
		}
	}
	return firstErr
}

func (jr *jobRun) setState(action, k, v string) {
	if jr.steps.state == nil {
		jr.steps.state = map[string]map[string]string{}
	}
	if jr.steps.state[action] == nil {
		jr.steps.state[action] = map[string]string{}
	}
	jr.steps.state[action][k] = v
}

func (jr *jobRun) defaultShell(sc *scope) string {
	if sc != nil && sc.actionPath != "" {
		return "" // composite steps must name their shell; shellArgv reports it
	}
	if d := jr.job.Defaults; d != nil && d.Shell != "" {
		return d.Shell
	}
	if d := jr.in.pw.Source.Defaults; d != nil && d.Shell != "" {
		return d.Shell
	}
	return "default"
}

func (jr *jobRun) defaultWorkingDirectory(sc *scope) string {
	if sc != nil && sc.actionPath != "" {
		return ""
	}
	if d := jr.job.Defaults; d != nil && d.WorkingDirectory != "" {
		return d.WorkingDirectory
	}
	if d := jr.in.pw.Source.Defaults; d != nil && d.WorkingDirectory != "" {
		return d.WorkingDirectory
	}
	return ""
}

// workdir resolves a working-directory against the workspace.
func (jr *jobRun) workdir(wd string) string {
	ws := jr.sandboxPath("workspace")
	if wd == "" {
		return ws
	}
	if strings.HasPrefix(wd, "/") {
		return wd
	}
	return ws + "/" + strings.TrimPrefix(wd, "./")
}

func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// shellArgv turns a shell: value into argv (with {0} for the script), the
// argv to run instead when argv[0] is not in the sandbox's PATH (nil:
// none), and the script file's extension, as the GitHub runner does on
// Linux.
func shellArgv(shell string) (argv, fallback []string, ext string, err error) {
	switch strings.TrimSpace(shell) {
	case "":
		return nil, nil, "", errs.E("shell", errs.Invalid, "a run step in a composite action must name its shell")
	case "default":
		// bash -e when the sandbox has bash, else sh -e (GitHub's default),
		// resolved by the sandbox in the step's PATH.
		return []string{"bash", "-e", "{0}"}, []string{"sh", "-e", "{0}"}, ".sh", nil
	case "bash":
		return []string{"bash", "--noprofile", "--norc", "-eo", "pipefail", "{0}"}, nil, ".sh", nil
	case "sh":
		return []string{"sh", "-e", "{0}"}, nil, ".sh", nil
	case "python":
		return []string{"python", "{0}"}, []string{"python3", "{0}"}, ".py", nil
	case "pwsh":
		return []string{"pwsh", "-command", ". '{0}'"}, nil, ".ps1", nil
	case "powershell":
		return []string{"powershell", "-command", ". '{0}'"}, nil, ".ps1", nil
	case "cmd":
		return nil, nil, "", errs.E("shell", errs.Invalid, "shell cmd needs a Windows runner")
	}
	fields := strings.Fields(shell)
	if !strings.Contains(shell, "{0}") {
		fields = append(fields, "{0}")
	}
	return fields, nil, "", nil
}

// outHandler handles a step's output lines: workflow commands, masking.
type outHandler struct {
	sr        *stepRun
	stopToken string
}

// lines handles the lines of one write of output: runs of plain lines are
// masked and reported together, the others (workflow commands, the end of
// stop-commands) go through line one by one, in order.
func (h *outHandler) lines(ls []string) {
	start := 0
	for i, l := range ls {
		if h.plain(l) {
			continue
		}
		h.emitLines(ls[start:i])
		h.line(l)
		start = i + 1
	}
	h.emitLines(ls[start:])
}

// plain reports that line would certainly be shown as it is: no workflow
// command, no end of stop-commands. It only decides the cheap cases (the
// first byte that is not ASCII white space is ASCII and not ':'); line
// decides the others.
func (h *outHandler) plain(l string) bool {
	for i := 0; i < len(l); i++ {
		switch c := l[i]; c {
		case ' ', '\t', '\n', '\v', '\f', '\r':
		case ':':
			return false
		default:
			return c < 0x80
		}
	}
	return true
}

func (h *outHandler) emitLines(ls []string) {
	if len(ls) == 0 {
		return
	}
	sr := h.sr
	e := sr.jr.e
	e.opts.Masker.ApplyLines(ls)
	e.reportLines(Event2{Job: sr.jr.name, JobKey: sr.jr.key, Step: sr.name, StepID: sr.id}, ls)
}

func (h *outHandler) line(l string) {
	sr := h.sr
	jr := sr.jr
	e := jr.e
	if h.stopToken != "" {
		if strings.TrimSpace(l) == "::"+h.stopToken+"::" {
			h.stopToken = ""
			return
		}
		h.emit(l)
		return
	}
	cmd, ok := parseCommand(l)
	if !ok {
		h.emit(l)
		return
	}
	switch cmd.Name {
	case "add-mask":
		e.opts.Masker.Add(cmd.Data)
		return
	case "set-output":
		if n := cmd.Props["name"]; n != "" {
			sr.outputs[n] = cmd.Data
		}
		return
	case "save-state":
		if n := cmd.Props["name"]; n != "" {
			jr.setState(sr.actionID, n, cmd.Data)
		}
		return
	case "set-env":
		if !sr.unsecure {
			h.annot("error", "The `set-env` command is disabled. Please upgrade to using Environment Files or opt into unsecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_COMMANDS` environment variable to `true`.", cmd)
			return
		}
		if n := cmd.Props["name"]; n != "" {
			jr.env.file = setKV(jr.env.file, n, cmd.Data)
		}
		return
	case "add-path":
		if !sr.unsecure {
			h.annot("error", "The `add-path` command is disabled. Please upgrade to using Environment Files or opt into unsecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_COMMANDS` environment variable to `true`.", cmd)
			return
		}
		jr.env.path = append([]string{cmd.Data}, jr.env.path...)
		return
	case "stop-commands":
		h.stopToken = cmd.Data
		return
	case "group":
		e.report(Event2{Type: GroupStart, Job: jr.name, JobKey: jr.key, Step: sr.name, StepID: sr.id, Text: e.opts.Masker.Apply(cmd.Data)})
		return
	case "endgroup":
		e.report(Event2{Type: GroupEnd, Job: jr.name, JobKey: jr.key, Step: sr.name, StepID: sr.id})
		return
	case "error", "warning", "notice":
		h.annot(cmd.Name, cmd.Data, cmd)
		return
	case "debug", "echo":
		return
	}
	h.emit(l)
}

func (h *outHandler) annot(level, msg string, cmd command) {
	sr := h.sr
	e := sr.jr.e
	line, _ := strconv.Atoi(cmd.Props["line"])
	e.report(Event2{Type: Annotation, Level: level, Job: sr.jr.name, JobKey: sr.jr.key, Step: sr.name, StepID: sr.id,
		Text: e.opts.Masker.Apply(msg), File: cmd.Props["file"], Line: line})
}

func (h *outHandler) emit(l string) {
	sr := h.sr
	e := sr.jr.e
	e.report(Event2{Type: Output, Job: sr.jr.name, JobKey: sr.jr.key, Step: sr.name, StepID: sr.id, Text: e.opts.Masker.Apply(l)})
}

// lineSink is an io.Writer feeding lines to a function.
type lineSink struct{ *logs.LineWriter }

func newLineSink(fn func(string)) *lineSink { return &lineSink{logs.NewLineWriter(fn)} }

// outputSink is the io.Writer of a step's output: its lines go to h, the
// lines of each write at once.
func outputSink(h *outHandler) *lineSink { return &lineSink{logs.NewBatchLineWriter(h.lines)} }

func marshalJSON(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }
