package exec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/actions"
	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/expr"
	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// ActionResolver fetches remote actions and reusable workflows
// (*actions.Cache). Resolved trees are shared: the executor copies them
// into the job directory before a job sees them.
type ActionResolver interface {
	Resolve(ctx context.Context, r actions.Ref) (*actions.Resolved, error)
}

// maxActionDepth bounds composite actions inside composite actions.
const maxActionDepth = 10

// actionSource names a remote action for github.action_repository and
// github.action_ref (empty for local actions); sha and path say which
// tree it is.
type actionSource struct{ repository, ref, sha, path string }

// remoteAction is one remote uses: of a job, resolved and copied into the
// job directory.
type remoteAction struct {
	ref  actions.Ref
	sha  string
	dir  string // host folder of the action (in the job directory)
	meta *workflow.Action
}

func (ra *remoteAction) source() actionSource {
	return actionSource{repository: ra.ref.Repository(), ref: ra.ref.Version, sha: ra.sha, path: ra.ref.Path}
}

// remoteActions are a job's remote actions. They are resolved before the
// first step (preflight) so that a workflow that cannot run fails before
// any step, as GitHub's "Set up job" does; composite actions met later
// (inside a local composite action) are resolved when their step runs.
type remoteActions struct {
	resolver ActionResolver
	jobDir   string
	notice   func(string)
	byUses   map[string]*remoteAction
	copies   map[string]string // owner/repo@sha → copy in the job directory
}

func newRemoteActions(r ActionResolver, jobDir string, notice func(string)) *remoteActions {
	return &remoteActions{resolver: r, jobDir: jobDir, notice: notice, byUses: map[string]*remoteAction{}, copies: map[string]string{}}
}

// isRemoteAction reports whether a step's uses: is fetched: not run:, not
// a local or docker:// action, not a native one.
func isRemoteAction(uses string) bool {
	return plan.StepKind(uses) == "remote-action" && !NativeAction(uses)
}

// preflight resolves every remote action of steps, and of the composite
// actions among them, recursively.
func (ra *remoteActions) preflight(ctx context.Context, steps []*workflow.Step, depth int) error {
	for _, s := range steps {
		if !isRemoteAction(s.Uses) {
			continue
		}
		a, err := ra.get(ctx, s.Uses)
		if err != nil {
			return err
		}
		if strings.EqualFold(a.meta.Runs.Using, "composite") {
			if depth >= maxActionDepth {
				return errs.E("uses", errs.Invalid, "%s: composite actions are nested more than %d deep", s.Uses, maxActionDepth)
			}
			if err := ra.preflight(ctx, a.meta.Runs.Steps, depth+1); err != nil {
				return errs.Wrap("in "+s.Uses, errs.KindOf(err), err)
			}
		}
	}
	return nil
}

// get resolves uses, copies its repository's tree into the job directory
// (once per commit) and reads its action.yml.
func (ra *remoteActions) get(ctx context.Context, uses string) (*remoteAction, error) {
	if a := ra.byUses[uses]; a != nil {
		return a, nil
	}
	ref, err := actions.Parse(uses)
	if err != nil {
		return nil, err
	}
	if ref.IsWorkflow() {
		return nil, errs.E("uses", errs.Invalid, "%s is a reusable workflow: call it with jobs.<id>.uses, not a step's uses", uses)
	}
	if ra.resolver == nil {
		return nil, errs.E("uses", errs.Unavailable, "%s is a remote action, and this executor has no action source (--actions-url)", uses)
	}
	res, err := ra.resolver.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	if res.Warning != "" {
		ra.notice("Warning: " + res.Warning)
	}
	if res.Fetched {
		ra.notice(fmt.Sprintf("Download action repository '%s@%s' (SHA:%s)", ref.Repository(), ref.Version, res.SHA))
	} else {
		ra.notice(fmt.Sprintf("Action repository '%s@%s' (SHA:%s) from the cache", ref.Repository(), ref.Version, res.SHA))
	}
	root, err := ra.copy(ref, res)
	if err != nil {
		return nil, err
	}
	meta, err := actions.LoadAction(root, ref.Path, uses)
	if err != nil {
		return nil, err
	}
	a := &remoteAction{ref: ref, sha: res.SHA, dir: filepath.Join(root, filepath.FromSlash(ref.Path)), meta: meta}
	ra.byUses[uses] = a
	return a, nil
}

