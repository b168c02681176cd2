package exec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/expr"
	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// cleanupTimeout bounds the steps that run after a cancel (if: always())
// and the teardown of a sandbox.
const cleanupTimeout = 2 * time.Minute

// runJobNode runs every matrix instance of one job id and records the
// aggregated result and outputs on n.
func (e *Executor) runJobNode(ctx context.Context, workDir string, pw *plan.Workflow, n *jobNode, nodes map[string]*jobNode, call *callInfo) {
	job := n.pj.Source
	needs := map[string]any{}
	allOK := true
	anyFailed := false
	for _, id := range n.pj.Needs {
		d := nodes[id]
		if d == nil {
			continue
		}
		outs := map[string]any{}
		for k, v := range d.outputs {
			outs[k] = v
		}
		needs[id] = map[string]any{"result": d.result, "outputs": outs}
		if d.result != Success {
			allOK = false
		}
		if d.result == Failure || d.result == Cancelled {
			anyFailed = true
		}
	}
	cancelled := ctx.Err() != nil
	base := e.baseContext(pw.Source, call)
	base["needs"] = needs
	c := newContext(base)
	c.Status = expr.Status{Failed: anyFailed, Cancelled: cancelled}
	display := call.prefixed(n.pj.Name)

	run, err := evalIf(job.If, c, allOK && !cancelled)
	if err != nil {
		e.finishNode(n, display, Failure, nil, err, time.Now())
		return
	}
	if !run {
		n.result = Skipped
		e.report(Event2{Type: JobFinished, Job: display, JobKey: display, Result: Skipped})
		e.addResult(&JobResult{Workflow: pw.File, JobID: job.ID, Name: display, Result: Skipped, Started: time.Now()})
		return
	}
	if job.Uses != "" {
		e.runReusable(ctx, workDir, pw, n, c, call)
		return
	}

	combos := []plan.Combo{{}}
	if job.Strategy != nil && job.Strategy.Matrix != nil {
		cs, err := plan.ExpandMatrix(job.Strategy.Matrix, func(s string) (any, error) { return interpValue(s, c) })
		if err != nil {
			e.finishNode(n, display, Failure, nil, err, time.Now())
			return
		}
		if len(cs) == 0 {
			e.finishNode(n, display, Failure, nil, errs.E("matrix", errs.Invalid, "job %s: the matrix has no combinations", job.ID), time.Now())
			return
		}
		combos = FilterMatrix(cs, e.opts.MatrixFilter)
		if len(combos) == 0 {
			e.skipNode(n, display, fmt.Sprintf("no matrix leg matches --matrix %s", matrixFilterText(e.opts.MatrixFilter)))
			return
		}
	}
	failFast, maxParallel := true, 0
	if job.Strategy != nil {
		if job.Strategy.FailFast != "" {
			failFast = boolValue(job.Strategy.FailFast, c)
		}
		if job.Strategy.MaxParallel != "" {
			if s, err := interp(job.Strategy.MaxParallel, c); err == nil {
				maxParallel, _ = strconv.Atoi(strings.TrimSpace(s))
			}
		}
	}

	groupCtx, cancelGroup := context.WithCancel(ctx)
	defer cancelGroup()
	var limit chan struct{}
	if maxParallel > 0 {
		limit = make(chan struct{}, maxParallel)
	}
	var mu sync.Mutex
	results := make([]string, len(combos))
	outputs := map[string]any{}
	var wg sync.WaitGroup
	for i, combo := range combos {
		wg.Add(1)
		go func(i int, combo plan.Combo) {
			defer wg.Done()
			if limit != nil {
				select {
				case limit <- struct{}{}:
					defer func() { <-limit }()
				case <-groupCtx.Done():
				}
			}
			select {
			case e.sem <- struct{}{}:
				defer func() { <-e.sem }()
			case <-groupCtx.Done():
			}
			jr := &jobRun{e: e, pw: pw, pj: n.pj, job: job, combo: combo, hasMatrix: job.Strategy != nil && job.Strategy.Matrix != nil,
				index: i, total: len(combos), failFast: failFast, maxParallel: maxParallel, needs: needs, call: call, workDir: workDir}
			res := jr.runSafe(groupCtx, ctx)
			mu.Lock()
			results[i] = res.Result
			for k, v := range res.Outputs {
				outputs[k] = v
			}
			mu.Unlock()
			if res.Result == Failure && failFast && !jr.continueOnError {
				cancelGroup()
			}
		}(i, combo)
	}
	wg.Wait()
	n.outputs = outputs
	n.result = aggregate(results)
}

