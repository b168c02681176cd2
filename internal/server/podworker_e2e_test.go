package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/backend/kubernetes"
	"github.com/conveyor-ci/conveyor/internal/store"
	"github.com/conveyor-ci/conveyor/internal/testenv"
	"github.com/conveyor-ci/conveyor/internal/testenv/stepreg"
)

// podGateway is the test cluster's pod bridge address on this machine
// (scripts/k8s/common.sh: bridge conveyor-k8s0, 10.242.0.0/24): where
// job pods reach a server of this machine.
const podGateway = "10.242.0.1"

const inPodFlow = `name: InPod
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    services:
      side:
        image: %s
        options: --entrypoint /sbin/init --health-cmd "touch /__w/side-healthy" --health-interval 1s
    outputs:
      greeting: ${{ steps.a.outputs.greeting }}
    steps:
      - id: a
        run: |
          echo "greeting=hello from $(hostname)" >> "$GITHUB_OUTPUT"
          echo "step one in pod $(hostname)"
      - run: echo "step two got ${{ steps.a.outputs.greeting }}"
      - run: |
          test -e /__w/side-healthy && echo "service healthy before the steps"
          grep -qw side /etc/hosts && echo "service name resolves"
          test -z "$CONVEYOR_JOB_CREDENTIAL" && echo "no credential in steps"
          echo "token ${{ secrets.GITHUB_TOKEN }}"
      - run: exit 5
      - if: always()
        run: echo "cleanup ran after the failure"
      - run: echo "$((6 * 7)) after the failure"
  after:
    needs: build
    if: always()
    runs-on: ubuntu-latest
    steps:
      - run: echo "after saw ${{ needs.build.outputs.greeting }}"
`

// podWorkerServer is a server whose kubernetes jobs run in the worker
// layout on the test cluster, listening where the pods reach it.
func podWorkerServer(t testing.TB, files map[string]string, platforms map[string]string) (*harness, *kubernetes.Backend) {
	t.Helper()
	return kubeServer(t, files, platforms, true)
}

// kubeServer is a server on the test cluster in the worker layout (pod)
// or the attach layout, listening where the pods reach it.
func kubeServer(t testing.TB, files map[string]string, platforms map[string]string, pod bool) (*harness, *kubernetes.Backend) {
	t.Helper()
	return kubeServerWith(t, files, platforms, pod, nil)
}

