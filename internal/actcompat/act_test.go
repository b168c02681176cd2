package actcompat

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/actions"
	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/docker"
	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/exec"
	"github.com/conveyor-ci/conveyor/internal/lint"
	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/testenv"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// row is one line of EXPECTED.tsv.
type row struct {
	dir, event, expect, failureText string
	host                            bool
	kinds                           []string
}

// supportedKinds are the step kinds Conveyor runs today, besides remote
// actions available offline (see offlineAction).
var supportedKinds = map[string]bool{"run": true, "uses-local": true, "uses-docker": true, "reusable-local": true, "uses-remote:actions/checkout": true}

// offlineAction reports whether a uses-remote:owner/repo[/path] kind names
// an action whose repository the compat material holds
// (actions/<owner>/<repo>.git), so that it runs with --actions-url
// file://$CONVEYOR_COMPAT_DIR/actions. Most of the corpus's remote actions
// are github.com repositories that are not there.
func offlineAction(kind string) bool {
	name, ok := strings.CutPrefix(kind, "uses-remote:")
	if !ok || actionsDir == "" {
		return false
	}
	parts := strings.Split(name, "/")
	if len(parts) < 2 {
		return false
	}
	st, err := os.Stat(filepath.Join(actionsDir, parts[0], parts[1]+".git"))
	return err == nil && st.IsDir()
}

// actionsDir is $CONVEYOR_COMPAT_DIR/actions, set by runCorpus.
var actionsDir string

// outOfScope lists rows that use only supported step kinds but cannot pass
// here, with the reason. Every other in-scope row must pass.
var outOfScope = map[string]string{
	"shells/pwsh":                               "needs PowerShell (pwsh), which Debian does not package",
	"windows-prepend-path":                      "Windows runner only (act runs it on Windows hosts)",
	"windows-add-env":                           "Windows runner only (act runs it on Windows hosts)",
	"windows-prepend-path-powershell-5":         "Windows runner only (PowerShell 5)",
	"windows-add-env-powershell-5":              "Windows runner only (PowerShell 5)",
	"windows-shell-cmd":                         "Windows runner only (cmd.exe)",
	"local-action-js":                           "the corpus ships without its JavaScript files (compat/README.md)",
	"uses-nested-composite":                     "its composite action uses the remote actions/setup-node@v3 (EXPECTED.tsv does not list steps inside actions)",
	"local-action-dockerfile":                   "the corpus ships without the Dockerfiles of its docker actions",
	"local-action-via-composite-dockerfile":     "the corpus ships without the Dockerfiles of its docker actions",
	"basic":                                     "its ./actions/action1 is a Dockerfile action and the corpus ships without the Dockerfile",
	"uses-composite-check-for-input-collision":  "its composite action runs a JavaScript action; the corpus ships without JavaScript",
	"uses-composite-check-for-input-shadowing":  "its composite action runs a JavaScript action; the corpus ships without JavaScript",
	"job-container-non-root":                    "needs the catthehacker/ubuntu:runner-latest image; no registry is reachable here",
	"services":                                  "needs the postgres:12 image; no registry is reachable here (services are tested in internal/backend/docker with busybox)",
	"services-empty-image":                      "needs the postgres:12 image; no registry is reachable here",
	"services-host-network":                     "needs the nginx image; no registry is reachable here",
	"services-with-container":                   "needs the nginx image; no registry is reachable here",
	"mysql-service-container-with-health-check": "needs the mysql:8 image; no registry is reachable here",
	"uses-docker-url":                           "its steps rely on the node:16 image's entrypoint (node); the local stand-in image has none",
	"docker-action-custom-path":                 "its action.yml (at the corpus root in act's tree) is not in the corpus",
	"docker-action-host-env":                    "a Dockerfile action and the corpus ships without the Dockerfile",
	"workflow_call_inputs":                      "its workflow_call inputs have no type:, which GitHub rejects (workflow-parser case errors-required-property-missing); Conveyor sides with GitHub",
}