// aggregate is a job's result from its instances' results.
func aggregate(rs []string) string {
	out := Skipped
	for _, r := range rs {
		switch r {
		case Failure:
			return Failure
		case Cancelled:
			out = Cancelled
		case Success:
			if out == Skipped {
				out = Success
			}
		}
	}
	return out
}

func (e *Executor) finishNode(n *jobNode, display, result string, outputs map[string]any, err error, start time.Time) {
	n.result = result
	n.outputs = outputs
	r := &JobResult{Workflow: n.pj.Source.ID, JobID: n.pj.ID, Name: display, Result: result, Started: start, Duration: time.Since(start)}
	if err != nil {
		r.Error = err.Error()
		e.report(Event2{Type: Notice, Job: display, JobKey: display, Text: "Error: " + e.opts.Masker.Apply(err.Error())})
	}
	e.report(Event2{Type: JobFinished, Job: display, JobKey: display, Result: result, Duration: r.Duration})
	e.addResult(r)
}

// skipNode records a job skipped before it started, with the reason.
func (e *Executor) skipNode(n *jobNode, display, reason string) {
	n.result = Skipped
	e.report(Event2{Type: Notice, Job: display, JobKey: display, Text: "skipped: " + reason})
	e.report(Event2{Type: JobFinished, Job: display, JobKey: display, Result: Skipped})
	e.addResult(&JobResult{Workflow: n.pj.Source.ID, JobID: n.pj.ID, Name: display, Result: Skipped, Started: time.Now(), Error: reason})
}

// FilterMatrix keeps the matrix legs that match filter on the names they
// have.
func FilterMatrix(cs []plan.Combo, filter map[string]string) []plan.Combo {
	if len(filter) == 0 {
		return cs
	}
	var out []plan.Combo
	for _, c := range cs {
		ok := true
		for k, want := range filter {
			if v, has := c.Values[k]; has && expr.ToString(v) != want {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, c)
		}
	}
	return out
}

