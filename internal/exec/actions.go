package exec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	osexec "os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/actions"
	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/expr"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// findLocalAction locates ./path: in the workspace (after a checkout) or
// else in the local repository, copied into the job directory so the
// sandbox sees it. The path is confined to the tree it is read from (no
// "..", absolute path or symbolic link out of it). It returns the host
// directory and the action's parsed metadata.
func (sr *stepRun) findLocalAction() (string, *workflow.Action, error) {
	jr := sr.jr
	uses := sr.step.Uses
	if _, err := actions.LocalPath(uses); err != nil {
		return "", nil, err
	}
	dir, a, err := localActionIn(filepath.Join(jr.box.dir, "workspace"), uses)
	if err == nil || errs.KindOf(err) != errs.NotFound || jr.e.opts.RepoDir == "" {
		return dir, a, err
	}
	src, a, err := localActionIn(jr.e.opts.RepoDir, uses)
	if err != nil {
		if errs.KindOf(err) == errs.NotFound {
			return "", nil, errs.E("uses", errs.NotFound, "can't find 'action.yml' or 'action.yaml' for action %q (looked in the workspace and in the repository)", uses)
		}
		return "", nil, err
	}
	sum := sha256.Sum256([]byte(src))
	dst := filepath.Join(jr.box.dir, "_actions", hex.EncodeToString(sum[:6]))
	if _, err := os.Stat(dst); err != nil {
		// Links are copied as links, never followed: nothing outside the
		// repository is read on their account.
		if err := actions.CopyTree(src, dst); err != nil {
			return "", nil, err
		}
	}
	return dst, a, nil
}

// localActionIn resolves a local action under root and reads its metadata
// through the same confinement.
func localActionIn(root, uses string) (string, *workflow.Action, error) {
	dir, err := actions.LocalDir(root, uses)
	if err != nil {
		return "", nil, err
	}
	rel, _ := filepath.Rel(root, dir)
	if real, err := filepath.EvalSymlinks(root); err == nil {
		rel, _ = filepath.Rel(real, dir)
	}
	f, err := actions.ReadActionFile(root, filepath.ToSlash(rel))
	if err != nil {
		return "", nil, err
	}
	a, probs := workflow.ParseAction(f.Data, path.Join(uses, f.Name))
	if len(probs) > 0 {
		return "", nil, errs.Wrap("action", errs.Invalid, probs)
	}
	return dir, a, nil
}

// actionInputs evaluates with: against the action's declared inputs and
// their defaults.
func (sr *stepRun) actionInputs(c *expr.Context, a *workflow.Action) (map[string]string, error) {
	with, err := sr.evalWith(c)
	if err != nil {
		return nil, err
	}
	for _, in := range a.Inputs {
		if _, ok := lookupFold(with, in.Name); ok {
			continue
		}
		if in.HasDefault {
			v, err := interp(in.Default, c)
			if err != nil {
				return nil, errs.Wrap("input "+in.Name+" default", errs.Invalid, err)
			}
			with[in.Name] = v
		}
	}
	return with, nil
}

func lookupFold(m map[string]string, k string) (string, bool) {
	if v, ok := m[k]; ok {
		return v, true
	}
	for mk, v := range m {
		if strings.EqualFold(mk, k) {
			return v, true
		}
	}
	return "", false
}

// inputEnv is INPUT_<NAME> for every input, as actions read them.
func inputEnv(with map[string]string) map[string]string {
	env := map[string]string{}
	for k, v := range with {
		env["INPUT_"+strings.ToUpper(strings.ReplaceAll(k, " ", "_"))] = v
	}
	return env
}

func (sr *stepRun) localAction(ctx context.Context, c *expr.Context) error {
	dir, a, err := sr.findLocalAction()
	if err != nil {
		return err
	}
	return sr.runAction(ctx, c, a, dir, actionSource{})
}

// composite runs a composite action's steps in a scope of their own.
func (sr *stepRun) composite(ctx context.Context, c *expr.Context, a *workflow.Action, dir string, with map[string]string, src actionSource) error {
	jr := sr.jr
	if sr.sc.depth() >= maxActionDepth {
		return errs.E("composite", errs.Invalid, "%s: composite actions are nested more than %d deep", sr.step.Uses, maxActionDepth)
	}
	inputs := map[string]any{}
	for k, v := range with {
		inputs[k] = v
	}
	// The uses: step's env applies to the composite's steps, on top of the
	// enclosing scope's env.
	inner := &scope{steps: map[string]stepContext{}, inputs: inputs, env: sr.env, actionPath: jr.toSandbox(dir), actionDir: dir,
		prefix: sr.name + " / ", parent: sr.sc, source: src}
	for i, s := range a.Runs.Steps {
		jr.runStep(ctx, ctx, inner, s, i)
	}
	// Outputs of the action, evaluated in its scope.
	oc := jr.exprContext(inner, nil)
	for _, o := range a.Outputs {
		v, err := interp(o.Value, oc)
		if err != nil {
			return errs.Wrap("output "+o.Name, errs.Invalid, err)
		}
		sr.outputs[o.Name] = v
	}
	if inner.failed {
		return errs.E("composite", errs.Other, "a step of composite action %s failed", sr.step.Uses)
	}
	return nil
}

