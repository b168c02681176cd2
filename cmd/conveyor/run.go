package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/term"

	"github.com/conveyor-ci/conveyor/internal/artifact"
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

func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f runFlags
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	f.register(fs, stdout)
	cacheF := addCacheFlags(fs, defaultRunCacheDir())
	event, explicitEvent, code, done := parseRunArgs(fs, args, stderr)
	if done {
		return code
	}
	if f.version {
		return versionMain(ctx, nil, stdout, stderr)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "conveyor run: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if !workflow.IsEvent(event) {
		fmt.Fprintf(stderr, "conveyor run: unknown event %q%s\nknown events: %s\n", event, didYouMean(event, workflow.Events()), strings.Join(workflow.Events(), ", "))
		return 2
	}
	repoDir, wfs, invalid, err := f.load(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor run:", err)
		return 2
	}
	if f.list {
		listJobs(stdout, wfs, event, explicitEvent)
		return exitFor(invalid, nil)
	}
	if err := checkJobIDs(wfs, f.jobs); err != nil {
		fmt.Fprintln(stderr, "conveyor run:", err)
		return 2
	}
	if f.printPlan || f.dryRun {
		return f.planOnly(ctx, event, repoDir, wfs, invalid, stdout, stderr)
	}
	return f.execute(ctx, event, repoDir, wfs, invalid, cacheF, stdout, stderr)
}

// load finds the repository's workflow files (or those of --workflows)
// and reads them; invalid ones come back as failed summary entries.
func (f *runFlags) load(stderr io.Writer) (repoDir string, wfs []*workflow.Workflow, invalid []*exec.JobResult, err error) {
	if repoDir, err = filepath.Abs(f.dir); err != nil {
		return "", nil, nil, err
	}
	files, err := localrepo.WorkflowFiles(repoDir, absAll(repoDir, f.workflows))
	if err != nil {
		return "", nil, nil, err
	}
	wfs, invalid, err = loadWorkflows(repoDir, files, stderr)
	if err != nil {
		return "", nil, nil, err
	}
	return repoDir, wfs, invalid, nil
}

// execute runs the workflows the event triggers, prints the summary and
// returns the exit code.
func (f *runFlags) execute(ctx context.Context, event, repoDir string, wfs []*workflow.Workflow, invalid []*exec.JobResult, cacheF *cacheFlags, stdout, stderr io.Writer) int {
	opts, p, backends, openErr, err := f.prepareWithBackends(ctx, event, repoDir, wfs, stderr)
	if backends != nil {
		defer backends.close()
	}
	if err != nil {
		fmt.Fprintln(stderr, "conveyor run:", err)
		return 2
	}
	color := !f.noColor && isTerminal(stdout) && os.Getenv("NO_COLOR") == ""
	printer := console.New(stdout, color)
	if len(p.Workflows) == 0 {
		if len(invalid) > 0 {
			printer.Summary(&exec.Result{Jobs: invalid})
		} else {
			fmt.Fprintf(stderr, "conveyor run: no workflow is triggered by %q\n", event)
		}
		return exitFor(invalid, nil)
	}
	opts.Reporter = printer
	if openErr != nil {
		fmt.Fprintln(stderr, "conveyor run:", openErr)
		return 2
	}
	opts.Backend, opts.Host, opts.Containers = backends.main, backends.host, backends.containers
	if opts.Backend.Name() == "host" {
		opts.Platforms = hostPlatforms(opts.Platforms)
	}
	arts, cleanup, err := f.services(ctx, &opts, cacheF, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor run:", err)
		return 2
	}
	defer cleanup()
	res, err := exec.New(opts).Run(ctx, p)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor run:", err)
		return 1
	}
	res.Jobs = append(invalid, res.Jobs...)
	printer.Summary(res)
	printLocalArtifacts(ctx, stdout, arts, f.artifactDir != "" || f.keep)
	return exitFor(invalid, res)
}

// prepareWithBackends prepares the run's options and plan while the engine
// is asked (ping, orphan reaping started), as git tells about the
// repository. backends, when not nil, is the caller's to close; openErr
// says why they could not be opened (it matters only when a workflow runs).
func (f *runFlags) prepareWithBackends(ctx context.Context, event, repoDir string, wfs []*workflow.Workflow, stderr io.Writer) (_ exec.Options, _ *plan.Plan, _ *backends, openErr, err error) {
	type opened struct {
		b   *backends
		err error
	}
	bch := make(chan opened, 1)
	go func() {
		b, err := f.openBackends(ctx, stderr)
		bch <- opened{b, err}
	}()
	opts, p, err := f.prepare(ctx, event, repoDir, wfs, stderr)
	ob := <-bch // openBackends is bounded: a 3 s ping
	if ob.err != nil {
		ob.b = nil
	}
	return opts, p, ob.b, ob.err, err
}