// copy puts the cached tree into the job directory (_actions/owner/repo/sha,
// as the runner's _work/_actions): the job may change its copy, never the
// shared cache.
func (ra *remoteActions) copy(ref actions.Ref, res *actions.Resolved) (string, error) {
	key := strings.ToLower(ref.Repository()) + "@" + res.SHA
	if d, ok := ra.copies[key]; ok {
		return d, nil
	}
	dst := filepath.Join(ra.jobDir, "_actions", ref.Owner, ref.Repo, res.SHA)
	if err := os.MkdirAll(filepath.Dir(dst), 0o777); err != nil {
		return "", errs.Wrap("actions", errs.Unavailable, err)
	}
	if err := actions.CopyTree(res.Dir, dst); err != nil {
		return "", errs.Wrap("copy action "+ref.String(), errs.Unavailable, err)
	}
	ra.copies[key] = dst
	return dst, nil
}

// remoteAction runs a remote uses: step.
func (sr *stepRun) remoteAction(ctx context.Context, c *expr.Context) error {
	a, err := sr.jr.remote.get(ctx, sr.step.Uses)
	if err != nil {
		return err
	}
	return sr.runAction(ctx, c, a.meta, a.dir, a.source())
}

// runAction runs an action found at dir (local or remote) by its kind.
func (sr *stepRun) runAction(ctx context.Context, c *expr.Context, a *workflow.Action, dir string, src actionSource) error {
	with, err := sr.actionInputs(c, a)
	if err != nil {
		return err
	}
	using := strings.ToLower(a.Runs.Using)
	switch {
	case using == "composite":
		return sr.composite(ctx, c, a, dir, with, src)
	case using == "docker":
		err := sr.containerAction(ctx, c, "", a, with, dir, imageTag(dir, src))
		if a.Runs.PostEntrypoint != "" {
			sr.dockerPost(a, dir, src)
		}
		return err
	case strings.HasPrefix(using, "node"):
		return sr.nodeAction(ctx, a, dir, with, src)
	}
	return errs.E("action", errs.Invalid, "%s: runs.using %q is not supported", sr.step.Uses, a.Runs.Using)
}

// imageTag names what a docker action's image is built from: one image
// per remote action and commit (the job folder's copy differs per job),
// one per folder for a local action.
func imageTag(dir string, src actionSource) string {
	if src.repository == "" {
		return dir
	}
	return src.repository + "@" + src.sha + "/" + src.path
}

// withEntrypoint is a docker action whose container runs entry (its
// pre-entrypoint or post-entrypoint) instead of its entrypoint.
func withEntrypoint(a *workflow.Action, entry string) *workflow.Action {
	cp := *a
	cp.Runs.Entrypoint = entry
	return &cp
}

// dockerPost registers a docker action's post-entrypoint as a post step.
func (sr *stepRun) dockerPost(a *workflow.Action, dir string, src actionSource) {
	jr := sr.jr
	cond := a.Runs.PostIf
	if cond == "" {
		cond = "always()"
	}
	ps := &workflow.Step{Name: "Post " + sr.step.Uses, ID: "post-" + sr.id, If: cond, Uses: sr.step.Uses, With: sr.step.With}
	jr.steps.posts = append(jr.steps.posts, func(pctx context.Context) {
		jr.runPost(pctx, sr, ps, func(p *stepRun) error {
			c := jr.exprContext(sr.sc, sr.env)
			with, err := p.actionInputs(c, a)
			if err != nil {
				return err
			}
			p.actionID = sr.actionID
			return p.containerAction(pctx, c, "", withEntrypoint(a, a.Runs.PostEntrypoint), with, dir, imageTag(dir, src))
		})
	})
}

// checkRemoteNode makes sure, before the first step, that a node fits
// every remote JavaScript action of the job (resolved by preflight, those
// inside remote composite actions too), as checkNodeActions does for the
// repository's own.
func (jr *jobRun) checkRemoteNode(ctx context.Context) error {
	uses := make([]string, 0, len(jr.remote.byUses))
	for u := range jr.remote.byUses {
		uses = append(uses, u)
	}
	sort.Strings(uses)
	for _, u := range uses {
		using := strings.ToLower(jr.remote.byUses[u].meta.Runs.Using)
		if !strings.HasPrefix(using, "node") {
			continue
		}
		if _, err := jr.node(ctx, u, using); err != nil {
			return err
		}
	}
	return nil
}

