package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/term"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/console"
	"github.com/conveyor-ci/conveyor/internal/exec"
	"github.com/conveyor-ci/conveyor/internal/lint"
	"github.com/conveyor-ci/conveyor/internal/localrepo"
	"github.com/conveyor-ci/conveyor/internal/logs"
	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type runFlags struct {
	workflows, jobs, secrets, secretFiles, vars, varFiles, envs, inputs, platforms listFlag
	eventPath, backendName, actor, dir, memory, artifactDir, dockerEngine          string
	printPlan, keep, noColor                                                       bool
	parallel                                                                       int
	cpus                                                                           float64
	pids                                                                           int64
}

func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f runFlags
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: conveyor run [EVENT] [flags]\n\nRuns the workflows of the current repository that EVENT (default push) triggers.\n\nflags:")
		fs.PrintDefaults()
	}
	fs.Var(&f.workflows, "W", "workflow file or folder (repeatable; default .github/workflows and .conveyor)")
	fs.Var(&f.jobs, "j", "run only this job id and the jobs it needs (repeatable)")
	fs.Var(&f.secrets, "secret", "NAME=VALUE, or NAME to read it from the environment (repeatable)")
	fs.Var(&f.secretFiles, "secret-file", "dotenv file of secrets (repeatable)")
	fs.Var(&f.vars, "var", "NAME=VALUE for the vars context (repeatable)")
	fs.Var(&f.varFiles, "var-file", "dotenv file of variables (repeatable)")
	fs.Var(&f.envs, "env", "NAME=VALUE added to every job's env (repeatable)")
	fs.Var(&f.inputs, "input", "NAME=VALUE input for workflow_dispatch (repeatable)")
	fs.Var(&f.platforms, "P", "LABEL=IMAGE: image for a runs-on label; LABEL=-self-hosted runs on the host (repeatable)")
	fs.StringVar(&f.eventPath, "eventpath", "", "JSON file with the event payload")
	fs.StringVar(&f.backendName, "backend", "auto", "auto, docker or host (auto: docker when an engine answers)")
	fs.StringVar(&f.dockerEngine, "docker-engine", os.Getenv("CONVEYOR_DOCKER_ENGINE"), engineFlagHelp)
	fs.StringVar(&f.actor, "actor", "", "github.actor (default: git config user.name)")
	fs.StringVar(&f.dir, "C", ".", "the repository folder")
	fs.BoolVar(&f.printPlan, "plan", false, "print the plan as JSON and exit")
	fs.BoolVar(&f.keep, "keep", false, "keep job folders after the run (for debugging)")
	fs.StringVar(&f.artifactDir, "artifact-dir", "", "keep the run's artifacts (upload-artifact) in this folder (default: a temporary one)")
	fs.BoolVar(&f.noColor, "no-color", false, "no colors even on a terminal")
	fs.IntVar(&f.parallel, "jobs", runtime.NumCPU(), "most jobs running at once")
	fs.Float64Var(&f.cpus, "cpus", 0, "CPUs per job sandbox (docker), e.g. 1.5")
	fs.StringVar(&f.memory, "memory", "", "memory per job sandbox (docker), e.g. 512m, 2g")
	fs.Int64Var(&f.pids, "pids", 0, "most processes per job sandbox (docker)")
	cacheF := addCacheFlags(fs, defaultRunCacheDir())
	event := "push"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		event, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "conveyor run: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	repoDir, err := filepath.Abs(f.dir)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor run:", err)
		return 2
	}

	// Workflows: read, parse, lint. Invalid files stop the run (exit 2).
	files, err := localrepo.WorkflowFiles(repoDir, absAll(repoDir, f.workflows))
	if err != nil {
		fmt.Fprintln(stderr, "conveyor run:", err)
		return 2
	}
	var wfs []*workflow.Workflow
	bad := false
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintln(stderr, "conveyor run:", err)
			return 2
		}
		rel, _ := filepath.Rel(repoDir, file)
		if strings.HasPrefix(rel, "..") {
			rel = file
		}
		wf, probs := workflow.Parse(b, rel)
		if len(probs) == 0 {
			probs = lint.Workflow(wf)
		}
		if len(probs) > 0 {
			fmt.Fprintln(stderr, probs.Error())
			bad = true
			continue
		}
		wfs = append(wfs, wf)
	}
	if bad {
		return 2
	}
	p, err := plan.Compile(wfs, plan.Select{Event: event, Jobs: f.jobs})
	if err != nil {
		fmt.Fprintln(stderr, "conveyor run:", err)
		return 2
	}
	if f.printPlan {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(p)
		return 0
	}
	if len(p.Workflows) == 0 {
		fmt.Fprintf(stderr, "conveyor run: no workflow is triggered by %q\n", event)
		return 0
	}

	// The engine is asked (ping, orphan reaping started) while git tells
	// about the repository.
	type opened struct {
		b   *backends
		err error
	}
	bch := make(chan opened, 1)
	go func() {
		b, err := openBackends(ctx, f.backendName, f.dockerEngine, stderr)
		bch <- opened{b, err}
	}()
	opts, err := f.options(ctx, event, repoDir)
	ob := <-bch // openBackends is bounded: a 3 s ping
	if ob.err == nil {
		defer ob.b.close()
	}
	if err != nil {
		fmt.Fprintln(stderr, "conveyor run:", err)
		return 2
	}
	color := !f.noColor && isTerminal(stdout) && os.Getenv("NO_COLOR") == ""
	printer := console.New(stdout, color)
	opts.Reporter = printer
	if ob.err != nil {
		fmt.Fprintln(stderr, "conveyor run:", ob.err)
		return 2
	}
	backends := ob.b
	opts.Backend, opts.Host, opts.Containers = backends.main, backends.host, backends.containers
	if opts.Backend.Name() == "host" {
		opts.Platforms = hostPlatforms(opts.Platforms)
	}
	arts, cleanup, err := localArtifacts(f.artifactDir, f.keep)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor run:", err)
		return 2
	}
	defer cleanup()
	opts.Artifacts = arts
	var stopCache func()
	if opts.Cache, stopCache, err = cacheF.startRunCache(ctx, opts.Containers, stderr); err != nil {
		fmt.Fprintln(stderr, "conveyor run:", err)
		return 2
	}
	defer stopCache()
	res, err := exec.New(opts).Run(ctx, p)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor run:", err)
		return 1
	}
	printer.Summary(res)
	printLocalArtifacts(ctx, stdout, arts, f.artifactDir != "" || f.keep)
	if res.Failed() {
		return 1
	}
	return 0
}