// parseRunArgs parses the event and the flags: the event comes first or,
// as act takes it, after the flags (conveyor run -l push); done says
// runMain returns code now.
func parseRunArgs(fs *flag.FlagSet, args []string, stderr io.Writer) (event string, explicit bool, code int, done bool) {
	event = "push"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		event, args, explicit = args[0], args[1:], true
	}
	if code, done := parseRunFlags(fs, args, stderr); done {
		return "", false, code, true
	}
	if fs.NArg() > 0 && !explicit {
		event, explicit = fs.Arg(0), true
		if code, done := parseRunFlags(fs, fs.Args()[1:], stderr); done {
			return "", false, code, true
		}
	}
	return event, explicit, 0, false
}

// services gives the run its artifact folder, its remote actions
// (fetched into ~/.cache/conveyor/actions) and its cache; cleanup ends
// them.
func (f *runFlags) services(ctx context.Context, opts *exec.Options, cacheF *cacheFlags, stderr io.Writer) (*artifact.Dir, func(), error) {
	arts, cleanArts, err := localArtifacts(f.artifactDir, f.keep)
	if err != nil {
		return nil, nil, err
	}
	opts.Artifacts = arts
	actionsDir, err := userActionsDir()
	if err == nil {
		opts.Actions, err = f.actions.open(actionsDir)
	}
	if err != nil {
		cleanArts()
		return nil, nil, fmt.Errorf("action cache: %w", err)
	}
	var stopCache func()
	if opts.Cache, stopCache, err = cacheF.startRunCache(ctx, opts.Containers, stderr); err != nil {
		cleanArts()
		return nil, nil, err
	}
	return arts, func() { stopCache(); cleanArts() }, nil
}

// parseRunFlags parses the flags; done says runMain returns code now
// (--help: 0; a flag error: 2, with the closest flag's name).
func parseRunFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (code int, done bool) {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return 0, true
	}
	fmt.Fprintf(stderr, "conveyor run: %v%s\nrun 'conveyor run --help' for the flags\n", err, flagSuggestion(fs, err))
	return 2, true
}

// exitFor is the exit code of a run: 1 when a workflow file was invalid or
// a job failed.
func exitFor(invalid []*exec.JobResult, res *exec.Result) int {
	if len(invalid) > 0 || res != nil && res.Failed() {
		return 1
	}
	return 0
}

// loadWorkflows reads, parses and lints the files. An invalid file does not
// stop the others, as on GitHub: its problems go to stderr and it becomes
// a failed entry of the summary, at its first problem's file:line:col.
func loadWorkflows(repoDir string, files []string, stderr io.Writer) ([]*workflow.Workflow, []*exec.JobResult, error) {
	var wfs []*workflow.Workflow
	var invalid []*exec.JobResult
	for _, file := range files {
		rel, _ := filepath.Rel(repoDir, file)
		if strings.HasPrefix(rel, "..") {
			rel = file
		}
		b, err := readWorkflowFile(repoDir, file)
		if err != nil {
			// Unreadable (a link out of the repository, a device, too big):
			// failed like an invalid file, the others still run.
			fmt.Fprintln(stderr, "conveyor run:", err)
			invalid = append(invalid, &exec.JobResult{Workflow: rel, Name: rel, Result: exec.Failure, Error: err.Error()})
			continue
		}
		wf, probs := workflow.Parse(b, rel)
		if len(probs) == 0 {
			probs = lint.Workflow(wf)
		}
		if len(probs) == 0 {
			for _, w := range lint.Warnings(wf) {
				fmt.Fprintln(stderr, w.Error())
			}
			wfs = append(wfs, wf)
			continue
		}
		fmt.Fprintln(stderr, probs.Error())
		msg := "invalid workflow: " + probs[0].Error()
		if len(probs) > 1 {
			msg += fmt.Sprintf(" (and %d more)", len(probs)-1)
		}
		invalid = append(invalid, &exec.JobResult{Workflow: rel, Name: rel, Result: exec.Failure, Error: msg})
	}
	return wfs, invalid, nil
}

