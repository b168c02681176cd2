package kubernetes

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/backendtest"
)

// waitNamespace keeps these tests' pods apart from other tests'.
const waitNamespace = "conveyor-test-waitfile"

// newWaitBackend is a backend whose image configs come from reg.
func newWaitBackend(t testing.TB, reg *stepRegistry) *Backend {
	return newBackend(t, Options{Namespace: waitNamespace, Images: reg.resolver()})
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
	reg := newStepRegistry(t)
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
	reg := newStepRegistry(t)
	b := newWaitBackend(t, reg)
	sb := setupJob(t, b, jobWithSteps(t, reg.NoNode))
	if len(sb.waiters) != 0 {
		t.Errorf("step containers for an image the node cannot have: %+v", sb.waiters)
	}
	reg.srv.Close()
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
