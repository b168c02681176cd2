package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/actions"
)

// actionRemote makes a git repository acme/hello (tag v1) under a folder
// served as --actions-url file://...: a node20 action whose bundled
// dist/index.js is ~2 MB, as real actions' bundles are (github-script's is
// 1.6 MB, setup-node's 4 MB), so that parsing it and copying it count.
// It returns the base URL and the entry file's path in the repository.
func (h *harness) actionRemote() (base, entry string) {
	root := filepath.Join(h.tmp, "action-remotes")
	dir := filepath.Join(root, "acme", "hello")
	if _, err := os.Stat(dir); err == nil {
		return "file://" + root, filepath.Join(dir, "dist", "index.js")
	}
	var js strings.Builder
	js.WriteString("const fs = require('fs');\nconst pad = [\n")
	for js.Len() < 2<<20 {
		js.WriteString("  'lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt',\n")
	}
	js.WriteString("];\nconsole.log('hello ' + (process.env.INPUT_WHO || 'world') + ' ' + pad.length);\n")
	js.WriteString("if (process.env.GITHUB_OUTPUT) fs.appendFileSync(process.env.GITHUB_OUTPUT, 'said=hello\\n');\n")
	files := map[string]string{
		"action.yml":    "name: hello\ninputs:\n  who:\n    default: world\noutputs:\n  said:\n    description: s\nruns:\n  using: node20\n  main: dist/index.js\n",
		"dist/index.js": js.String(),
		"README.md":     "bench action\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			h.fail("%v", err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			h.fail("%v", err)
		}
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-q", "-m", "v1"}, {"tag", "v1"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@b", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@b")
		if out, err := cmd.CombinedOutput(); err != nil {
			h.fail("git %v: %v\n%s", args, err, out)
		}
	}
	return "file://" + root, filepath.Join(dir, "dist", "index.js")
}

// rawYAMLRun is a conveyor run of a workflow given as YAML, on the host,
// with extra environment.
func (h *harness) rawYAMLRun(yaml string, env []string, args ...string) conveyorRun {
	h.repos++
	dir := filepath.Join(h.tmp, fmt.Sprintf("repo%d", h.repos))
	wf := filepath.Join(dir, ".github", "workflows")
	if err := os.MkdirAll(wf, 0o755); err != nil {
		h.fail("%v", err)
	}
	if err := os.WriteFile(filepath.Join(wf, "bench.yml"), []byte(yaml), 0o644); err != nil {
		h.fail("%v", err)
	}
	return conveyorRun{dir: dir, args: append([]string{"run", "--no-color", "--backend", "host"}, args...), env: env}
}

const actionStepYAML = "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: acme/hello@v1\n        with:\n          who: bench\n"

// 8. A remote node action with a warm action cache vs a run: step running
// node on the same entry file: what resolving (from the cache), copying
// into the job folder and reading action.yml add.
func actionsWarm(h *harness) []row {
	if _, err := exec.LookPath("node"); err != nil {
		h.fail("node is not on PATH: %v", err)
	}
	base, entry := h.actionRemote()
	cache := filepath.Join(h.tmp, "actions-warm-cache")
	env := []string{"XDG_CACHE_HOME=" + cache}
	action := h.rawYAMLRun(actionStepYAML, env, "--actions-url", base)
	direct := h.rawYAMLRun("on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n      - run: node "+entry+"\n        env:\n          INPUT_WHO: bench\n", env)
	h.exec(action, false) // fills the cache
	r := h.timings("action / node step / node", func() time.Duration { return h.exec(action, false).wall },
		func() time.Duration { return h.exec(direct, false).wall },
		func() time.Duration { return h.rawArgv("node", entry) })
	extra := median(pairedDiff(r[0], r[1]))
	// The same work in process, without two whole runs' noise: what a job
	// does for a remote action before running node (open the cache,
	// resolve from it, copy into the job folder, read action.yml).
	n := 0
	parts := h.timings("resolve+copy+load", func() time.Duration {
		n++
		job := filepath.Join(h.tmp, fmt.Sprintf("job-%d", n))
		defer os.RemoveAll(job)
		t0 := time.Now()
		c, err := actions.New(actions.Options{Dir: filepath.Join(cache, "conveyor", "actions"), BaseURL: base})
		if err != nil {
			h.fail("%v", err)
		}
		ref, _ := actions.Parse("acme/hello@v1")
		res, err := c.Resolve(context.Background(), ref)
		if err != nil || res.Fetched {
			h.fail("warm resolve: %+v %v", res, err)
		}
		if err := actions.CopyTree(res.Dir, job); err != nil {
			h.fail("%v", err)
		}
		if _, err := actions.LoadAction(job, "", "acme/hello@v1"); err != nil {
			h.fail("%v", err)
		}
		return time.Since(t0)
	})
	inproc := median(parts[0])
	return []row{
		{name: "host remote node action, warm cache (extra)", ours: fmtDur(extra), floor: fmtDur(median(r[2])) + " (node)", ratio: "-",
			target: "<= 5 ms", ok: okIf(extra <= 5*time.Millisecond),
			comment: fmt.Sprintf("t(job: uses acme/hello@v1) - t(job: run: node ENTRY), paired: %s - %s; the action's tree is ~2 MB (a bundled dist/index.js); floor: os/exec of node ENTRY alone",
				fmtDur(median(r[0])), fmtDur(median(r[1])))},
		{name: "warm action: open cache+resolve+copy+action.yml", ours: fmtDur(inproc), floor: "-", ratio: "-",
			target: "<= 5 ms", ok: okIf(inproc <= 5*time.Millisecond),
			comment: "in process, the calls a job makes for a cached remote action before node starts (actions.New, Resolve, CopyTree of the ~2 MB tree, LoadAction)"},
	}
}