func absAll(dir string, paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		if filepath.IsAbs(p) {
			out[i] = p
		} else {
			out[i] = filepath.Join(dir, p)
		}
	}
	return out
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// actImage is the image act users know for ubuntu-* labels (pulled when missing).
const actImage = "catthehacker/ubuntu:act-latest"

// defaultPlatforms maps GitHub's hosted labels to images.
var defaultPlatforms = map[string]string{
	"ubuntu-latest": actImage, "ubuntu-24.04": actImage,
	"ubuntu-22.04": actImage, "ubuntu-20.04": actImage,
	"self-hosted": "-self-hosted", "linux": actImage,
}

// hostPlatforms sends every label to the host when the host backend runs all.
func hostPlatforms(m map[string]string) map[string]string {
	out := map[string]string{}
	for k := range m {
		out[k] = "-self-hosted"
	}
	return out
}

func (f *runFlags) options(ctx context.Context, event, repoDir string) (exec.Options, error) {
	info := localrepo.Discover(ctx, repoDir)
	if f.actor != "" {
		info.Actor = f.actor
	}
	opts := exec.Options{RepoDir: repoDir, Parallel: f.parallel, KeepJobDirs: f.keep, Masker: logs.NewMasker(),
		Secrets: map[string]string{}, Vars: map[string]string{}, Env: map[string]string{}, Inputs: map[string]string{},
		Platforms: map[string]string{}}
	for k, v := range defaultPlatforms {
		opts.Platforms[k] = v
	}
	for _, p := range f.platforms {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" || v == "" {
			return opts, fmt.Errorf("-P %q: want LABEL=IMAGE", p)
		}
		opts.Platforms[strings.ToLower(k)] = v
	}
	for _, file := range f.secretFiles {
		if err := readDotenvInto(file, opts.Secrets); err != nil {
			return opts, err
		}
	}
	for _, s := range f.secrets {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			val, found := os.LookupEnv(k)
			if !found {
				return opts, fmt.Errorf("--secret %s: no such environment variable", k)
			}
			v = val
		}
		if k == "" {
			return opts, fmt.Errorf("--secret %q: empty name", s)
		}
		opts.Secrets[k] = v
	}
	for name, v := range opts.Secrets {
		if v == "" {
			return opts, fmt.Errorf("secret %s is empty: refusing an empty secret", name)
		}
	}
	for _, file := range f.varFiles {
		if err := readDotenvInto(file, opts.Vars); err != nil {
			return opts, err
		}
	}
	if err := putPairs(opts.Vars, f.vars, "--var"); err != nil {
		return opts, err
	}
	if err := putPairs(opts.Env, f.envs, "--env"); err != nil {
		return opts, err
	}
	if err := putPairs(opts.Inputs, f.inputs, "--input"); err != nil {
		return opts, err
	}
	payload := map[string]any{}
	if f.eventPath != "" {
		b, err := os.ReadFile(f.eventPath)
		if err != nil {
			return opts, err
		}
		if err := json.Unmarshal(b, &payload); err != nil {
			return opts, fmt.Errorf("%s: %v", f.eventPath, err)
		}
	}
	ref := info.Ref
	if r, ok := payload["ref"].(string); ok && r != "" {
		ref = r
	}
	if _, ok := payload["repository"]; !ok {
		owner, name, _ := strings.Cut(info.Repository, "/")
		payload["repository"] = map[string]any{"full_name": info.Repository, "name": name, "owner": map[string]any{"login": owner}}
	}
	if event == "push" {
		if _, ok := payload["ref"]; !ok {
			payload["ref"] = ref
		}
		if _, ok := payload["after"]; !ok {
			payload["after"] = info.SHA
		}
	}
	if event == "workflow_dispatch" {
		in := map[string]any{}
		for k, v := range opts.Inputs {
			in[k] = v
		}
		payload["inputs"] = in
	}
	head, base := "", ""
	if pr, ok := payload["pull_request"].(map[string]any); ok {
		if h, ok := pr["head"].(map[string]any); ok {
			head, _ = h["ref"].(string)
		}
		if b, ok := pr["base"].(map[string]any); ok {
			base, _ = b["ref"].(string)
		}
	}
	opts.Event = exec.Event{Name: event, Payload: payload, SHA: info.SHA, Ref: ref, Repository: info.Repository,
		Actor: info.Actor, RunID: strconv.Itoa(os.Getpid()), RunNumber: 1, HeadRef: head, BaseRef: base}
	res := backend.Resources{CPUs: f.cpus, PidsLimit: f.pids}
	if f.memory != "" {
		n, err := parseBytes(f.memory)
		if err != nil {
			return opts, err
		}
		res.MemoryBytes = n
	}
	opts.Resources = res
	return opts, nil
}

func readDotenvInto(file string, into map[string]string) error {
	fh, err := os.Open(file)
	if err != nil {
		return err
	}
	defer fh.Close()
	m, err := localrepo.ReadDotenv(fh)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	for k, v := range m {
		into[k] = v
	}
	return nil
}

func putPairs(into map[string]string, pairs []string, flagName string) error {
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return fmt.Errorf("%s %q: want NAME=VALUE", flagName, p)
		}
		into[k] = v
	}
	return nil
}

// parseBytes reads 512m, 2g, 1024k or a plain byte count.
func parseBytes(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "m"):
		mult, s = 1<<20, s[:len(s)-1]
	case strings.HasSuffix(s, "g"):
		mult, s = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q: want e.g. 512m or 2g", s)
	}
	return int64(n * float64(mult)), nil
}
