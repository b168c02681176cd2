package kubernetes

import (
	"context"
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/conveyor-ci/conveyor/internal/actions"
	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/backendtest"
	"github.com/conveyor-ci/conveyor/internal/exec"
	"github.com/conveyor-ci/conveyor/internal/testenv/stepreg"
)

// waitNamespace keeps these tests' pods apart from other tests'.
const waitNamespace = "conveyor-test-waitfile"

// newWaitBackend is a backend whose image configs come from reg.
func newWaitBackend(t testing.TB, reg *stepreg.Registry) *Backend {
	return newBackend(t, Options{Namespace: waitNamespace, Images: reg.Resolver()})
}

// jobWithSteps is a job announcing image steps of images.
func jobWithSteps(t testing.TB, images ...string) *backend.JobSpec {
	job := newJob(t)
	for i, img := range images {
		job.ImageSteps = append(job.ImageSteps, backend.ImageStepPlan{Step: "s" + string(rune('1'+i)), Image: img})
	}
	return job
}

// containerState is the state of the pod's container name.
func containerState(t *testing.T, sb *Sandbox, name string) corev1.ContainerState {
	t.Helper()
	p, err := sb.b.cs.CoreV1().Pods(sb.ns).Get(context.Background(), sb.name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range p.Status.ContainerStatuses {
		if st.Name == name {
			return st.State
		}
	}
	t.Fatalf("pod %s has no container %s", sb.name, name)
	return corev1.ContainerState{}
}

// Announced images get a step container each, started with the pod; a
// step of such an image runs there (not in an ephemeral container) with
// the image's ENTRYPOINT and CMD unless it gives its own, its env and
// folder, and its exit code; a cancel reaches the step's process as
// SIGTERM and the container serves the next step; an unused container
// exits cleanly when told the job is over.
func TestWaitFileSandbox(t *testing.T) {
	reg := stepreg.New(t)
	b := newWaitBackend(t, reg)
	sb := setupJob(t, b, jobWithSteps(t, reg.Ref, reg.Ref2, reg.Ref))
	if len(sb.waiters) != 2 || sb.waiters[0].image != reg.Ref || sb.waiters[1].image != reg.Ref2 {
		t.Fatalf("step containers: %+v", sb.waiters)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := sb.Dirs().Sandbox
	cases := []struct {
		step      backend.ContainerStep
		code      int
		want, not string
	}{
		{backend.ContainerStep{Image: reg.Ref}, 0, "entry: default-cmd | env: image-env/", ""},
		{backend.ContainerStep{Image: reg.Ref, Args: []string{"one", "$(two)"}, Env: map[string]string{"STEP_ENV": "e $(HOME)"}, Dir: dir},
			0, "entry: one $(two) | env: image-env/e $(HOME)/ | pwd: " + dir + " | pid1: /__conveyor/conveyor step-wait", "default-cmd"},
		{backend.ContainerStep{Image: reg.Ref, Args: []string{"exit", "7"}}, 7, "entry: exit 7", ""},
		{backend.ContainerStep{Image: reg.Ref, Entrypoint: []string{"echo"}}, 0, "\n", "default-cmd"}, // an entrypoint drops the image's CMD
		{backend.ContainerStep{Image: reg.Ref, Entrypoint: []string{"sh", "-c"}, Args: []string{"echo override $0 >&2", "x"}}, 0, "override x", "entry:"},
		{backend.ContainerStep{Image: reg.Ref, Entrypoint: []string{"/no/such/program"}}, 127, "could not start", ""},
	}
	for i, c := range cases {
		var out backendtest.SyncBuffer
		code, err := sb.RunContainer(ctx, &c.step, &out)
		if err != nil || code != c.code || !strings.Contains(out.String(), c.want) || c.not != "" && strings.Contains(out.String(), c.not) {
			t.Errorf("step %d: code %d, err %v, output %q; want code %d and %q", i+1, code, err, out.String(), c.code, c.want)
		}
	}
	if sb.imageSteps != 0 {
		t.Errorf("%d steps ran in ephemeral containers", sb.imageSteps)
	}

	// Cancel mid-step: SIGTERM reaches the process (its trap writes a
	// file in the workspace); the next step runs in the same container.
	cctx, ccancel := context.WithCancel(ctx)
	var out backendtest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := sb.RunContainer(cctx, &backend.ContainerStep{Image: reg.Ref, Entrypoint: []string{"sh", "-c"},
			Args: []string{`trap 'echo got TERM > ` + dir + `/term.txt; exit 143' TERM; echo started; while :; do sleep 0.05; done`}}, &out)
		done <- err
	}()
	for deadline := time.Now().Add(time.Minute); !strings.Contains(out.String(), "started"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the step did not start: %q", out.String())
		}
	}
	ccancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("after cancel: %v", err)
		}
	case <-time.After(stepKillTimeout + 15*time.Second):
		t.Fatal("RunContainer did not return after the cancel")
	}
	var term backendtest.SyncBuffer
	if code, err := sb.Exec(ctx, &backend.Process{Argv: []string{"cat", dir + "/term.txt"}}, &term); err != nil || code != 0 || !strings.Contains(term.String(), "got TERM") {
		t.Errorf("the cancelled step did not get SIGTERM: code %d, err %v, %q", code, err, term.String())
	}
	out = backendtest.SyncBuffer{}
	if code, err := sb.RunContainer(ctx, &backend.ContainerStep{Image: reg.Ref, Args: []string{"after-cancel"}}, &out); err != nil || code != 0 || !strings.Contains(out.String(), "entry: after-cancel") {
		t.Errorf("the step after the cancel: code %d, err %v, %q", code, err, out.String())
	}
	if sb.waiters[0].lost || sb.imageSteps != 0 {
		t.Errorf("the step container was given up after the cancel (ephemeral steps: %d)", sb.imageSteps)
	}

	// The end of the job: both step containers exit 0, the unused one too.
	sb.endWaiters(ctx)
	for _, w := range sb.waiters {
		deadline := time.Now().Add(30 * time.Second)
		for {
			st := containerState(t, sb, w.name)
			if tm := st.Terminated; tm != nil {
				if tm.ExitCode != 0 {
					t.Errorf("step container %s ended with %s", w.name, terminated(tm))
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("step container %s still %+v after the end file", w.name, st)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// Without the registry (unreachable), announced steps run in ephemeral
// containers, as the job still does; a step container whose image the
// node lacks (served by the registry, not pullable) makes Setup redo the
// pod without step containers rather than fail the job.
func TestWaitFileFallback(t *testing.T) {
	reg := stepreg.New(t)
	b := newWaitBackend(t, reg)
	sb := setupJob(t, b, jobWithSteps(t, reg.NoNode))
	if len(sb.waiters) != 0 {
		t.Errorf("step containers for an image the node cannot have: %+v", sb.waiters)
	}
	reg.Srv.Close()
	sb2 := setupJob(t, b, jobWithSteps(t, reg.Ref))
	if len(sb2.waiters) != 0 {
		t.Fatalf("step containers without a registry: %+v", sb2.waiters)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out backendtest.SyncBuffer
	code, err := sb2.RunContainer(ctx, &backend.ContainerStep{Image: reg.Ref, Args: []string{"ephemeral"}}, &out)
	if err != nil || code != 0 || !strings.Contains(out.String(), "entry: ephemeral") || !strings.Contains(out.String(), "entrypoint") {
		t.Errorf("ephemeral fallback: code %d, err %v, %q", code, err, out.String())
	}
	if sb2.imageSteps != 1 {
		t.Errorf("ephemeral steps: %d, want 1", sb2.imageSteps)
	}
}

// publishAction commits files as the repository acme/NAME, tagged v1,
// under a file:// action source, and returns that source.
func publishAction(t *testing.T, name string, files map[string]string) *actions.Cache {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "acme", name)
	for f, content := range files {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"commit", "-q", "-m", "action"}, {"tag", "v1"}} {
		cmd := osexec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	c, err := actions.New(actions.Options{Dir: t.TempDir(), BaseURL: "file://" + root})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A workflow's docker:// steps and a remote Docker action run in the
// pod's step containers: the image's ENTRYPOINT and CMD, args and
// entrypoint: given by the step, env and inputs, outputs a later step
// reads, an exit code that fails the step and the job; a step skipped by
// if: leaves its container unused and the job ends cleanly (its pod
// deleted, nothing left).
func TestWaitFileWorkflow(t *testing.T) {
	reg := stepreg.New(t)
	b := newWaitBackend(t, reg)
	src := publishAction(t, "greet", map[string]string{"action.yml": `name: greet
inputs:
  who:
    default: World
runs:
  using: docker
  image: docker://` + reg.Ref + `
  args:
    - hello-${{ inputs.who }}
`})
	yml := `on: push
jobs:
  j:
    runs-on: ubuntu-latest
    steps:
      - id: dflt
        uses: docker://` + reg.Ref + `
      - id: args
        uses: docker://` + reg.Ref + `
        env:
          STEP_ENV: from-env $(HOME)
        with:
          who: Mona
          args: first second
      - id: entry
        uses: docker://` + reg.Ref + `
        with:
          entrypoint: /bin/echo
          args: overridden entrypoint
      - id: action
        uses: acme/greet@v1
        with:
          who: Octo
      - id: skipped
        if: false
        uses: docker://` + reg.Ref2 + `
      - run: echo "outputs [${{ steps.args.outputs.said }}] [${{ steps.action.outputs.said }}]"
      - id: fails
        uses: docker://` + reg.Ref + `
        with:
          args: exit 3
      - id: after
        if: failure()
        uses: docker://` + reg.Ref + `
        with:
          args: after-failure
`
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	log := &eventLog{}
	res, err := runWorkflowWith(ctx, t, b, yml, nil, log, src)
	out := log.String()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if !res.Failed() {
		t.Errorf("the job did not fail:\n%s", out)
	}
	for id, want := range map[string]string{"dflt": exec.Success, "args": exec.Success, "entry": exec.Success, "action": exec.Success, "skipped": exec.Skipped, "fails": exec.Failure, "after": exec.Success} {
		if got := log.step(id); got != want {
			t.Errorf("step %s: %q, want %q", id, got, want)
		}
	}
	stepWait := "pid1: /__conveyor/conveyor step-wait"
	for _, want := range []string{
		"entry: default-cmd | env: image-env// | pwd: /__w/workspace | " + stepWait,
		"entry: first second | env: image-env/from-env $(HOME)/Mona | pwd: /__w/workspace | " + stepWait,
		"] overridden entrypoint",
		"entry: hello-Octo | env: image-env//Octo | pwd: /__w/workspace | " + stepWait,
		"outputs [first] [hello-Octo]",
		"exited with code 3",
		"entry: after-failure",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "conveyor entrypoint") {
		t.Errorf("a step ran in an ephemeral container:\n%s", out)
	}
	// The pod, its unused step container included, is gone.
	l, err := b.cs.CoreV1().Pods(waitNamespace).List(ctx, metav1.ListOptions{LabelSelector: LabelManaged + "=" + managedBy})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 0 {
		t.Errorf("%d pods left after the job", len(l.Items))
	}
}

// A cancel during a step of a step container: the step's process gets
// SIGTERM, the if: always() steps after it still run (in the step
// container too), and the job ends cancelled.
func TestWaitFileCancelWorkflow(t *testing.T) {
	reg := stepreg.New(t)
	b := newWaitBackend(t, reg)
	yml := `on: push
jobs:
  j:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: long
        uses: docker://` + reg.Ref + `
        with:
          entrypoint: /bin/sh
          args: long.sh
      - id: cleanup
        if: always()
        uses: docker://` + reg.Ref + `
        with:
          args: cleanup-ran
      - id: cleanup2
        if: always()
        run: cat term.txt
`
	long := "trap 'echo got TERM; echo term-file > term.txt; exit 143' TERM\necho started\nwhile :; do sleep 0.05; done\n"
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rctx, rcancel := context.WithCancel(ctx)
	log := &eventLog{}
	go func() {
		for !strings.Contains(log.String(), "started") {
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		rcancel()
	}()
	res, err := runWorkflowWith(rctx, t, b, yml, map[string]string{"long.sh": long}, log, nil)
	out := log.String()
	t.Logf("%v\n%s", err, out)
	if res == nil || len(res.Jobs) != 1 {
		t.Fatalf("no job result: %v\n%s", err, out)
	}
	if got := res.Jobs[0].Result; got != exec.Cancelled {
		t.Errorf("job result %q, want cancelled", got)
	}
	for id, want := range map[string]string{"cleanup": exec.Success, "cleanup2": exec.Success} {
		if got := log.step(id); got != want {
			t.Errorf("step %s: %q, want %q", id, got, want)
		}
	}
	for _, want := range []string{"entry: cleanup-ran", "term-file"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}