func readExpected(t *testing.T, dir string) []row {
	f, err := os.Open(filepath.Join(dir, "EXPECTED.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []row
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "" {
			continue
		}
		c := strings.Split(l, "\t")
		if len(c) < 6 {
			t.Fatalf("EXPECTED.tsv: short line %q", l)
		}
		rows = append(rows, row{dir: c[0], event: c[1], expect: c[2], failureText: c[3], host: c[4] == "yes", kinds: strings.Split(c[5], ",")})
	}
	return rows
}

func (r row) supported() (bool, string) {
	for _, k := range r.kinds {
		if strings.HasPrefix(k, "uses-remote:") && !supportedKinds[k] && !offlineAction(k) {
			return false, "uses " + k + ", not among the compat material's offline actions"
		}
		if !supportedKinds[k] && !offlineAction(k) {
			return false, "uses " + k
		}
	}
	return true, ""
}

func (r row) name() string { return r.dir + "@" + r.event }

// usesFetchedAction reports whether the row runs a remote action that is
// fetched (not a native one).
func (r row) usesFetchedAction() bool {
	for _, k := range r.kinds {
		if !supportedKinds[k] && offlineAction(k) {
			return true
		}
	}
	return false
}

// load parses the workflows of a case folder (not its sub-folders).
func load(t *testing.T, root string, r row) []*workflow.Workflow {
	entries, err := os.ReadDir(filepath.Join(root, r.dir))
	if err != nil {
		t.Fatal(err)
	}
	var wfs []*workflow.Workflow
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !(strings.HasSuffix(n, ".yml") || strings.HasSuffix(n, ".yaml")) {
			continue
		}
		rel := filepath.ToSlash(filepath.Join(r.dir, n))
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		wf, probs := workflow.Parse(b, rel)
		if len(probs) == 0 {
			probs = lint.Workflow(wf)
		}
		if len(probs) > 0 {
			t.Logf("%s does not load: %v", rel, probs)
			continue
		}
		wfs = append(wfs, wf)
	}
	return wfs
}

// logReporter keeps a case's output for the failure message.
type logReporter struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logReporter) Report(ev exec.Event2) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch ev.Type {
	case exec.Output, exec.Notice, exec.Annotation:
		fmt.Fprintf(&l.buf, "[%s] %s\n", ev.Job, ev.Text)
	case exec.StepFinished:
		fmt.Fprintf(&l.buf, "[%s] step %q: %s\n", ev.Job, ev.Step, ev.Result)
	case exec.JobFinished:
		fmt.Fprintf(&l.buf, "[%s] job: %s\n", ev.Job, ev.Result)
	case exec.RunError:
		fmt.Fprintf(&l.buf, "error: %s\n", ev.Text)
	}
}

// runCase runs one row and returns whether its outcome is the expected one.
// backends are what a corpus run uses: the main backend, the host one, and
// the container engine for container: jobs (nil when none answers).
type backends struct{ main, host, containers backend.Backend }

