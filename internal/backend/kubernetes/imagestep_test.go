package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/backendtest"
	"github.com/conveyor-ci/conveyor/internal/exec"
	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/testenv"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// eventLog keeps a run's output lines and step results.
type eventLog struct {
	mu    sync.Mutex
	buf   strings.Builder
	steps map[string]string
}

func (l *eventLog) Report(ev exec.Event2) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch ev.Type {
	case exec.Output, exec.Notice, exec.Annotation, exec.RunError:
		fmt.Fprintf(&l.buf, "[%s] %s\n", ev.Step, ev.Text)
	case exec.StepFinished:
		if l.steps == nil {
			l.steps = map[string]string{}
		}
		l.steps[ev.StepID] = ev.Result
		fmt.Fprintf(&l.buf, "step %q (%s): %s\n", ev.Step, ev.StepID, ev.Result)
	case exec.JobFinished:
		fmt.Fprintf(&l.buf, "job: %s\n", ev.Result)
	}
}

func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *eventLog) step(id string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.steps[id]
}

// runWorkflow runs a workflow's push jobs with the executor on b, the
// job's image the busybox test image, repo the checked-out working tree
// (files name → content).
func runWorkflow(ctx context.Context, t *testing.T, b *Backend, yml string, files map[string]string) (*exec.Result, *eventLog) {
	t.Helper()
	log := &eventLog{}
	res, err := runWorkflowWith(ctx, t, b, yml, files, log, nil)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log)
	}
	return res, log
}