func matrixFilterText(filter map[string]string) string {
	parts := make([]string, 0, len(filter))
	for k, v := range filter {
		parts = append(parts, k+":"+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func (c *callInfo) prefixed(name string) string {
	if c == nil {
		return name
	}
	return c.prefix + name
}

// baseContext holds the contexts known before a job starts.
func (e *Executor) baseContext(wf *workflow.Workflow, call *callInfo) map[string]any {
	ev := e.opts.Event
	payload := any(ev.Payload)
	if ev.Payload == nil {
		payload = map[string]any{}
	}
	owner, _, _ := strings.Cut(ev.Repository, "/")
	refName, refType := ev.Ref, ""
	switch {
	case strings.HasPrefix(ev.Ref, "refs/heads/"):
		refName, refType = strings.TrimPrefix(ev.Ref, "refs/heads/"), "branch"
	case strings.HasPrefix(ev.Ref, "refs/tags/"):
		refName, refType = strings.TrimPrefix(ev.Ref, "refs/tags/"), "tag"
	case strings.HasPrefix(ev.Ref, "refs/pull/"):
		refName, refType = strings.TrimPrefix(ev.Ref, "refs/pull/"), "branch" // "7/merge", as GitHub
	}
	server := ev.ServerURL
	if server == "" {
		server = "https://github.com"
	}
	wfName := wf.Name
	if wfName == "" {
		wfName = wf.File
	}
	gh := map[string]any{
		"event": payload, "event_name": ev.Name, "sha": ev.SHA, "ref": ev.Ref, "ref_name": refName, "ref_type": refType,
		"repository": ev.Repository, "repository_owner": owner, "actor": ev.Actor, "triggering_actor": ev.Actor,
		"workflow": wfName, "workflow_ref": ev.Repository + "/" + wf.File + "@" + ev.Ref,
		"run_id": ev.RunID, "run_number": strconv.Itoa(ev.RunNumber), "run_attempt": strconv.Itoa(max(ev.RunAttempt, 1)), "retention_days": "0",
		"server_url": server, "api_url": apiURL(server), "graphql_url": apiURL(server) + "/graphql",
		"head_ref": ev.HeadRef, "base_ref": ev.BaseRef, "token": e.opts.Secrets["GITHUB_TOKEN"],
		"repositoryUrl": server + "/" + ev.Repository + ".git",
	}
	secrets := map[string]any{}
	for k, v := range e.opts.Secrets {
		secrets[k] = v
	}
	vars := map[string]any{}
	for k, v := range e.opts.Vars {
		vars[k] = v
	}
	inputs := map[string]any{}
	for k, v := range e.opts.Inputs {
		inputs[k] = v
	}
	if call != nil {
		inputs = call.inputs
		secrets = map[string]any{}
		for k, v := range call.secrets {
			secrets[k] = v
		}
	} else if t := wf.Trigger(ev.Name); t != nil {
		for _, in := range t.Inputs {
			if _, set := inputs[in.Name]; !set && in.HasDefault {
				inputs[in.Name] = in.Default
			}
			if in.Type == "boolean" || in.Type == "number" {
				if s, ok := inputs[in.Name].(string); ok {
					inputs[in.Name] = typedInput(in.Type, s)
				}
			}
		}
	}
	env := map[string]any{}
	for k, v := range e.opts.Env {
		env[k] = v
	}
	return map[string]any{"github": gh, "secrets": secrets, "vars": vars, "inputs": inputs, "env": env,
		"runner": map[string]any{"os": "Linux", "arch": runnerArch(), "name": "conveyor", "environment": "self-hosted"}}
}

func typedInput(typ, s string) any {
	switch typ {
	case "boolean":
		return strings.EqualFold(strings.TrimSpace(s), "true")
	case "number":
		if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
			return f
		}
	}
	return s
}

func apiURL(server string) string {
	if server == "https://github.com" {
		return "https://api.github.com"
	}
	return strings.TrimSuffix(server, "/") + "/api/v3"
}

// jobRun is one job instance: one matrix combination in one sandbox.
type jobRun struct {
	e           *Executor
	pw          *plan.Workflow
	pj          *plan.Job
	job         *workflow.Job
	combo       plan.Combo
	hasMatrix   bool
	index       int
	total       int
	failFast    bool
	maxParallel int
	needs       map[string]any
	call        *callInfo
	workDir     string

	name            string
	key             string
	continueOnError bool
	sb              backend.Sandbox
	dirs            backend.Dirs
	jobDir          string
	base            map[string]any // github, runner, secrets, ... for this job
	env             []kv           // workflow env + job env, evaluated
	envFile         []kv           // from GITHUB_ENV
	path            []string       // from GITHUB_PATH, first first
	failed          bool
	cancelled       bool
	stepSeq         int
	posts           []func(ctx context.Context)
	summary         strings.Builder
	recorded        *JobResult // its result, once recorded (see runSafe)
	state           map[string]map[string]string
	spare           spareFiles // files of finished steps, for the next ones
	remote          *remoteActions
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
			jr.name = jr.call.prefixed(jr.job.ID)
		}
		if jr.key == "" {
			jr.key = fmt.Sprintf("%d-%s", e.nextJobSeq(), jr.job.ID)
		}
		msg := fmt.Sprintf("internal error in Conveyor, the job was stopped (please report it): %v", r)
		e.report(Event2{Type: Annotation, Level: "error", Job: jr.name, JobKey: jr.key, Text: e.opts.Masker.Apply(msg)})
		for _, l := range strings.Split(strings.TrimSpace(string(debug.Stack())), "\n") {
			e.report(Event2{Type: Output, Job: jr.name, JobKey: jr.key, Text: e.opts.Masker.Apply(l)})
		}
		if jr.recorded != nil {
			res = jr.recorded // the panic came after its result was recorded
			return
		}
		res = &JobResult{Workflow: jr.pw.File, JobID: jr.job.ID, Name: jr.name, Result: Failure, Error: e.opts.Masker.Apply(msg)}
		e.report(Event2{Type: JobFinished, Job: jr.name, JobKey: jr.key, Result: Failure})
		e.addResult(res)
	}()
	return jr.run(ctx, runCtx)
}