// nodeAction runs a JavaScript action's main (and registers its post) with
// node in the sandbox.
func (sr *stepRun) nodeAction(ctx context.Context, a *workflow.Action, dir string, with map[string]string, src actionSource) error {
	jr := sr.jr
	env := inputEnv(with)
	path := jr.toSandbox(dir)
	inner := &scope{actionPath: path, actionDir: dir, parent: sr.sc, steps: sr.sc.steps, source: src}
	if a.Runs.Pre != "" && src.repository == "" {
		// GitHub runs pre: at job start for downloaded actions only; a
		// local action is not there yet then, so it warns and skips it.
		sr.annotate("warning", fmt.Sprintf("`pre` execution is not supported for local action from '%s'", sr.step.Uses))
	}
	argv, err := sr.nodeArgv(ctx, a, path+"/"+a.Runs.Main)
	if err != nil {
		return err
	}
	main := *sr
	main.sc = inner
	err = main.process(ctx, &backend.Process{Argv: argv, Dir: jr.workdir("")}, env, sr.id)
	if a.Runs.Post != "" {
		post := a.Runs.Post
		postIf := a.Runs.PostIf
		jr.steps.posts = append(jr.steps.posts, func(pctx context.Context) {
			ps := &workflow.Step{Name: "Post " + sr.step.Uses, ID: "post-" + sr.id, If: postIf}
			if postIf == "" {
				ps.If = "always()"
			}
			jr.runPost(pctx, sr, ps, func(p *stepRun) error {
				p.sc = inner
				p.actionID = sr.actionID
				argv, err := sr.nodeArgv(pctx, a, path+"/"+post)
				if err != nil {
					return err
				}
				return p.process(pctx, &backend.Process{Argv: argv, Dir: jr.workdir("")}, env, sr.id)
			})
		})
	}
	return err
}

// runPost runs a post step, recorded like any other step.
func (jr *jobRun) runPost(ctx context.Context, of *stepRun, ps *workflow.Step, fn func(p *stepRun) error) {
	c := jr.exprContext(of.sc, of.env)
	run, err := evalIf(ps.If, c, !jr.status.failed && !jr.status.cancelled)
	if err != nil || !run {
		return
	}
	name := of.sc.prefix + ps.Name
	jr.e.report(Event2{Type: StepStarted, Job: jr.name, JobKey: jr.key, Step: name, StepID: ps.ID})
	p := &stepRun{jr: jr, sc: of.sc, step: ps, id: ps.ID, name: name, env: of.env, outputs: map[string]string{}}
	result := Success
	if err := fn(p); err != nil {
		p.errorLine(err)
		result = Failure
		jr.status.failed = true
	}
	jr.e.report(Event2{Type: StepFinished, Job: jr.name, JobKey: jr.key, Step: name, StepID: ps.ID, Result: result})
}

// containerAction runs a docker action (image, or a Dockerfile in dir) in a
// container of its own.
// tag names what the image is built from (for its tag: one per action, not
// per job).
func (sr *stepRun) containerAction(ctx context.Context, c *expr.Context, image string, a *workflow.Action, with map[string]string, dir, tag string) error {
	jr := sr.jr
	cr, ok := jr.box.sb.(backend.ContainerRunner)
	if !ok {
		return errs.E("docker action", errs.Unavailable, "%s needs a Docker engine: this job's sandbox cannot run containers", sr.step.Uses)
	}
	if image == "" {
		img := a.Runs.Image
		switch {
		case strings.HasPrefix(img, "docker://"):
			image = strings.TrimPrefix(img, "docker://")
		default:
			sum := sha256.Sum256([]byte(tag))
			image = "conveyor-action-" + hex.EncodeToString(sum[:6]) + ":latest"
			ctxDir := dir
			dockerfile := img
			out := newLineSink(func(l string) { jr.notice(l) })
			err := cr.BuildImage(ctx, ctxDir, dockerfile, image, out)
			out.Flush()
			if err != nil {
				return errs.Wrap("build action image", errs.Other, err)
			}
		}
	}
	inputs := map[string]any{}
	for k, v := range with {
		inputs[k] = v
	}
	ac := jr.exprContext(sr.sc, sr.env)
	ac.Values["inputs"] = inputs
	var args []string
	if len(sr.step.With) > 0 && a.Runs.Using == "docker" && len(a.Runs.Args) == 0 {
		if v, ok := lookupFold(with, "args"); ok {
			args = strings.Fields(v)
		}
	}
	for _, arg := range a.Runs.Args {
		v, err := interp(arg, ac)
		if err != nil {
			return errs.Wrap("args", errs.Invalid, err)
		}
		args = append(args, v)
	}
	var entry []string
	if v, ok := lookupFold(with, "entrypoint"); ok && a.Runs.Entrypoint == "" {
		entry = strings.Fields(v)
	} else if a.Runs.Entrypoint != "" {
		entry = strings.Fields(a.Runs.Entrypoint)
	}
	files, err := jr.stepFiles(jr.steps.seq)
	if err != nil {
		return err
	}
	sr.files = files
	env := jr.processEnv(sr.sc, sr.env, jr.sandboxFiles(files), sr.id)
	for k, v := range inputEnv(with) {
		env[k] = v
	}
	for k, v := range jr.steps.state[sr.actionID] {
		env["STATE_"+k] = v
	}
	for _, p := range a.Runs.Env {
		v, err := interp(p.Value, ac)
		if err != nil {
			return err
		}
		env[p.Key] = v
	}
	sink := outputSink(&outHandler{sr: sr})
	code, err := cr.RunContainer(ctx, &backend.ContainerStep{Image: image, Entrypoint: entry, Args: args, Env: env, Dir: jr.workdir("")}, sink)
	sink.Flush()
	return sr.finish(code, err, "Container action exited with code %d.")
}