// 9. A first fetch (empty action cache) vs git clone --depth 1 of the same
// repository: what Conveyor's fetch costs over git's own.
func actionsFetch(h *harness) []row {
	if _, err := exec.LookPath("node"); err != nil {
		h.fail("node is not on PATH: %v", err)
	}
	base, _ := h.actionRemote()
	warmCache := filepath.Join(h.tmp, "actions-fetch-warm")
	warm := h.rawYAMLRun(actionStepYAML, []string{"XDG_CACHE_HOME=" + warmCache}, "--actions-url", base)
	h.exec(warm, false)
	n := 0
	cold := func() time.Duration {
		n++
		dir := filepath.Join(h.tmp, fmt.Sprintf("actions-cold-%d", n))
		defer os.RemoveAll(dir)
		r := warm
		r.env = []string{"XDG_CACHE_HOME=" + dir}
		return h.exec(r, false).wall
	}
	clone := func() time.Duration {
		n++
		dir := filepath.Join(h.tmp, fmt.Sprintf("clone-%d", n))
		defer os.RemoveAll(dir)
		return h.rawArgv("git", "-c", "advice.detachedHead=false", "clone", "-q", "--depth", "1", "--branch", "v1", base+"/acme/hello", dir)
	}
	// In process: Resolve on an empty cache (clone, HEAD, rename, ref
	// record), timed round-robin with the bare clone.
	resolve := func() time.Duration {
		n++
		dir := filepath.Join(h.tmp, fmt.Sprintf("actions-inproc-%d", n))
		defer os.RemoveAll(dir)
		c, err := actions.New(actions.Options{Dir: dir, BaseURL: base})
		if err != nil {
			h.fail("%v", err)
		}
		ref, _ := actions.Parse("acme/hello@v1")
		t0 := time.Now()
		if res, err := c.Resolve(context.Background(), ref); err != nil || !res.Fetched {
			h.fail("cold resolve: %+v %v", res, err)
		}
		return time.Since(t0)
	}
	r := h.timings("cold run / warm run / git clone / Resolve", cold, func() time.Duration { return h.exec(warm, false).wall }, clone, resolve)
	fetch := median(pairedDiff(r[0], r[1]))
	gitClone := median(r[2])
	inproc := median(r[3])
	return []row{
		{name: "host first action fetch (extra)", ours: fmtDur(fetch), floor: fmtDur(gitClone) + " (clone)", ratio: fmtRatio(fetch, gitClone),
			target: "<= 1.2x", ok: okIf(float64(fetch) <= 1.2*float64(gitClone)),
			comment: fmt.Sprintf("t(job, empty action cache) - t(job, warm cache), paired: %s - %s; floor: git clone -q --depth 1 --branch v1 file://.../acme/hello (~2 MB tree)",
				fmtDur(median(r[0])), fmtDur(median(r[1])))},
		{name: "first action fetch, Resolve in process", ours: fmtDur(inproc), floor: fmtDur(gitClone) + " (clone)", ratio: fmtRatio(inproc, gitClone),
			target: "<= 1.2x", ok: okIf(float64(inproc) <= 1.2*float64(gitClone)),
			comment: "actions.Cache.Resolve on an empty cache (clone, HEAD read, .git removed, rename into trees/, ref record), timed round-robin with the clone"},
	}
}

