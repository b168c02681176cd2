package exec

import (
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/actions"
	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/fake"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// gitRemotes is a folder of git repositories served as BaseURL/owner/repo
// through file://, as a mirror of github.com would be.
type gitRemotes struct {
	t    *testing.T
	root string
}

func newGitRemotes(t *testing.T) *gitRemotes { return &gitRemotes{t: t, root: t.TempDir()} }

func (g *gitRemotes) url() string { return "file://" + g.root }

// publish commits files to owner/repo and tags the commit; it returns the
// commit SHA.
func (g *gitRemotes) publish(repo, tag string, files map[string]string) string {
	g.t.Helper()
	dir := filepath.Join(g.root, filepath.FromSlash(repo))
	git := func(args ...string) string {
		cmd := osexec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		out, err := cmd.CombinedOutput()
		if err != nil {
			g.t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if _, err := os.Stat(filepath.Join(dir, ".git")); err != nil {
		os.MkdirAll(dir, 0o755)
		git("init", "-q", "-b", "main")
	}
	writeFiles(g.t, dir, files)
	git("add", "-A")
	git("commit", "-q", "--allow-empty", "-m", "publish "+tag)
	git("tag", "-f", tag)
	return git("rev-parse", "HEAD")
}

func (g *gitRemotes) cache(t *testing.T, dir string, offline bool) *actions.Cache {
	t.Helper()
	c, err := actions.New(actions.Options{Dir: dir, BaseURL: g.url(), Offline: offline})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// jsAction is a JavaScript action whose pre, main and post print what they
// see and pass state along.
func jsAction(name string) map[string]string {
	return map[string]string{
		"action.yml": `name: ` + name + `
inputs:
  who:
    default: nobody
outputs:
  greeting:
    description: g
runs:
  using: node20
  pre: pre.js
  main: dist/main.js
  post: post.js
`,
		"pre.js": `const fs = require("fs");
console.log("pre ` + name + ` who=" + process.env.INPUT_WHO);
fs.appendFileSync(process.env.GITHUB_STATE, "fromPre=` + name + `-pre\n");
`,
		"dist/main.js": `const fs = require("fs");
const e = process.env;
console.log("main ` + name + ` who=" + e.INPUT_WHO + " state=" + e.STATE_fromPre +
  " repo=" + e.GITHUB_ACTION_REPOSITORY + " ref=" + e.GITHUB_ACTION_REF +
  " path-ok=" + fs.existsSync(e.GITHUB_ACTION_PATH + "/pre.js"));
fs.appendFileSync(e.GITHUB_OUTPUT, "greeting=hi-" + e.INPUT_WHO + "\n");
fs.appendFileSync(e.GITHUB_STATE, "fromMain=` + name + `-main\n");
`,
		"post.js": `console.log("post ` + name + ` state=" + process.env.STATE_fromPre + "," + process.env.STATE_fromMain)`,
	}
}

func requireNode(t *testing.T) {
	t.Helper()
	if _, err := osexec.LookPath("node"); err != nil {
		t.Fatal("these tests run JavaScript actions with the node on PATH:", err)
	}
}

// Remote JavaScript actions on the host: fetched before the first step
// (and said so), pre steps in step order before the first step, posts in
// reverse order after the last, state from pre and main to post, inputs
// with defaults, outputs, GITHUB_ACTION_*.
func TestRemoteNodeActionPrePostAndState(t *testing.T) {
	requireNode(t)
	g := newGitRemotes(t)
	shaA := g.publish("acme/alpha", "v1", jsAction("alpha"))
	g.publish("acme/beta", "v2", jsAction("beta"))
	src := `on: push
jobs:
  j:
    runs-on: x
    steps:
      - run: echo first step
      - id: a
        uses: acme/alpha@v1
        with:
          who: Ada
      - uses: acme/beta@v2
      - run: echo "got ${{ steps.a.outputs.greeting }}"
`
	cache := g.cache(t, t.TempDir(), false)
	res, rec := run(t, nil, src, Options{Actions: cache})
	if resultOf(res, "j") != Success {
		t.Fatalf("results: %s\n%s", resultsString(res), rec.dump())
	}
	out := strings.Join(rec.output("j"), "\n")
	order := []string{"pre alpha who=Ada", "pre beta who=nobody", "first step",
		"main alpha who=Ada state=alpha-pre repo=acme/alpha ref=v1 path-ok=true",
		"main beta who=nobody state=beta-pre repo=acme/beta ref=v2 path-ok=true",
		"got hi-Ada", "post beta state=beta-pre,beta-main", "post alpha state=alpha-pre,alpha-main"}
	last := -1
	for _, want := range order {
		i := strings.Index(out, want)
		if i < 0 || i < last {
			t.Fatalf("%q missing or out of order in\n%s", want, out)
		}
		last = i
	}
	// Fetched before the first step, with name, ref and SHA.
	dl := rec.index(func(ev Event2) bool {
		return ev.Type == Notice && ev.Text == "Download action repository 'acme/alpha@v1' (SHA:"+shaA+")"
	})
	first := rec.index(func(ev Event2) bool { return ev.Type == StepStarted })
	if dl < 0 || first < 0 || dl > first {
		t.Fatalf("download notice at %d, first step at %d\n%s", dl, first, rec.dump())
	}
	// A second run: from the cache, not fetched again.
	_, rec2 := run(t, nil, src, Options{Actions: cache})
	if rec2.index(func(ev Event2) bool { return strings.HasPrefix(ev.Text, "Download action repository") }) >= 0 {
		t.Errorf("the second run fetched again:\n%s", rec2.dump())
	}
	if st := cache.Stats(); st.Fetches != 2 {
		t.Errorf("fetches = %d, want 2 (one per repository)", st.Fetches)
	}
}

// A remote composite action that uses another remote action, with the
// github.action_* contexts in its steps.
func TestRemoteCompositeUsesRemoteAction(t *testing.T) {
	requireNode(t)
	g := newGitRemotes(t)
	g.publish("acme/alpha", "v1", jsAction("alpha"))
	g.publish("acme/tools", "v3", map[string]string{
		"greet/action.yml": `name: greet
inputs:
  who:
    required: true
outputs:
  said:
    value: ${{ steps.inner.outputs.greeting }}
runs:
  using: composite
  steps:
    - id: inner
      uses: acme/alpha@v1
      with:
        who: ${{ inputs.who }}
    - shell: bash
      run: |
        echo "composite at ${{ github.action_repository }}@${{ github.action_ref }}"
        cat "${{ github.action_path }}/../shared.txt"
`,
		"shared.txt": "a file beside the action\n",
	})
	src := `on: push
jobs:
  j:
    runs-on: x
    steps:
      - id: g
        uses: acme/tools/greet@v3
        with:
          who: Grace
      - run: echo "said ${{ steps.g.outputs.said }}"
`
	res, rec := run(t, nil, src, Options{Actions: g.cache(t, t.TempDir(), false)})
	if resultOf(res, "j") != Success {
		t.Fatalf("results: %s\n%s", resultsString(res), rec.dump())
	}
	for _, want := range []string{"main alpha who=Grace", "composite at acme/tools@v3", "a file beside the action", "said hi-Grace",
		"post alpha state=", "Download action repository 'acme/alpha@v1'", "Download action repository 'acme/tools@v3'"} {
		found := false
		for _, ev := range rec.events() {
			found = found || ((ev.Type == Notice || ev.Type == Output) && strings.HasPrefix(ev.Text, want))
		}
		if !found {
			t.Errorf("missing %q\n%s", want, rec.dump())
		}
	}
	// Both downloads (the nested one too) come before the first step.
	first := rec.index(func(ev Event2) bool { return ev.Type == StepStarted })
	nested := rec.index(func(ev Event2) bool { return strings.HasPrefix(ev.Text, "Download action repository 'acme/alpha@v1'") })
	if nested < 0 || nested > first {
		t.Errorf("the nested action was not resolved before the first step\n%s", rec.dump())
	}
}

// A workflow that cannot run fails before any step, naming the action
// and the fix.
func TestRemoteActionProblemsFailBeforeAnyStep(t *testing.T) {
	g := newGitRemotes(t)
	g.publish("acme/future", "v1", map[string]string{"action.yml": "name: f\nruns:\n  using: node99\n  main: x.js\n"})
	g.publish("acme/nometa", "v1", map[string]string{"README.md": "no action here\n"})
	g.publish("acme/deep", "v1", map[string]string{"action.yml": "name: d\nruns:\n  using: composite\n  steps:\n    - uses: acme/future@v1\n"})
	cases := map[string][]string{
		"acme/future@v1":  {"acme/future@v1", `runs.using "node99" is not supported`, "node20"},
		"acme/nometa@v1":  {"acme/nometa@v1", "can't find 'action.yml'"},
		"acme/missing@v1": {"acme/missing@v1", "cannot fetch", "check the name"},
		"acme/future@v9":  {"acme/future@v9", "cannot fetch"},
		"acme/deep@v1":    {"in acme/deep@v1", "acme/future@v1", "node99"},
	}
	cache := g.cache(t, t.TempDir(), false)
	for uses, wants := range cases {
		t.Run(uses, func(t *testing.T) {
			src := "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - run: echo must-not-run\n      - uses: " + uses + "\n"
			res, rec := run(t, nil, src, Options{Actions: cache})
			j := jobResult(res, "j")
			if j == nil || j.Result != Failure {
				t.Fatalf("results: %s", resultsString(res))
			}
			for _, w := range wants {
				if !strings.Contains(j.Error, w) {
					t.Errorf("error %q does not say %q", j.Error, w)
				}
			}
			if rec.index(func(ev Event2) bool { return ev.Type == StepStarted }) >= 0 || rec.hasOutput("j", "must-not-run") {
				t.Errorf("a step ran:\n%s", rec.dump())
			}
		})
	}
	// No action source at all.
	res, _ := run(t, nil, "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - uses: acme/future@v1\n", Options{})
	if j := jobResult(res, "j"); j == nil || j.Result != Failure || !strings.Contains(j.Error, "--actions-url") {
		t.Errorf("without a resolver: %+v", j)
	}
}

// Offline, cached actions run and uncached ones fail before any step,
// naming the action.
func TestRemoteActionOffline(t *testing.T) {
	requireNode(t)
	g := newGitRemotes(t)
	g.publish("acme/alpha", "v1", jsAction("alpha"))
	dir := t.TempDir()
	src := "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - uses: acme/alpha@v1\n"
	res, rec := run(t, nil, src, Options{Actions: g.cache(t, dir, true)})
	if j := jobResult(res, "j"); j.Result != Failure || !strings.Contains(j.Error, "acme/alpha@v1 is not in the action cache") {
		t.Fatalf("offline, uncached: %+v\n%s", j, rec.dump())
	}
	if res, rec := run(t, nil, src, Options{Actions: g.cache(t, dir, false)}); resultOf(res, "j") != Success {
		t.Fatalf("online: %s", rec.dump())
	}
	os.RemoveAll(g.root) // the remote is gone: offline needs only the cache
	off := g.cache(t, dir, true)
	if res, rec := run(t, nil, src, Options{Actions: off}); resultOf(res, "j") != Success {
		t.Fatalf("offline, cached: %s", rec.dump())
	}
	if st := off.Stats(); st != (actions.Stats{}) {
		t.Errorf("offline touched the network: %+v", st)
	}
}

// A job works on its own copy of an action: what it changes in the
// action's folder never reaches the shared cache.
func TestRemoteActionCacheIsReadOnlyForJobs(t *testing.T) {
	g := newGitRemotes(t)
	g.publish("acme/scribble", "v1", map[string]string{
		"action.yml": "name: s\nruns:\n  using: composite\n  steps:\n    - shell: bash\n      run: |\n        echo changed > \"$GITHUB_ACTION_PATH/data.txt\"\n        rm -f \"$GITHUB_ACTION_PATH/action.yml\"\n",
		"data.txt":   "original\n",
	})
	cache := g.cache(t, t.TempDir(), false)
	src := "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - uses: acme/scribble@v1\n      - uses: acme/scribble@v1\n"
	for i := 0; i < 2; i++ {
		if res, rec := run(t, nil, src, Options{Actions: cache}); resultOf(res, "j") != Success {
			t.Fatalf("run %d: %s", i, rec.dump())
		}
	}
	ref, _ := actions.Parse("acme/scribble@v1")
	r, err := cache.Resolve(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(r.Dir, "data.txt")); string(b) != "original\n" {
		t.Errorf("the cache was changed by a job: %q", b)
	}
	if _, err := os.Stat(filepath.Join(r.Dir, "action.yml")); err != nil {
		t.Errorf("the cache lost action.yml: %v", err)
	}
}

// A remote reusable workflow: inputs, secrets, outputs, its jobs as jobs
// of the run.
func TestRemoteReusableWorkflow(t *testing.T) {
	g := newGitRemotes(t)
	sha := g.publish("acme/workflows", "v1", map[string]string{".github/workflows/build.yml": `on:
  workflow_call:
    inputs:
      target:
        type: string
        default: all
    outputs:
      built:
        value: ${{ jobs.build.outputs.what }}
jobs:
  build:
    runs-on: x
    outputs:
      what: ${{ steps.b.outputs.what }}
    steps:
      - id: b
        run: |
          echo "building ${{ inputs.target }}"
          echo "what=built-${{ inputs.target }}" >> "$GITHUB_OUTPUT"
`})
	src := `on: push
jobs:
  call:
    uses: acme/workflows/.github/workflows/build.yml@v1
    with:
      target: docs
  after:
    needs: call
    runs-on: x
    steps:
      - run: echo "after ${{ needs.call.outputs.built }}"
`
	res, rec := run(t, nil, src, Options{Actions: g.cache(t, t.TempDir(), false)})
	if resultOf(res, "call / build") != Success || resultOf(res, "after") != Success {
		t.Fatalf("results: %s\n%s", resultsString(res), rec.dump())
	}
	if !rec.hasOutput("call / build", "building docs") || !rec.hasOutput("after", "after built-docs") {
		t.Errorf("outputs:\n%s", rec.dump())
	}
	if rec.index(func(ev Event2) bool {
		return ev.Type == Notice && ev.Text == "Download workflow repository 'acme/workflows@v1' (SHA:"+sha+")"
	}) < 0 {
		t.Errorf("no download notice:\n%s", rec.dump())
	}
	// A step's uses: naming a workflow, and a job's uses: naming an action, say so.
	res, _ = run(t, nil, "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - uses: acme/workflows/.github/workflows/build.yml@v1\n",
		Options{Actions: g.cache(t, t.TempDir(), false)})
	if j := jobResult(res, "j"); j == nil || !strings.Contains(j.Error, "is a reusable workflow") {
		t.Errorf("workflow as a step: %+v", j)
	}
}

// The real actions/github-script (a node20 action with a bundled dist/)
// from the compat material's bare repositories, as from a mirror.
func compatActions(t *testing.T) string {
	t.Helper()
	return "file://" + testenv.CompatDir(t, "actions")
}

func githubScriptWorkflow() string {
	return `on: push
jobs:
  j:
    runs-on: x
    steps:
      - id: gs
        uses: actions/github-script@v7
        with:
          github-token: not-a-real-token
          script: |
            core.setOutput('greeting', 'hello from ' + context.repo.owner + '/' + context.repo.repo)
            console.log('node ' + process.version)
            return {answer: 42}
      - run: |
          echo "greeting=${{ steps.gs.outputs.greeting }}"
          echo "result=$RESULT"
        env:
          RESULT: ${{ steps.gs.outputs.result }}
`
}

func TestGitHubScriptHost(t *testing.T) {
	requireNode(t)
	base := compatActions(t)
	c, err := actions.New(actions.Options{Dir: t.TempDir(), BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, rec := run(t, ctx, githubScriptWorkflow(), Options{Actions: c})
	if resultOf(res, "j") != Success {
		t.Fatalf("results: %s\n%s", resultsString(res), rec.dump())
	}
	for _, want := range []string{"greeting=hello from octo/repo", `result={"answer":42}`} {
		if !rec.hasOutput("j", want) {
			t.Errorf("missing %q in %q", want, rec.output("j"))
		}
	}
}

// A composite action that uses itself, and a reusable workflow that calls
// itself, stop at the depth limit with an error, before any step for the
// action.
func TestRemoteRecursionStopsAtTheDepthLimit(t *testing.T) {
	g := newGitRemotes(t)
	g.publish("acme/loop", "v1", map[string]string{
		"action.yml":                 "name: loop\nruns:\n  using: composite\n  steps:\n    - uses: acme/loop@v1\n",
		".github/workflows/self.yml": "on:\n  workflow_call:\njobs:\n  again:\n    uses: acme/loop/.github/workflows/self.yml@v1\n",
	})
	cache := g.cache(t, t.TempDir(), false)
	res, rec := run(t, nil, "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - uses: acme/loop@v1\n", Options{Actions: cache})
	if j := jobResult(res, "j"); j == nil || j.Result != Failure || !strings.Contains(j.Error, "nested more than 10 deep") {
		t.Fatalf("composite loop: %s\n%s", resultsString(res), rec.dump())
	}
	if rec.index(func(ev Event2) bool { return ev.Type == StepStarted }) >= 0 {
		t.Errorf("a step ran:\n%s", rec.dump())
	}
	res, rec = run(t, nil, "on: push\njobs:\n  call:\n    uses: acme/loop/.github/workflows/self.yml@v1\n", Options{Actions: cache})
	if !res.Failed() || !strings.Contains(rec.dump(), "nested more than 10 deep") {
		t.Fatalf("workflow loop: %s\n%s", resultsString(res), rec.dump())
	}
}

// A local composite action that uses a remote composite action that uses
// itself: resolved at step time, stopped by the run-time depth limit.
func TestLocalCompositeIntoRemoteLoopStops(t *testing.T) {
	g := newGitRemotes(t)
	g.publish("acme/loop", "v1", map[string]string{
		"action.yml": "name: loop\nruns:\n  using: composite\n  steps:\n    - uses: acme/loop@v1\n",
	})
	repo := t.TempDir()
	writeFiles(t, repo, map[string]string{".github/actions/l/action.yml": "name: l\nruns:\n  using: composite\n  steps:\n    - uses: acme/loop@v1\n"})
	res, rec := run(t, nil, "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - uses: ./.github/actions/l\n", Options{Actions: g.cache(t, t.TempDir(), false), RepoDir: repo})
	if resultOf(res, "j") != Failure || !strings.Contains(rec.dump(), "nested more than 10 deep") {
		t.Fatalf("%s\n%s", resultsString(res), rec.dump())
	}
}

// refusingResolver fails every fetch: native actions must never reach it.
type refusingResolver struct{ asked []string }

func (r *refusingResolver) Resolve(_ context.Context, ref actions.Ref) (*actions.Resolved, error) {
	r.asked = append(r.asked, ref.Owner+"/"+ref.Repo)
	return nil, errs.E("test", errs.Unavailable, "no network in this test")
}

// TestNativeActionsAreNeverFetched: checkout, the artifact actions and
// the cache actions run natively whatever their ref; the resolver is not
// asked for them.
func TestNativeActionsAreNeverFetched(t *testing.T) {
	repo := t.TempDir()
	src := `on: push
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/cache/restore@v4
        with: {path: x, key: k}
      - uses: actions/upload-artifact@v4
        with: {name: n, path: nothing-here, if-no-files-found: ignore}
`
	r := &refusingResolver{}
	_, rec := run(t, nil, src, Options{RepoDir: repo, Actions: r})
	if len(r.asked) > 0 {
		t.Errorf("the resolver was asked for %v\n%s", r.asked, rec.dump())
	}
}

// The steps known before the first step to need another image are
// announced to the backend in the job's spec: docker:// steps, remote
// Docker actions with a docker:// image, and those inside remote
// composite actions; not Dockerfile actions (built at run time) or local
// actions (read after the checkout).
func TestImageStepsAnnounced(t *testing.T) {
	g := newGitRemotes(t)
	g.publish("acme/img", "v1", map[string]string{"action.yml": "name: i\nruns:\n  using: docker\n  image: docker://alpine:3\n"})
	g.publish("acme/built", "v1", map[string]string{"action.yml": "name: b\nruns:\n  using: docker\n  image: Dockerfile\n", "Dockerfile": "FROM scratch\n"})
	g.publish("acme/comp", "v1", map[string]string{"action.yml": "name: c\nruns:\n  using: composite\n  steps:\n    - uses: acme/img@v1\n    - id: inner\n      uses: docker://busybox:1\n"})
	var mu sync.Mutex
	var got []backend.ImageStepPlan
	fb := fake.New(nil)
	fb.SetupErr = func(job *backend.JobSpec) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, job.ImageSteps...)
		return nil
	}
	src := `on: push
jobs:
  j:
    runs-on: x
    steps:
      - id: url
        uses: docker://debian:12
      - uses: acme/img@v1
      - uses: acme/built@v1
      - id: comp
        uses: acme/comp@v1
      - uses: ./local
`
	run(t, nil, src, Options{Actions: g.cache(t, t.TempDir(), false), Backend: fb})
	want := []backend.ImageStepPlan{{Step: "url", Image: "debian:12"}, {Step: "#2", Image: "alpine:3"}, {Step: "comp/#1", Image: "alpine:3"}, {Step: "comp/inner", Image: "busybox:1"}}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("announced %+v, want %+v", got, want)
	}
}