// prepare builds the run's options and its plan: the workflows the event
// triggers, with their on: filters applied as the server applies them.
func (f *runFlags) prepare(ctx context.Context, event, repoDir string, wfs []*workflow.Workflow, stderr io.Writer) (exec.Options, *plan.Plan, error) {
	opts, err := f.options(ctx, event, repoDir)
	if err != nil {
		return opts, nil, err
	}
	matched, err := matchWorkflows(ctx, wfs, opts.Event, repoDir, stderr)
	if err != nil {
		return opts, nil, err
	}
	p, err := plan.Compile(matched, plan.Select{Event: event, Jobs: f.jobs})
	return opts, p, err
}

// planOnly is --plan (the plan as JSON) and --dryrun (what would run).
func (f *runFlags) planOnly(ctx context.Context, event, repoDir string, wfs []*workflow.Workflow, invalid []*exec.JobResult, stdout, stderr io.Writer) int {
	opts, p, err := f.prepare(ctx, event, repoDir, wfs, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor run:", err)
		return 2
	}
	if f.printPlan {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(p)
		return exitFor(invalid, nil)
	}
	printDryRun(stdout, p, opts)
	for _, j := range invalid {
		fmt.Fprintf(stdout, "%s: would fail: %s\n", j.Name, j.Error)
	}
	return exitFor(invalid, nil)
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
	if len(f.matrix) > 0 {
		opts.MatrixFilter = map[string]string{}
		for _, m := range f.matrix {
			k, v, ok := strings.Cut(m, ":")
			if !ok || k == "" {
				return opts, fmt.Errorf("--matrix %q: want NAME:VALUE", m)
			}
			opts.MatrixFilter[k] = v
		}
	}
	if err := f.values.load(repoDir, &opts); err != nil {
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
		if payload == nil {
			return opts, fmt.Errorf("%s: not a JSON object", f.eventPath)
		}
	}
	opts.Event = localEvent(ctx, event, repoDir, info, payload, opts.Inputs)
	res := backend.Resources{CPUs: f.cpus, PidsLimit: f.pids}
	if f.memory != "" {
		n, err := parseBytes(f.memory)
		if err != nil {
			return opts, err
		}
		res.MemoryBytes = n
	}
	opts.Resources = res
	network, err := backend.ParseNetworkPolicy(f.networkPolicy)
	if err != nil {
		return opts, err
	}
	opts.Network = network
	opts.Runtime = f.runtime
	if opts.Profiles, err = loadLabelConfig(f.labelConfig); err != nil {
		return opts, err
	}
	return opts, nil
}

// load fills the secrets, variables, env and inputs of opts: dotenv files
// first (.secrets, .vars, .env, .input of the repository when present and
// no file flag is given, as act does), then the one-by-one flags.
func (v *valueFlags) load(repoDir string, opts *exec.Options) error {
	for _, d := range []struct {
		files []string
		name  string
		into  map[string]string
	}{{v.secretFiles, ".secrets", opts.Secrets}, {v.varFiles, ".vars", opts.Vars}, {v.envFiles, ".env", opts.Env}, {v.inputFiles, ".input", opts.Inputs}} {
		files := d.files
		if len(files) == 0 {
			if st, err := os.Stat(filepath.Join(repoDir, d.name)); err == nil && st.Mode().IsRegular() {
				files = []string{filepath.Join(repoDir, d.name)}
			}
		}
		for _, file := range files {
			if err := readDotenvInto(file, d.into); err != nil {
				return err
			}
		}
	}
	for _, s := range v.secrets {
		k, val, ok := strings.Cut(s, "=")
		if !ok {
			env, found := os.LookupEnv(k)
			if !found {
				return fmt.Errorf("--secret %s: no such environment variable", k)
			}
			val = env
		}
		if k == "" {
			return fmt.Errorf("--secret %q: empty name", s)
		}
		opts.Secrets[k] = val
	}
	for name, val := range opts.Secrets {
		if val == "" {
			return fmt.Errorf("secret %s is empty: refusing an empty secret", name)
		}
	}
	if err := putPairs(opts.Vars, v.vars, "--var"); err != nil {
		return err
	}
	if err := putPairs(opts.Env, v.envs, "--env"); err != nil {
		return err
	}
	return putPairs(opts.Inputs, v.inputs, "--input")
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