func (jr *jobRun) run(ctx, runCtx context.Context) *JobResult {
	e := jr.e
	start := time.Now()
	jr.base = e.baseContext(jr.pw.Source, jr.call)
	jr.base["needs"] = jr.needs
	matrix := map[string]any{}
	for k, v := range jr.combo.Values {
		matrix[k] = v
	}
	jr.base["matrix"] = matrix
	jr.base["strategy"] = map[string]any{"fail-fast": jr.failFast, "job-index": float64(jr.index), "job-total": float64(jr.total), "max-parallel": float64(maxOr(jr.maxParallel, jr.total))}
	gh := jr.base["github"].(map[string]any)
	gh["job"] = jr.job.ID
	c := newContext(jr.base)

	name := jr.job.Name
	if name == "" {
		name = jr.job.ID
	}
	if n, err := interp(name, c); err == nil {
		if jr.hasMatrix && !nameExprRe.MatchString(jr.job.Name) {
			n += jr.combo.Suffix()
		}
		name = n
	}
	jr.name = jr.call.prefixed(name)
	jr.key = fmt.Sprintf("%d-%s", e.nextJobSeq(), jr.job.ID)
	if kept := e.kept(jr.job.ID, jr.name); kept != nil {
		e.report(Event2{Type: Notice, Job: jr.name, JobKey: jr.key, Text: "kept from the earlier attempt (" + kept.Result + "): not run again"})
		e.report(Event2{Type: JobFinished, Job: jr.name, JobKey: jr.key, Result: kept.Result})
		e.addResult(kept)
		return kept
	}
	res := &JobResult{Workflow: jr.pw.File, JobID: jr.job.ID, Name: jr.name, Started: start}
	finish := func(result string, err error) *JobResult {
		res.Result = result
		res.Duration = time.Since(start)
		if err != nil {
			res.Error = e.opts.Masker.Apply(err.Error())
			jr.notice("Error: " + err.Error())
		}
		e.report(Event2{Type: JobFinished, Job: jr.name, JobKey: jr.key, Result: result, Duration: res.Duration})
		if s := jr.summary.String(); s != "" {
			e.addSummary(jr.name, e.opts.Masker.Apply(s))
		}
		e.addResult(res)
		jr.recorded = res
		return res
	}
	if ctx.Err() != nil {
		e.report(Event2{Type: JobStarted, Job: jr.name, JobKey: jr.key})
		return finish(Cancelled, nil)
	}
	e.report(Event2{Type: JobStarted, Job: jr.name, JobKey: jr.key})

	if jr.job.ContinueOnError != "" {
		jr.continueOnError = boolValue(jr.job.ContinueOnError, c)
	}
	timeout := 360 * time.Minute
	if jr.job.TimeoutMinutes != "" {
		d, err := minutes(jr.job.TimeoutMinutes, c)
		if err != nil {
			return finish(Failure, err)
		}
		timeout = d
	}
	jobCtx, cancelJob := context.WithTimeout(ctx, timeout)
	defer cancelJob()

	spec, sbBackend, err := jr.sandboxSpec(c)
	if u, ok := err.(errUnmapped); ok {
		// As act does: a platform with no runner is skipped, not failed;
		// the summary says why.
		reason := u.reason()
		jr.notice("skipped: " + reason)
		res.Error = reason
		return finish(Skipped, nil)
	}
	if err != nil {
		return finish(Failure, err)
	}
	jr.jobDir = filepath.Join(jr.workDir, jr.key)
	for _, d := range []string{"workspace", "temp", "tool", "_actions", "files"} {
		if err := os.MkdirAll(filepath.Join(jr.jobDir, d), 0o777); err != nil {
			return finish(Failure, errs.Wrap("job dir", errs.Unavailable, err))
		}
	}
	os.Chmod(jr.jobDir, 0o777)
	removeDir, handedOver := !e.opts.KeepJobDirs, false
	defer func() {
		if removeDir && !handedOver {
			os.RemoveAll(jr.jobDir)
		}
	}()
	// Set up job: every remote action resolved before the sandbox and the
	// first step, so that a workflow that cannot run fails now.
	jr.remote = newRemoteActions(e.opts.Actions, jr.jobDir, jr.notice)
	if err := jr.remote.preflight(jobCtx, jr.job.Steps, 0); err != nil {
		return finish(Failure, err)
	}
	spec.JobDir = jr.jobDir
	spec.ID = "conveyor-" + e.token + "-" + jr.key
	spec.Name = jr.name

	setupLog := jr.noticeWriter()
	sb, err := sbBackend.Setup(jobCtx, spec, setupLog)
	setupLog.Flush()
	if err != nil {
		if runCtx.Err() != nil {
			return finish(Cancelled, nil)
		}
		if errs.Is(err, errs.NotFound) && spec.Container == nil && spec.Image != "" {
			l := firstOr(jr.labels(c), "LABEL")
			err = fmt.Errorf("%w; map runs-on %s to an image you have with -P %s=IMAGE, or to this host with -P %s=-self-hosted", err, l, l, l)
		}
		return finish(Failure, err)
	}
	jr.sb = sb
	handedOver = true
	defer e.teardownLater(runCtx, jr, sb, removeDir)
	jr.dirs = sb.Dirs()
	defer jr.releaseCache()
	if d, ok := sb.(backend.Describer); ok {
		jr.notice(d.Describe())
	}
	gh["workspace"] = jr.sandboxPath("workspace")
	jr.base["runner"].(map[string]any)["temp"] = jr.sandboxPath("temp")
	jr.base["runner"].(map[string]any)["tool_cache"] = jr.toolCache()
	jr.base["job"] = map[string]any{"status": Success, "container": map[string]any{"id": "", "network": ""}, "services": map[string]any{}}
	if err := jr.writeEventFile(); err != nil {
		return finish(Failure, err)
	}
	// Workflow and job env, evaluated in order (job env may read workflow env).
	for _, list := range [][]workflow.KV{jr.pw.Source.Env, jr.job.Env} {
		for _, p := range list {
			v, err := interp(p.Value, jr.exprContext(nil, nil))
			if err != nil {
				return finish(Failure, errs.Wrap(fmt.Sprintf("env %s (line %d)", p.Key, p.Pos.Line), errs.Invalid, err))
			}
			jr.env = setKV(jr.env, p.Key, v)
		}
	}

	if err := jr.checkNodeActions(jobCtx); err != nil {
		return finish(Failure, err)
	}
	if err := jr.checkRemoteNode(jobCtx); err != nil {
		return finish(Failure, err)
	}
	sc := &scope{steps: map[string]any{}}
	jr.runPres(jobCtx, sc)
	for i, s := range jr.job.Steps {
		jr.runStep(jobCtx, runCtx, sc, s, i)
	}
	for i := len(jr.posts) - 1; i >= 0; i-- {
		pctx := jobCtx
		if jobCtx.Err() != nil {
			var cancel context.CancelFunc
			pctx, cancel = context.WithTimeout(context.WithoutCancel(runCtx), cleanupTimeout)
			defer cancel()
		}
		jr.posts[i](pctx)
	}

	// Outputs, evaluated with the steps context.
	if len(jr.job.Outputs) > 0 {
		res.Outputs = map[string]string{}
		oc := jr.exprContext(sc, nil)
		for _, o := range jr.job.Outputs {
			v, err := interp(o.Value, oc)
			if err != nil {
				jr.notice(fmt.Sprintf("output %s: %v", o.Key, err))
				continue
			}
			if e.opts.Masker.Apply(v) != v {
				// As GitHub's runner: an output holding a secret would
				// carry it past the log masking into the store and to
				// other jobs' logs.
				jr.notice(fmt.Sprintf("Skip output '%s' since it may contain secret.", o.Key))
				continue
			}
			res.Outputs[o.Key] = v
		}
	}
	switch {
	case runCtx.Err() != nil:
		return finish(Cancelled, nil)
	case jobCtx.Err() == context.DeadlineExceeded && ctx.Err() == nil:
		jr.notice(fmt.Sprintf("The job has exceeded the maximum execution time of %v", timeout))
		return finish(jr.failureUnlessContinue(), nil)
	case ctx.Err() != nil:
		return finish(Cancelled, nil)
	case jr.failed:
		return finish(jr.failureUnlessContinue(), nil)
	}
	return finish(Success, nil)
}