// runWorkflowWith is runWorkflow reporting to log, with an action
// source, returning the run's error.
func runWorkflowWith(ctx context.Context, t *testing.T, b *Backend, yml string, files map[string]string, log *eventLog, actions exec.ActionResolver) (*exec.Result, error) {
	t.Helper()
	repo := t.TempDir()
	for name, content := range files {
		p := filepath.Join(repo, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wf, probs := workflow.Parse([]byte(yml), "ci.yml")
	if len(probs) > 0 {
		t.Fatalf("workflow: %v", probs)
	}
	p, err := plan.Compile([]*workflow.Workflow{wf}, plan.Select{Event: "push"})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return exec.New(exec.Options{
		Backend:   b,
		Actions:   actions,
		Platforms: map[string]string{"ubuntu-latest": testenv.BusyboxImage(t)},
		RepoDir:   repo,
		Event: exec.Event{Name: "push", Payload: map[string]any{}, SHA: strings.Repeat("0", 40), Ref: "refs/heads/main",
			Repository: "o/r", Actor: "a", RunID: "1", RunNumber: 1},
		Reporter: log,
	}).Run(ctx, p)
}

// A docker:// step runs its image (not the job's) in the job's pod with
// the step's args (the image's entrypoint kept), env and inputs, in the
// workspace; what it writes to $GITHUB_OUTPUT a later step reads, and
// Kubernetes' $(VAR) expansion does not touch its values.
func TestImageStepDockerURL(t *testing.T) {
	b := newBackend(t, Options{})
	debian := testenv.Image(t)
	yml := `on: push
jobs:
  j:
    runs-on: ubuntu-latest
    outputs:
      greeting: ${{ steps.img.outputs.greeting }}
    steps:
      - uses: actions/checkout@v4
      - run: test ! -f /etc/debian_version && echo "job container is not debian"
      - id: img
        uses: docker://` + debian + `
        env:
          STEP_ENV: from-env $(HOME)
        with:
          somekey: some-value
          args: bash step.sh hello $(HOME)
      - env:
          G: ${{ steps.img.outputs.greeting }}
        run: echo "later step read [$G]"
`
	script := `echo "args: $*"
echo "env: $STEP_ENV / $INPUT_SOMEKEY"
test -f /etc/debian_version && echo "image: debian"
echo "greeting=$1-$STEP_ENV-$INPUT_SOMEKEY-$2-$PWD" >> "$GITHUB_OUTPUT"
echo "written by the image step" > made-by-image-step.txt
`
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, log := runWorkflow(ctx, t, b, yml, map[string]string{"step.sh": script})
	out := log.String()
	if res.Failed() {
		t.Fatalf("run failed:\n%s", out)
	}
	for _, want := range []string{"job container is not debian", "args: hello $(HOME)", "env: from-env $(HOME) / some-value", "image: debian"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	g := res.Jobs[0].Outputs["greeting"]
	if !strings.HasPrefix(g, "hello-from-env $(HOME)-some-value-$(HOME)-") || !strings.HasSuffix(g, "/workspace") {
		t.Errorf("greeting output %q", g)
	}
	if !strings.Contains(out, "later step read ["+g+"]") {
		t.Errorf("the later step did not read the output %q:\n%s", g, out)
	}
}

// A Docker action (runs.using: docker, image: docker://...) with its
// entrypoint, args from its inputs, its env and inputs as INPUT_*.
func TestImageStepDockerAction(t *testing.T) {
	b := newBackend(t, Options{})
	action := `name: greet
inputs:
  who:
    description: who to greet
    default: World
outputs:
  said:
    description: what it said
runs:
  using: docker
  image: docker://` + testenv.Image(t) + `
  entrypoint: /bin/sh -c
  env:
    TEST: enabled
  args:
    - 'echo "hello $INPUT_WHO ${{ inputs.who }} $TEST in $(basename $PWD)" && echo "said=hi $INPUT_WHO" >> "$GITHUB_OUTPUT"'
`
	yml := `on: push
jobs:
  j:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: greet
        uses: ./greet
        with:
          who: Mona
      - id: default
        uses: ./greet
      - run: echo "action said [${{ steps.greet.outputs.said }}] [${{ steps.default.outputs.said }}]"
`
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, log := runWorkflow(ctx, t, b, yml, map[string]string{"greet/action.yml": action})
	out := log.String()
	if res.Failed() {
		t.Fatalf("run failed:\n%s", out)
	}
	for _, want := range []string{"hello Mona Mona enabled in workspace", "hello World World enabled", "action said [hi Mona] [hi World]"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// A failing image step fails its step and the job, and the steps after it
// run as GitHub's rules say; a program the image lacks and an image the
// node does not have fail with a clear error; a Dockerfile action is refused with what to do instead.
func TestImageStepFailures(t *testing.T) {
	b := newBackend(t, Options{})
	action := `name: built
runs:
  using: docker
  image: Dockerfile
`
	yml := `on: push
jobs:
  j:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: fails
        uses: docker://` + testenv.BusyboxImage(t) + `
        with:
          entrypoint: sh
          args: -c false
      - id: nostart
        if: always()
        uses: docker://` + testenv.BusyboxImage(t) + `
        with:
          entrypoint: /no/such/program
      - id: missing
        if: always()
        uses: docker://conveyor-test/no-such-image:1
      - id: built
        if: always()
        uses: ./built
      - id: after
        if: failure()
        run: echo "cleanup after the failure"
`
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, log := runWorkflow(ctx, t, b, yml, map[string]string{"built/action.yml": action, "built/Dockerfile": "FROM scratch\n"})
	out := log.String()
	t.Logf("%s", out)
	if !res.Failed() {
		t.Fatalf("the run did not fail:\n%s", out)
	}
	for id, want := range map[string]string{"fails": exec.Failure, "nostart": exec.Failure, "missing": exec.Failure, "built": exec.Failure, "after": exec.Success} {
		if got := log.step(id); got != want {
			t.Errorf("step %s: %q, want %q", id, got, want)
		}
	}
	for _, want := range []string{"exited with code 1", "the container could not start", "/no/such/program", "ErrImageNeverPull", "cannot build a Dockerfile action's image", "cleanup after the failure"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// A cancel during a long image step ends the step's processes (the
// container is terminated, the pod still there) promptly; the step's
// output came live before it.
func TestImageStepCancel(t *testing.T) {
	b := newBackend(t, Options{})
	sb := setupJob(t, b, newJob(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out backendtest.SyncBuffer
	done := make(chan error, 1)
	var code int
	go func() {
		var err error
		code, err = sb.RunContainer(ctx, &backend.ContainerStep{Image: testenv.Image(t), Entrypoint: []string{"bash", "-c"},
			Args: []string{`trap 'echo got TERM; exit 143' TERM; echo started; while :; do sleep 0.2; done`}}, &out)
		done <- err
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(out.String(), "started") {
		if time.Now().After(deadline) {
			t.Fatalf("the step's output did not come live: %q", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancelled := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("RunContainer after cancel: code %d, err %v", code, err)
		}
	case <-time.After(stepKillTimeout + 30*time.Second):
		t.Fatal("RunContainer did not return after cancel")
	}
	t.Logf("cancelled in %s", time.Since(cancelled).Round(time.Millisecond))
	p, err := b.cs.CoreV1().Pods(sb.ns).Get(context.Background(), sb.name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, ok := ephemeralStatus(p, "step-1")
	if !ok || st.State.Terminated == nil {
		t.Fatalf("the step's container is not terminated after the cancel: %+v", st.State)
	}
	if c := st.State.Terminated.ExitCode; c != 143 {
		t.Errorf("the step's container ended with %d, want 143 (its TERM trap)", c)
	}
	if p.Status.Phase != corev1.PodRunning {
		t.Errorf("pod phase %s after the cancel, want Running (the job goes on)", p.Status.Phase)
	}
	// The job goes on: another step runs in the job container.
	var next backendtest.SyncBuffer
	if c, err := sb.Exec(context.Background(), &backend.Process{Argv: []string{"sh", "-c", "echo next"}}, &next); err != nil || c != 0 || !strings.Contains(next.String(), "next") {
		t.Errorf("a step after the cancel: code %d, err %v, out %q", c, err, next.String())
	}
}