// checkout is Conveyor's native actions/checkout: the local working tree
// copied into the workspace, or a git clone of another repository.
func (sr *stepRun) checkout(ctx context.Context, c *expr.Context) error {
	jr := sr.jr
	with, err := sr.evalWith(c)
	if err != nil {
		return err
	}
	p, _ := lookupFold(with, "path")
	dst, err := checkoutDir(filepath.Join(jr.box.dir, "workspace"), jr.sandboxPath("workspace"), p)
	if err != nil {
		return err
	}
	repo, _ := lookupFold(with, "repository")
	ref, _ := lookupFold(with, "ref")
	ev := jr.e.opts.Event
	local := repo == "" || strings.EqualFold(repo, ev.Repository)
	if local && (ref == "" || ref == ev.Ref || ref == ev.SHA) {
		if jr.e.opts.RepoDir == "" {
			return errs.E("checkout", errs.Invalid, "no local repository to check out")
		}
		n, err := copyWorkingTree(ctx, jr.e.opts.RepoDir, dst)
		if err != nil {
			return err
		}
		jr.e.report(Event2{Type: Output, Job: jr.name, JobKey: jr.key, Step: sr.name, StepID: sr.id,
			Text: fmt.Sprintf("Copied %d files of the local working tree %s into the workspace", n, jr.e.opts.RepoDir)})
		return nil
	}
	url := repo
	if repo == "" {
		url = jr.e.opts.RepoDir
	} else if !strings.Contains(repo, "://") && !strings.HasPrefix(repo, "/") && !strings.HasPrefix(repo, "git@") {
		url = strings.TrimSuffix(jr.contexts.github.repo.serverURL, "/") + "/" + repo + ".git"
	}
	if err := os.MkdirAll(dst, 0o777); err != nil {
		return errs.Wrap("checkout", errs.Unavailable, err)
	}
	out := outputSink(&outHandler{sr: sr})
	defer out.Flush()
	git := func(args ...string) error {
		cmd := osexec.CommandContext(ctx, "git", args...)
		cmd.Dir = dst
		cmd.Stdout, cmd.Stderr = out, out
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
		if err := cmd.Run(); err != nil {
			return errs.E("checkout", errs.Other, "git %s: %v", args[0], err)
		}
		return nil
	}
	depth, _ := lookupFold(with, "fetch-depth")
	if depth == "" {
		depth = "1"
	}
	if err := git("init", "-q", "."); err != nil {
		return err
	}
	if err := git("remote", "add", "origin", url); err != nil {
		return err
	}
	fetchRef := ref
	if fetchRef == "" {
		fetchRef = "HEAD"
	}
	fetch := []string{"fetch", "-q", "--no-tags", "origin", fetchRef}
	if depth != "0" {
		fetch = append(fetch[:2], append([]string{"--depth", depth}, fetch[2:]...)...)
	}
	if err := git(fetch...); err != nil {
		return err
	}
	return git("checkout", "-q", "--detach", "FETCH_HEAD")
}

// copyWorkingTree copies src's working tree (tracked and untracked files
// that are not ignored, plus .git) into dst. Returns the number of files.
func copyWorkingTree(ctx context.Context, src, dst string) (int, error) {
	var files map[string]bool
	cmd := osexec.CommandContext(ctx, "git", "-C", src, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	if out, err := cmd.Output(); err == nil {
		files = map[string]bool{}
		for _, f := range strings.Split(string(out), "\x00") {
			if f != "" {
				files[filepath.FromSlash(f)] = true
			}
		}
	}
	n := 0
	err := actions.CopyTreeFunc(src, dst, func(rel string, d fs.DirEntry) bool {
		if files == nil || rel == ".git" || strings.HasPrefix(rel, ".git"+string(filepath.Separator)) {
			n++
			return true
		}
		if d.IsDir() {
			return true
		}
		if files[rel] {
			n++
			return true
		}
		return false
	})
	return n, err
}