// compatActions is the base URL of the real actions in the compatibility
// material (CONVEYOR_COMPAT_DIR, default ../shared/compat from the repo).
func (h *harness) compatActions() string {
	dir := os.Getenv("CONVEYOR_COMPAT_DIR")
	if dir == "" {
		dir = filepath.Join("..", "shared", "compat")
	}
	abs, err := filepath.Abs(filepath.Join(dir, "actions"))
	if err != nil {
		h.fail("%v", err)
	}
	if _, err := os.Stat(filepath.Join(abs, "actions", "github-script.git")); err != nil {
		h.fail("no compat actions (set CONVEYOR_COMPAT_DIR): %v", err)
	}
	return "file://" + abs
}

const realActionYAML = `on: push
jobs:
  j:
    runs-on: ubuntu-latest
    steps:
      - id: s
        uses: actions/github-script@v7
        with:
          github-token: unused
          script: core.setOutput('said', 'hello ' + context.repo.repo)
`

const plainRunYAML = `on: push
jobs:
  j:
    runs-on: ubuntu-latest
    steps:
      - id: s
        run: echo "said=hello" >> "$GITHUB_OUTPUT"
`

// 10. A whole conveyor run of a workflow whose step is a real remote
// action (actions/github-script@v7, from the compatibility material; its
// action cache warm) vs the same workflow with a run: step instead.
func actionsReal(h *harness) []row {
	if _, err := exec.LookPath("node"); err != nil {
		h.fail("node is not on PATH: %v", err)
	}
	env := []string{"XDG_CACHE_HOME=" + filepath.Join(h.tmp, "actions-real-cache")}
	action := h.rawYAMLRun(realActionYAML, env, "--actions-url", h.compatActions())
	plain := h.rawYAMLRun(plainRunYAML, env)
	h.exec(action, false) // fills the action cache
	entry, defaults := h.cachedEntry(filepath.Join(h.tmp, "actions-real-cache"), h.compatActions(), "actions/github-script@v7")
	out := filepath.Join(h.tmp, "actions-real-output")
	if err := os.WriteFile(out, nil, 0o644); err != nil {
		h.fail("%v", err)
	}
	direct := func() time.Duration { // the action's own work: node on its entry, inputs in env
		cmd := exec.CommandContext(h.ctx, "node", entry)
		cmd.Env = append(append(os.Environ(), defaults...), "INPUT_GITHUB-TOKEN=unused", "INPUT_DEBUG=false", "INPUT_SCRIPT=core.setOutput('said', 'hello ' + context.repo.repo)",
			"GITHUB_OUTPUT="+out, "GITHUB_REPOSITORY=acme/bench")
		t0 := time.Now()
		if b, err := cmd.CombinedOutput(); err != nil {
			h.fail("node %s: %v\n%s", entry, err, b)
		}
		return time.Since(t0)
	}
	r := h.timings("github-script run / run: run / node ENTRY / node -e ''", func() time.Duration { return h.exec(action, false).wall },
		func() time.Duration { return h.exec(plain, false).wall }, direct,
		func() time.Duration { return h.rawArgv("node", "-e", "") })
	a, p := median(r[0]), median(r[1])
	return []row{{name: "whole run, warm actions/github-script@v7 vs run: step", ours: fmtDur(a), floor: fmtDur(p) + " (run:)",
		ratio: fmtRatio(a, p), target: "-", ok: "-",
		comment: fmt.Sprintf("conveyor run --backend host of one job with one step; paired difference %s; the action's node process alone (node ENTRY with its inputs): %s; node -e '' alone: %s",
			fmtDur(median(pairedDiff(r[0], r[1]))), fmtDur(median(r[2])), fmtDur(median(r[3])))}}
}

// cachedEntry is the host path of a cached action's node entry file, and
// its inputs' plain defaults as INPUT_* variables.
func (h *harness) cachedEntry(xdgCache, base, uses string) (string, []string) {
	c, err := actions.New(actions.Options{Dir: filepath.Join(xdgCache, "conveyor", "actions"), BaseURL: base})
	if err != nil {
		h.fail("%v", err)
	}
	ref, err := actions.Parse(uses)
	if err != nil {
		h.fail("%v", err)
	}
	res, err := c.Resolve(h.ctx, ref)
	if err != nil || res.Fetched {
		h.fail("warm resolve of %s: %+v %v", uses, res, err)
	}
	a, err := actions.LoadAction(res.Dir, "", uses)
	if err != nil {
		h.fail("%v", err)
	}
	var env []string
	for _, in := range a.Inputs {
		if in.HasDefault && !strings.Contains(in.Default, "${{") {
			env = append(env, "INPUT_"+strings.ToUpper(strings.ReplaceAll(in.Name, " ", "_"))+"="+in.Default)
		}
	}
	return filepath.Join(res.Dir, a.Runs.Main), env
}
