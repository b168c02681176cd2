package jobrun

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/jobspec"
	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/testenv"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// compiled is the compiled form of job key of yaml, as the server makes it.
func compiled(t testing.TB, yaml, file, key, event string) *jobspec.Job {
	t.Helper()
	wf, probs := workflow.Parse([]byte(yaml), file)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	j, err := plan.Spec(wf, key, event)
	if err != nil {
		t.Fatal(err)
	}
	b, err := jobspec.EncodeJob(j)
	if err != nil {
		t.Fatal(err)
	}
	if j, err = jobspec.DecodeJob(b); err != nil {
		t.Fatal(err)
	}
	return j
}

// A worker given the compiled job runs it without the workflow file: the
// file is garbage here, and the job runs as it would from a good one.
func TestRunFromTheCompiledJob(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "README.md"), []byte("from the source dir\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := host.New(host.Options{})
	env := Env{Backend: h, Host: h, Platforms: map[string]string{"ubuntu-latest": "-self-hosted"}}
	asg := spec(t, "jobs: [not: {a workflow")
	asg.Job = compiled(t, flow, asg.Run.Workflow, "build", "push")
	var w chunks
	log := NewLog(&w, 7, "build", nil)
	c := Run(t.Context(), env, asg, src, filepath.Join(t.TempDir(), "work"), log)
	log.Close()
	if c.Status != jobspec.Success || c.Outputs["v"] != "out-1" {
		t.Fatalf("completion: %+v\nlog:\n%s", c, w.text())
	}
	for _, want := range []string{"needs.dep=success/y sha=abc123 repo=octo/repo", "from the source dir", "Job build: success"} {
		if !strings.Contains(w.text(), want) {
			t.Errorf("log lacks %q:\n%s", want, w.text())
		}
	}

	// A compiled job for another key than the assignment's is refused.
	asg.Job = compiled(t, flow, asg.Run.Workflow, "dep", "push")
	var w2 chunks
	log = NewLog(&w2, 7, "build", nil)
	c = Run(t.Context(), env, asg, src, t.TempDir(), log)
	log.Close()
	if c.Status != jobspec.Error || !strings.Contains(c.Error, `the compiled job is "dep"`) {
		t.Errorf("mismatched compiled job: %+v", c)
	}
	// So is one of a contract version this worker does not read.
	asg.Job = compiled(t, flow, asg.Run.Workflow, "build", "push")
	asg.Job.Version = jobspec.Version + 1
	c = Run(t.Context(), env, asg, src, t.TempDir(), NewLog(&chunks{}, 7, "build", nil))
	if c.Status != jobspec.Error || !strings.Contains(c.Error, "upgrade it") {
		t.Errorf("compiled job of a newer version: %+v", c)
	}
}

// Errors a job meets at run time name the workflow file's line, from the
// compiled job's positions.
func TestCompiledJobKeepsPositions(t *testing.T) {
	const yaml = `on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo hi
        env:
          BAD: ${{ fromJSON('{') }}
`
	h := host.New(host.Options{})
	env := Env{Backend: h, Host: h, Platforms: map[string]string{"ubuntu-latest": "-self-hosted"}}
	run := func(asg *jobspec.Assignment) (jobspec.Report, string) {
		var w chunks
		log := NewLog(&w, 7, "build", nil)
		c := Run(t.Context(), env, asg, t.TempDir(), t.TempDir(), log)
		log.Close()
		return c, w.text()
	}
	asg := spec(t, yaml)
	asg.Needs = nil
	fromYAML, logYAML := run(asg)
	asg.Run.WorkflowYAML = ""
	asg.Job = compiled(t, yaml, asg.Run.Workflow, "build", "push")
	fromJob, logJob := run(asg)
	if fromYAML.Status != jobspec.Failure || !strings.Contains(logYAML, "env BAD (line 8)") {
		t.Fatalf("from YAML: %+v\n%s", fromYAML, logYAML)
	}
	if fromJob.Status != fromYAML.Status || !strings.Contains(logJob, "env BAD (line 8)") {
		t.Errorf("from the compiled job: %+v\n%s", fromJob, logJob)
	}
}

// outcome is what a job's report says, without times.
type outcome struct {
	Status  string
	Outputs map[string]string
	Results []string
}