// kubeServerWith is kubeServer whose backend looks image configurations
// up with images.
func kubeServerWith(t testing.TB, files map[string]string, platforms map[string]string, pod bool, images kubernetes.ImageConfigs) (*harness, *kubernetes.Backend) {
	t.Helper()
	kb, img := kubeBackendWith(t, images)
	ln, err := net.Listen("tcp", podGateway+":0")
	if err != nil {
		t.Fatalf("the test cluster's pod bridge %s is not on this machine (scripts/k8s/up.sh): %v", podGateway, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if platforms == nil {
		platforms = map[string]string{}
	}
	platforms["ubuntu-latest"] = img
	cfg := Config{Platforms: platforms, LeaseTTL: 10 * time.Second}
	if pod {
		cfg.PodWorkers.ServerURL = fmt.Sprintf("http://%s:%d", podGateway, port)
	}
	hs := newHarness(t, harnessOpts{
		listen:   "0.0.0.0:" + strconv.Itoa(port),
		cfg:      cfg,
		files:    files,
		backends: &Backends{Main: kb, Host: host.New(host.Options{})},
	})
	return hs, kb
}

// noPodsLeft fails t when a pod of run r is still there a minute after
// the run ended (a job's worker records it before its pod is deleted).
func noPodsLeft(t *testing.T, kb *kubernetes.Backend, r *store.Run) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := kb.NamespaceOf(backend.Tenant{Org: "default"})
	for {
		pods, err := kb.Clientset().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: kubernetes.LabelRun + "=" + itoa(r.ID)})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			for _, p := range pods.Items {
				t.Errorf("pod %s left a minute after the run (phase %s)", p.Name, p.Status.Phase)
			}
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// runBuildAfter pushes (delivery id) and waits for the run of a workflow
// whose build job fails and whose after job (if: always()) succeeds; it
// returns the run and the two jobs' logs.
func runBuildAfter(t *testing.T, hs *harness, delivery string) (*store.Run, string, string) {
	t.Helper()
	if code, body := hs.hook("push", hs.push("main", "README.md"), delivery); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	r := hs.waitRuns(1, 6*time.Minute)[0]
	jobs := hs.jobs(r.ID)
	build, after := hs.jobLog(r.ID, "build"), hs.jobLog(r.ID, "after")
	if r.Status != store.StatusFailure || jobs["build"].Status != store.StatusFailure || jobs["after"].Status != store.StatusSuccess {
		t.Fatalf("run %s, build %s, after %s; logs:\n%s\n%s", r.Status, jobs["build"].Status, jobs["after"].Status, build, after)
	}
	return r, build, after
}

// In the worker layout the job's pod runs its steps itself: outputs
// between steps and across jobs, a failing step with its if: always()
// cleanup, a service sidecar healthy before the first step, the
// GITHUB_TOKEN masked, no worker credential in the steps' environment;
// the logs are in the server's log store after the pods are gone.
func TestServerRunsStepsInPod(t *testing.T) {
	hs, kb := podWorkerServer(t, map[string]string{
		".github/workflows/inpod.yml": fmt.Sprintf(inPodFlow, testenv.BusyboxImage(t)), "README.md": "hi\n"}, nil)
	r, build, after := runBuildAfter(t, hs, "p-1")
	for _, want := range []string{"(worker layout: the pod runs the steps)", "step one in pod conveyor-", "step two got hello from conveyor-",
		"service healthy before the steps", "service name resolves", "no credential in steps", "token ***", "cleanup ran after the failure"} {
		if !strings.Contains(build, want) {
			t.Errorf("build log lacks %q:\n%s", want, build)
		}
	}
	for _, bad := range []string{"42 after the failure", "cvj_", "cvw_"} {
		if strings.Contains(build, bad) {
			t.Errorf("build log has %q:\n%s", bad, build)
		}
	}
	if !strings.Contains(after, "after saw hello from conveyor-") {
		t.Errorf("after log:\n%s", after)
	}
	noPodsLeft(t, kb, r)
}

// A pod that cannot start its worker (an image the node lacks) fails the
// job with the reason, and leaves no pod.
func TestPodWorkerBadImage(t *testing.T) {
	flow := "name: Bad\non: push\njobs:\n  bad:\n    runs-on: broken\n    steps:\n      - run: echo never\n"
	hs, kb := podWorkerServer(t, map[string]string{".github/workflows/bad.yml": flow, "README.md": "hi\n"},
		map[string]string{"broken": "conveyor-test/no-such-image:1"})
	if code, body := hs.hook("push", hs.push("main", "README.md"), "p-bad"); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	r := hs.waitRuns(1, 4*time.Minute)[0]
	bad := hs.jobs(r.ID)["bad"]
	log := hs.jobLog(r.ID, "bad")
	if bad.Status != store.StatusError || !strings.Contains(log, "could not run its worker") || !strings.Contains(log, "ErrImageNeverPull") {
		t.Errorf("job %s (%s); log:\n%s", bad.Status, bad.Error, log)
	}
	noPodsLeft(t, kb, r)
}

// A run cancelled while its job's pod runs a long step: the worker sees
// the cancel on its heartbeat, kills the step, runs the if: always()
// cleanup and records the job as cancelled; the pod is deleted.
func TestPodWorkerCancel(t *testing.T) {
	flow := `name: Long
on: push
jobs:
  long:
    runs-on: ubuntu-latest
    steps:
      - run: echo "long step started"; sleep 300; echo "long step $((40 + 2))"
      - if: always()
        run: echo "cleanup after the cancel"
`
	hs, kb := podWorkerServer(t, map[string]string{".github/workflows/long.yml": flow, "README.md": "hi\n"}, nil)
	if code, body := hs.hook("push", hs.push("main", "README.md"), "p-cancel"); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	var run *store.Run
	waitFor(t, 4*time.Minute, "the long step to start in its pod", func() bool {
		runs, _ := hs.st.ListRuns(context.Background(), 1, store.RunFilter{})
		if len(runs) == 0 {
			return false
		}
		run = runs[0]
		return strings.Contains(hs.jobLog(run.ID, "long"), "long step started")
	})
	hs.api("POST", "/api/runs/"+itoa(run.ID)+"/cancel", nil, 200, nil)
	r := hs.waitRuns(1, 2*time.Minute)[0]
	log := hs.jobLog(r.ID, "long")
	if job := hs.jobs(r.ID)["long"]; r.Status != store.StatusCancelled || job.Status != store.StatusCancelled ||
		!strings.Contains(log, "cleanup after the cancel") || strings.Contains(log, "long step 42") {
		t.Errorf("run %s, job %s; log:\n%s", r.Status, job.Status, log)
	}
	noPodsLeft(t, kb, r)
}

const inPodImageFlow = `name: InPodImages
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      said: ${{ steps.img.outputs.said }}
    steps:
      - run: echo "run step in pod $(hostname)"
      - uses: docker://%[1]s
      - id: img
        uses: docker://%[1]s
        with:
          args: hello-args
        env:
          STEP_ENV: step-env
      - run: echo "the run step saw ${{ steps.img.outputs.said }}"
      - if: false
        uses: docker://%[2]s
      - uses: docker://%[1]s
        with:
          args: exit 3
      - if: always()
        run: echo "cleanup after the image step failed"
  after:
    needs: build
    if: always()
    runs-on: ubuntu-latest
    steps:
      - run: echo "after saw ${{ needs.build.outputs.said }}"
`

// A job with docker:// steps takes the worker layout when the registry
// gives their images' configuration: the pod has a step container per
// image (one unused: its step is skipped) and the worker hands each step
// to its container through the wait files: the image's ENTRYPOINT and
// CMD, args, env, outputs, a failing step's exit code; the pod ends and
// is deleted.
func TestServerRunsImageStepsInPod(t *testing.T) {
	reg := stepreg.New(t)
	hs, kb := kubeServerWith(t, map[string]string{
		".github/workflows/img.yml": fmt.Sprintf(inPodImageFlow, reg.Ref, reg.Ref2), "README.md": "hi\n"}, nil, true, reg.Resolver())
	r, build, after := runBuildAfter(t, hs, "p-img")
	// The worker layout: the pod's main container runs agent one-job,
	// whose host sandbox is in the pod's workspace volume.
	for _, want := range []string{"(worker layout: the pod runs the steps)", "Step containers: 2", "run step in pod conveyor-",
		"host processes in /__w/conveyor/jobs/", "image steps in step containers of the pod",
		"entry: default-cmd | env: image-env//", "| pid1: /__conveyor/conveyor step-wait",
		"entry: hello-args | env: image-env/step-env/", "the run step saw hello-args",
		"entry: exit 3", "Container action exited with code 3.", "cleanup after the image step failed"} {
		if !strings.Contains(build, want) {
			t.Errorf("build log lacks %q:\n%s", want, build)
		}
	}
	if strings.Contains(build, "ephemeral") || strings.Contains(build, "cannot run containers") {
		t.Errorf("an image step did not run in its step container:\n%s", build)
	}
	if !strings.Contains(after, "after saw hello-args") {
		t.Errorf("after log:\n%s", after)
	}
	noPodsLeft(t, kb, r)
}

// A run cancelled while a docker:// step runs in its step container (the
// worker layout): the cancel file reaches the step (its SIGTERM trap
// runs), the if: always() cleanup runs, the job is recorded as
// cancelled and its pod deleted.
func TestPodWorkerCancelImageStep(t *testing.T) {
	reg := stepreg.New(t)
	flow := `name: LongImage
on: push
jobs:
  long:
    runs-on: ubuntu-latest
    steps:
      - run: |
          cat > long.sh <<'SH'
          trap 'echo image step got TERM; exit 143' TERM
          echo long image step started
          sleep 300 & wait
          echo long image step ended
          SH
      - uses: docker://` + reg.Ref + `
        with:
          entrypoint: /bin/sh
          args: long.sh
      - if: always()
        run: echo "cleanup after the cancel"
`
	hs, kb := kubeServerWith(t, map[string]string{".github/workflows/long.yml": flow, "README.md": "hi\n"}, nil, true, reg.Resolver())
	if code, body := hs.hook("push", hs.push("main", "README.md"), "p-cancel-img"); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	var run *store.Run
	waitFor(t, 4*time.Minute, "the long image step to start in its step container", func() bool {
		runs, _ := hs.st.ListRuns(context.Background(), 1, store.RunFilter{})
		if len(runs) == 0 {
			return false
		}
		run = runs[0]
		return strings.Contains(hs.jobLog(run.ID, "long"), "long image step started") || store.Terminal(run.Status)
	})
	if store.Terminal(run.Status) {
		t.Fatalf("run %s before the cancel; log:\n%s", run.Status, hs.jobLog(run.ID, "long"))
	}
	hs.api("POST", "/api/runs/"+itoa(run.ID)+"/cancel", nil, 200, nil)
	r := hs.waitRuns(1, 2*time.Minute)[0]
	log := hs.jobLog(r.ID, "long")
	if job := hs.jobs(r.ID)["long"]; r.Status != store.StatusCancelled || job.Status != store.StatusCancelled ||
		!strings.Contains(log, "(worker layout: the pod runs the steps)") || !strings.Contains(log, "image step got TERM") ||
		!strings.Contains(log, "cleanup after the cancel") || strings.Contains(log, "long image step ended") {
		t.Errorf("run %s, job %s; log:\n%s", r.Status, job.Status, log)
	}
	noPodsLeft(t, kb, r)
}