// teardownLater removes a finished job's sandbox, then its folder, in the
// background: the job's slot and the jobs that need it do not wait for the
// engine's removal (a container's takes 100–300 ms). Run and RunJob wait
// for every teardown before they return, so nothing outlives them.
func (e *Executor) teardownLater(runCtx context.Context, jr *jobRun, sb backend.Sandbox, removeDir bool) {
	e.teardowns.Add(1)
	go func() {
		defer e.teardowns.Done()
		defer e.nodes.forget(sb)
		tctx, cancel := context.WithTimeout(context.WithoutCancel(runCtx), cleanupTimeout)
		defer cancel()
		if err := sb.Teardown(tctx); err != nil {
			jr.notice("teardown: " + err.Error())
		}
		if removeDir {
			os.RemoveAll(jr.jobDir)
		}
	}()
}

func (jr *jobRun) failureUnlessContinue() string {
	if jr.continueOnError {
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

// sandboxSpec picks the backend and image for the job from runs-on and
// container:, through the platform mapping.
func (jr *jobRun) sandboxSpec(c *expr.Context) (*backend.JobSpec, backend.Backend, error) {
	e := jr.e
	spec := &backend.JobSpec{Resources: e.opts.Resources, Network: e.opts.Network, Runtime: e.opts.Runtime}
	labels, err := jr.runsOn(c)
	if err != nil {
		return nil, nil, err
	}
	b := e.opts.Backend
	image, mapped := "", false
	for _, l := range labels {
		if img, ok := e.opts.Platforms[strings.ToLower(l)]; ok {
			image, mapped = img, true
			break
		}
	}
	if image == "-self-hosted" {
		if e.opts.Host == nil {
			return nil, nil, errs.E("runs-on", errs.Invalid, "runs-on %v maps to the host, but no host backend is available", labels)
		}
		b, image = e.opts.Host, ""
	}
	if ct := jr.job.Container; ct != nil {
		cc, err := jr.evalContainer(ct, c)
		if err != nil {
			return nil, nil, err
		}
		if cc.Image != "" {
			spec.Container = cc
			image = cc.Image
			switch {
			case b.Name() != "host":
			case e.opts.Containers != nil:
				b = e.opts.Containers
			case e.opts.Backend.Name() != "host":
				b = e.opts.Backend
			default:
				jr.notice(fmt.Sprintf("container %s is ignored: no container engine, the job runs on the host", cc.Image))
			}
		}
	}
	if image == "" && (b.Name() != "host" && b.Name() != "fake" || !mapped && foreignOS(labels)) {
		return nil, nil, errUnmapped{labels}
	}
	spec.Image = image
	for _, s := range jr.job.Services {
		cc, err := jr.evalContainer(&s.Container, c)
		if err != nil {
			return nil, nil, errs.Wrap("service "+s.Name, errs.Invalid, err)
		}
		spec.Services = append(spec.Services, backend.Service{Name: s.Name, Image: cc.Image, Env: cc.Env, Options: cc.Options,
			Volumes: cc.Volumes, Ports: cc.Ports, Credentials: cc.Credentials})
	}
	return spec, b, nil
}

// runsOn evaluates the job's runs-on labels.
func (jr *jobRun) runsOn(c *expr.Context) ([]string, error) {
	var labels []string
	if jr.job.RunsOn == nil {
		return nil, nil
	}
	for _, l := range jr.job.RunsOn.Labels {
		v, err := interpValue(l, c)
		if err != nil {
			return nil, errs.Wrap("runs-on", errs.Invalid, err)
		}
		if arr, ok := plan.Plain(v).([]any); ok {
			for _, x := range arr {
				labels = append(labels, expr.ToString(x))
			}
		} else {
			labels = append(labels, expr.ToString(v))
		}
	}
	return labels, nil
}

// labels is runsOn without the error (for messages).
func (jr *jobRun) labels(c *expr.Context) []string {
	l, _ := jr.runsOn(c)
	return l
}

// errUnmapped says no platform image matches a job's runs-on labels.
type errUnmapped struct{ labels []string }

func (e errUnmapped) Error() string { return fmt.Sprintf("no image for runs-on %v", e.labels) }

// reason is the one line the summary shows for the skipped job.
func (e errUnmapped) reason() string {
	l := firstOr(e.labels, "LABEL")
	if foreignOS(e.labels) {
		return fmt.Sprintf("no runner for %s; use -P %s=IMAGE (a Linux image) or -P %s=-self-hosted (this host)", l, l, l)
	}
	return fmt.Sprintf("no image for runs-on %v; use -P %s=IMAGE or -P %s=-self-hosted (this host)", e.labels, l, l)
}

// foreignOS says runs-on asks for an operating system other than this
// host's (windows-latest on Linux, macos-14 on Linux): with no platform
// mapping, no runner can take the job.
func foreignOS(labels []string) bool {
	for _, l := range labels {
		l = strings.ToLower(l)
		for goos, prefix := range map[string]string{"windows": "windows", "darwin": "macos"} {
			if strings.HasPrefix(l, prefix) && runtime.GOOS != goos {
				return true
			}
		}
	}
	return false
}

func firstOr(l []string, d string) string {
	if len(l) > 0 {
		return l[0]
	}
	return d
}

func (jr *jobRun) evalContainer(ct *workflow.Container, c *expr.Context) (*backend.Container, error) {
	img, err := interp(ct.Image, c)
	if err != nil {
		return nil, errs.Wrap("container image", errs.Invalid, err)
	}
	cc := &backend.Container{Image: strings.TrimPrefix(img, "docker://"), Env: map[string]string{}}
	for _, p := range ct.Env {
		v, err := interp(p.Value, c)
		if err != nil {
			return nil, errs.Wrap("container env "+p.Key, errs.Invalid, err)
		}
		cc.Env[p.Key] = v
	}
	if cc.Options, err = interp(ct.Options, c); err != nil {
		return nil, err
	}
	for _, v := range ct.Volumes {
		s, err := interp(v, c)
		if err != nil {
			return nil, err
		}
		cc.Volumes = append(cc.Volumes, s)
	}
	for _, v := range ct.Ports {
		s, err := interp(v, c)
		if err != nil {
			return nil, err
		}
		cc.Ports = append(cc.Ports, s)
	}
	if ct.Credentials != nil {
		u, err1 := interp(ct.Credentials.Username, c)
		p, err2 := interp(ct.Credentials.Password, c)
		if err1 != nil || err2 != nil {
			return nil, errs.E("container credentials", errs.Invalid, "cannot evaluate credentials")
		}
		if u == "" || p == "" {
			return nil, errs.E("container credentials", errs.Invalid, "credentials need a username and a password; refusing an empty one")
		}
		cc.Credentials = &backend.Credentials{Username: u, Password: p}
		jr.e.opts.Masker.Add(p)
	}
	return cc, nil
}

// sandboxPath is the sandbox's view of a path under the job directory.
func (jr *jobRun) sandboxPath(rel string) string {
	return strings.TrimSuffix(jr.dirs.Sandbox, "/") + "/" + filepath.ToSlash(rel)
}

// toSandbox maps a host path under the job directory to the sandbox's view.
func (jr *jobRun) toSandbox(host string) string {
	rel, err := filepath.Rel(jr.dirs.Host, host)
	if err != nil || strings.HasPrefix(rel, "..") {
		return host
	}
	return jr.sandboxPath(rel)
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
	return os.WriteFile(filepath.Join(jr.jobDir, "files", "event.json"), b, 0o666)
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