func runCase(t *testing.T, root string, r row, bs backends, platforms map[string]string, acts exec.ActionResolver) {
	t.Helper()
	wfs := load(t, root, r)
	p, err := plan.Compile(wfs, plan.Select{Event: r.event})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	payload := map[string]any{}
	if data, err := os.ReadFile(filepath.Join(root, r.dir, "event.json")); err == nil {
		if err := json.Unmarshal(data, &payload); err != nil {
			t.Fatalf("event.json: %v", err)
		}
	}
	inputs := map[string]string{}
	if in, ok := payload["inputs"].(map[string]any); ok {
		for k, v := range in {
			inputs[k] = fmt.Sprint(v)
		}
	}
	rep := &logReporter{}
	opts := exec.Options{
		Backend: bs.main, Host: bs.host, Containers: bs.containers, Platforms: platforms, RepoDir: root, Parallel: 2,
		Event: exec.Event{Name: r.event, Payload: payload, SHA: strings.Repeat("0", 40), Ref: "refs/heads/master",
			Repository: "nektos/act", Actor: "nektos/act", RunID: "1", RunNumber: 1},
		Env:      map[string]string{"ACT": "true"},
		Inputs:   inputs,
		Secrets:  map[string]string{},
		Reporter: rep,
		Actions:  acts,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := exec.New(opts).Run(ctx, p)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if len(p.Workflows) == 0 {
		t.Fatalf("no workflow of %s is triggered by %s", r.dir, r.event)
	}
	failed := res.Failed()
	if failed != (r.expect == "fail") {
		var jobs []string
		for _, j := range res.Jobs {
			jobs = append(jobs, j.Name+"="+j.Result)
		}
		sort.Strings(jobs)
		t.Errorf("%s: expected %s (%s), got failed=%v; jobs %v\n%s", r.name(), r.expect, r.failureText, failed, jobs, rep.buf.String())
	}
}

// runCorpus runs every in-scope row that want selects, as subtests, and
// prints the pass count.
func runCorpus(t *testing.T, label string, want func(r row) bool, bs backends, platforms map[string]string) {
	root := testenv.CompatDir(t, "act")
	actionsDir = testenv.CompatDir(t, "actions")
	acts, err := actions.New(actions.Options{Dir: t.TempDir(), BaseURL: "file://" + actionsDir})
	if err != nil {
		t.Fatal(err)
	}
	rows := readExpected(t, root)
	passed, total, remote := 0, 0, 0
	var skipped []string
	for _, r := range rows {
		if ok, why := r.supported(); !ok {
			skipped = append(skipped, r.name()+" ("+why+")")
			continue
		}
		if !want(r) {
			continue
		}
		if why, ok := outOfScope[r.dir]; ok {
			skipped = append(skipped, r.name()+" ("+why+")")
			continue
		}
		total++
		r := r
		ok := t.Run(r.name(), func(t *testing.T) { runCase(t, root, r, bs, platforms, acts) })
		if ok {
			passed++
		}
		if r.usesFetchedAction() && ok {
			remote++
		}
	}
	msg := fmt.Sprintf("act corpus (%s backend): %d/%d in-scope cases passed (%d with fetched remote actions); %d rows out of scope", label, passed, total, remote, len(skipped))
	t.Log(msg)
	t.Logf("out of scope:\n  %s", strings.Join(skipped, "\n  "))
	testenv.Report(t, msg)
}

func TestActCorpusHost(t *testing.T) {
	all := map[string]string{}
	for _, l := range []string{"ubuntu-latest", "ubuntu-22.04", "ubuntu-20.04", "ubuntu-18.04", "self-hosted", "linux"} {
		all[l] = "-self-hosted"
	}
	bs := backends{}
	// container: jobs need an engine even on the host backend.
	if d := dockerBackend(t, false); d != nil {
		// Without the test images (a laptop, outside CI) the container: rows
		// fail on their own; the other host rows still run.
		if os.Getenv("CI") != "" || (os.Getenv(testenv.EnvImage) != "" && os.Getenv(testenv.EnvBusyboxImage) != "") {
			tagAliases(t, d)
		}
		bs.containers = d
		bs.host = host.New(host.Options{Containers: d})
	} else {
		bs.host = host.New(host.Options{})
	}
	bs.main = bs.host
	// Rows with fetched actions run here too: act keeps them off its host
	// runs for its own set-up's sake, nothing in them needs a container.
	runCorpus(t, "host", func(r row) bool { return r.host || r.usesFetchedAction() }, bs, all)
}

// dockerBackend returns a docker backend with a static step runner built
// for it, or nil when no engine answers and required is false (outside CI).
func dockerBackend(t *testing.T, required bool) *docker.Backend {
	t.Helper()
	if required || os.Getenv("CI") != "" {
		testenv.DockerAvailable(t)
	}
	bin := filepath.Join(t.TempDir(), "conveyor")
	build := osexec.Command("go", "build", "-o", bin, "github.com/conveyor-ci/conveyor/cmd/conveyor")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the step runner: %v\n%s", err, out)
	}
	d, err := docker.New(docker.Options{RunnerBinary: bin})
	if err != nil {
		if required {
			t.Fatal(err)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Ping(ctx); err != nil {
		if required {
			t.Fatal(err)
		}
		t.Logf("no Docker engine (%v): container: jobs will fail", err)
		return nil
	}
	return d
}

// imageAliases are images the corpus names, made from the local test images
// when the engine does not have them (no registry is reachable in CI). An
// image the engine already has is left alone.
var imageAliases = map[string]string{
	"node:16-buster-slim": "debian",
	"node:16-buster":      "debian",
	"ubuntu:latest":       "debian",
	"alpine:latest":       "busybox",
}

// tagAliases makes the imageAliases the engine lacks from the local test
// images; both corpus runs need them (container: jobs of host rows too).
func tagAliases(t *testing.T, d *docker.Backend) {
	t.Helper()
	image := testenv.Image(t)
	busybox := testenv.BusyboxImage(t)
	ctx := context.Background()
	for alias, from := range imageAliases {
		if _, err := d.Client().ImageInspect(ctx, alias); err == nil {
			continue
		}
		src := image
		if from == "busybox" {
			src = busybox
		}
		if err := d.Client().ImageTag(ctx, src, alias); err != nil {
			t.Fatalf("tag %s as %s: %v", src, alias, err)
		}
	}
}

func TestActCorpusDocker(t *testing.T) {
	d := dockerBackend(t, true)
	image := testenv.Image(t)
	tagAliases(t, d)
	platforms := map[string]string{}
	for _, l := range []string{"ubuntu-latest", "ubuntu-22.04", "ubuntu-20.04", "ubuntu-18.04", "linux"} {
		platforms[l] = image
	}
	platforms["self-hosted"] = "-self-hosted"
	runCorpus(t, "docker", func(r row) bool { return true }, backends{main: d, host: host.New(host.Options{Containers: d}), containers: d}, platforms)
}