// runPres runs the pre: of the job's remote JavaScript actions (the
// pre-entrypoint of docker ones) before the first step, in step order, as
// GitHub does.
func (jr *jobRun) runPres(ctx context.Context, sc *scope) {
	for i, s := range jr.job.Steps {
		if !isRemoteAction(s.Uses) {
			continue
		}
		a := jr.remote.byUses[s.Uses]
		if a == nil {
			continue
		}
		using := strings.ToLower(a.meta.Runs.Using)
		isNode, isDocker := strings.HasPrefix(using, "node") && a.meta.Runs.Pre != "", using == "docker" && a.meta.Runs.PreEntrypoint != ""
		if !isNode && !isDocker {
			continue
		}
		cond := a.meta.Runs.PreIf
		if cond == "" {
			cond = "always()"
		}
		name := "Pre " + plan.StepName(s, i)
		id := s.ID
		if id == "" {
			id = fmt.Sprintf("__%d", i+1)
		}
		ps := &workflow.Step{Name: name, ID: "pre-" + id, If: cond, Uses: s.Uses, With: s.With, Env: s.Env}
		of := &stepRun{jr: jr, sc: sc, step: s, env: jr.stepEnvOrEmpty(sc, s)}
		jr.runPost(ctx, of, ps, func(p *stepRun) error {
			c := jr.exprContext(sc, of.env)
			p.step = ps
			with, err := p.actionInputs(c, a.meta)
			if err != nil {
				return err
			}
			p.sc = &scope{actionPath: jr.toSandbox(a.dir), actionDir: a.dir, parent: sc, steps: sc.steps, source: a.source()}
			p.actionID = stateKey(i)
			if isDocker {
				return p.containerAction(ctx, c, "", withEntrypoint(a.meta, a.meta.Runs.PreEntrypoint), with, a.dir, imageTag(a.dir, a.source()))
			}
			argv, err := p.nodeArgv(ctx, a.meta, jr.toSandbox(a.dir)+"/"+a.meta.Runs.Pre)
			if err != nil {
				return err
			}
			return p.process(ctx, &backend.Process{Argv: argv, Dir: jr.workdir("")}, inputEnv(with), ps.ID)
		})
	}
}

// stepEnvOrEmpty evaluates a step's env for its pre: (errors leave it out:
// the step itself reports them).
func (jr *jobRun) stepEnvOrEmpty(sc *scope, s *workflow.Step) []kv {
	var env []kv
	for _, p := range s.Env {
		v, err := interp(p.Value, jr.exprContext(sc, env))
		if err != nil {
			return nil
		}
		env = setKV(env, p.Key, v)
	}
	return env
}

// depth is how many composite actions enclose the scope.
func (sc *scope) depth() int {
	n := 0
	for s := sc; s != nil && s.parent != nil; s = s.parent {
		n++
	}
	return n
}

// stateKey keys GITHUB_STATE of a job's top-level step: stable from its
// pre: to its post:, whatever ran in between.
func stateKey(index int) string { return fmt.Sprintf("#%d", index) }

// imageSteps are the steps of steps (and of the remote composite actions
// among them, resolved by preflight) known now to need another image:
// uses: docker://IMAGE and remote Docker actions with a docker:// image.
// The backend may prepare their containers with the sandbox (the
// kubernetes backend's step containers).
func (ra *remoteActions) imageSteps(steps []*workflow.Step, prefix string, depth int) []backend.ImageStepPlan {
	var out []backend.ImageStepPlan
	for i, s := range steps {
		name := s.ID
		if name == "" {
			name = fmt.Sprintf("#%d", i+1)
		}
		name = prefix + name
		if img, ok := strings.CutPrefix(s.Uses, "docker://"); ok {
			out = append(out, backend.ImageStepPlan{Step: name, Image: img})
			continue
		}
		a := ra.byUses[s.Uses]
		if a == nil || !isRemoteAction(s.Uses) {
			continue
		}
		switch using := strings.ToLower(a.meta.Runs.Using); {
		case using == "docker":
			if img, ok := strings.CutPrefix(a.meta.Runs.Image, "docker://"); ok {
				out = append(out, backend.ImageStepPlan{Step: name, Image: img})
			}
		case using == "composite" && depth < maxActionDepth:
			out = append(out, ra.imageSteps(a.meta.Runs.Steps, name+"/", depth+1)...)
		}
	}
	return out
}