func outcomeOf(r jobspec.Report, workDir string) outcome {
	o := outcome{Status: r.Status, Outputs: r.Outputs}
	if len(o.Outputs) == 0 {
		o.Outputs = nil
	}
	for _, i := range r.Results {
		o.Results = append(o.Results, fmt.Sprintf("%s=%s %s", i.Name, i.Result, strings.ReplaceAll(i.Error, workDir, "WORK")))
	}
	sort.Strings(o.Results) // matrix legs end in any order
	return o
}

// runWorkflow runs every job of a workflow file as the server does (one
// assignment each, in the order of needs, given their outcomes), from
// the file or from compiled jobs, and returns each job's outcome.
func runWorkflow(t *testing.T, env Env, file, yaml, srcDir string, fromJob bool) map[string]outcome {
	t.Helper()
	wf, probs := workflow.Parse([]byte(yaml), file)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	p, err := plan.Compile([]*workflow.Workflow{wf}, plan.Select{Event: "push", AnyEvent: true})
	if err != nil {
		t.Fatal(err)
	}
	order, err := p.Workflows[0].Order()
	if err != nil {
		t.Fatal(err)
	}
	needs := map[string]jobspec.Need{}
	out := map[string]outcome{}
	for _, key := range order {
		asg := spec(t, yaml)
		asg.Key, asg.Name, asg.Run.Workflow, asg.Needs = key, key, file, needs
		if fromJob {
			asg.Job = compiled(t, yaml, file, key, "push")
			asg.Run.WorkflowYAML = "not: [read"
		}
		work := filepath.Join(t.TempDir(), "work")
		c := Run(context.Background(), env, asg, srcDir, work, NewLog(&chunks{}, 1, key, nil))
		out[key] = outcomeOf(c, work)
		needs[key] = jobspec.Need{Result: c.Status, Outputs: c.Outputs}
	}
	return out
}

// The act corpus's cases that run on the host backend with run: steps
// only end the same, job by job, when they run from compiled jobs as
// when they run from the workflow file.
func TestCompiledRunsLikeYAML(t *testing.T) {
	root := testenv.CompatDir(t, "act")
	f, err := os.Open(filepath.Join(root, "EXPECTED.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	platforms := map[string]string{}
	for _, l := range []string{"ubuntu-latest", "ubuntu-22.04", "ubuntu-20.04", "ubuntu-18.04", "self-hosted", "linux"} {
		platforms[l] = "-self-hosted"
	}
	h := host.New(host.Options{})
	env := Env{Backend: h, Host: h, Platforms: platforms}
	sc := bufio.NewScanner(f)
	cases := 0
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if len(c) < 6 || strings.HasPrefix(c[0], "#") || c[1] != "push" || c[4] != "yes" || c[5] != "run" {
			continue
		}
		dir := filepath.Join(root, c[0])
		b, err := os.ReadFile(filepath.Join(dir, "push.yml"))
		if err != nil {
			continue
		}
		cases++
		t.Run(c[0], func(t *testing.T) {
			file := ".github/workflows/" + strings.ReplaceAll(c[0], "/", "-") + ".yml"
			want := runWorkflow(t, env, file, string(b), dir, false)
			got := runWorkflow(t, env, file, string(b), dir, true)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("from compiled jobs:\n%+v\nfrom the file:\n%+v", got, want)
			}
		})
	}
	if cases < 20 {
		t.Errorf("only %d act cases ran", cases)
	}
	t.Logf("%d act cases end the same from compiled jobs", cases)
}

// The server reads a job's environment and whether its token may read
// the run from the compiled job, not from the workflow file.
func TestSettingsOf(t *testing.T) {
	const yaml = `on: push
permissions: read-all
jobs:
  deploy:
    environment: " production "
    permissions:
      actions: none
    runs-on: ubuntu-latest
    steps: [{run: echo}]
  dyn:
    environment: ${{ inputs.env }}
    runs-on: ubuntu-latest
    steps: [{run: echo}]
`
	for key, want := range map[string]Settings{
		"deploy": {Environment: "production", ReadRun: false},
		"dyn":    {Environment: "", ReadRun: true}, // the workflow's read-all
	} {
		if got := SettingsOf(compiled(t, yaml, "ci.yml", key, "push")); got != want {
			t.Errorf("%s: %+v, want %+v", key, got, want)
		}
	}
	if got := SettingsOf(nil); got != (Settings{}) {
		t.Errorf("no compiled job: %+v", got)
	}
}
