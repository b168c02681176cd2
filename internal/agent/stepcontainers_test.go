package agent

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/backendtest"
	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/backend/stepwait"
)

// The pod's worker hands docker:// steps of an image with a step
// container to it through the wait files, in-process: the image's
// ENTRYPOINT and CMD, args and entrypoint overrides, env and folder,
// exit codes, a program that cannot start, a cancel that reaches the
// step; other images fail with a clear error; the teardown tells the
// step container (a real stepwait.Wait here) to exit.
func TestStepContainersRunContainer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "steps", "image-1")
	wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer wcancel()
	waitDone := make(chan error, 1)
	var wlog backendtest.SyncBuffer
	go func() { waitDone <- stepwait.Wait(wctx, dir, 300*time.Millisecond, &wlog) }()

	sc := []stepwait.Container{{Image: "reg.example/step:1", Dir: dir, Entrypoint: []string{"sh", "-c"}, Cmd: []string{`echo "default cmd $FROM_STEP in $PWD"`}}}
	b := StepContainers{Backend: host.New(host.Options{}), Containers: sc, Grace: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	jobDir := t.TempDir()
	sb, err := b.Setup(ctx, &backend.JobSpec{ID: "t", JobDir: jobDir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cr, ok := sb.(backend.ContainerRunner)
	if !ok {
		t.Fatal("the sandbox is no ContainerRunner")
	}
	if _, ok := sb.(backend.NodeProvider); !ok {
		t.Error("the sandbox lost the host sandbox's NodeProvider")
	}
	run := func(c *backend.ContainerStep) (int, string, error) {
		var out backendtest.SyncBuffer
		code, err := cr.RunContainer(ctx, c, &out)
		return code, out.String(), err
	}
	code, out, err := run(&backend.ContainerStep{Image: sc[0].Image, Env: map[string]string{"FROM_STEP": "env"}, Dir: jobDir})
	if err != nil || code != 0 || out != "default cmd env in "+jobDir+"\n" {
		t.Errorf("default entrypoint: code %d, err %v, out %q", code, err, out)
	}
	code, out, err = run(&backend.ContainerStep{Image: sc[0].Image, Args: []string{`echo args; exit 7`}})
	if err != nil || code != 7 || out != "args\n" {
		t.Errorf("args: code %d, err %v, out %q", code, err, out)
	}
	code, out, err = run(&backend.ContainerStep{Image: sc[0].Image, Entrypoint: []string{"/no/such/program"}})
	if err != nil || code != stepwait.CodeNotStart || !strings.Contains(out, "/no/such/program") {
		t.Errorf("no program: code %d, err %v, out %q", code, err, out)
	}
	if _, _, err := run(&backend.ContainerStep{Image: "other:1"}); err == nil || !strings.Contains(err.Error(), "no step container") {
		t.Errorf("an image without a step container: %v", err)
	}

	// A cancel reaches the step (SIGTERM) and RunContainer returns once
	// it ended.
	cctx, ccancel := context.WithCancel(ctx)
	var out2 backendtest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := cr.RunContainer(cctx, &backend.ContainerStep{Image: sc[0].Image, Args: []string{`trap 'echo got TERM; exit 143' TERM; echo started; sleep 60 & wait`}}, &out2)
		done <- err
	}()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out2.String(), "started"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the long step did not start: %q", out2.String())
		}
	}
	ccancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !strings.Contains(out2.String(), "got TERM") {
			t.Errorf("cancelled step: err %v, out %q", err, out2.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the cancelled step did not end")
	}
	code, out, err = run(&backend.ContainerStep{Image: sc[0].Image, Args: []string{"echo after the cancel"}})
	if err != nil || code != 0 || out != "after the cancel\n" {
		t.Errorf("after the cancel: code %d, err %v, out %q", code, err, out)
	}

	if err := sb.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waitDone:
		if err != nil {
			t.Errorf("step container: %v (log %q)", err, wlog.String())
		}
	case <-time.After(10 * time.Second):
		t.Error("the step container did not exit after the teardown")
	}
}
