package kubernetes

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/backendtest"
)

// The script's "ok" is found across writes of any size, once; all its
// output is kept for diagnostics.
func TestOKLine(t *testing.T) {
	for _, chunk := range []int{1, 2, 5, 1000} {
		var rest bytes.Buffer
		stops := 0
		l := &okLine{rest: &rest, ok: make(chan struct{}), stop: func() { stops++ }}
		out := []byte("cat: note\nok\nok\nlater\n")
		for i := 0; i < len(out); i += chunk {
			if n, err := l.Write(out[i:min(i+chunk, len(out))]); err != nil || n != min(chunk, len(out)-i) {
				t.Fatalf("chunk %d: Write = %d, %v", chunk, n, err)
			}
		}
		select {
		case <-l.ok:
		default:
			t.Errorf("chunk %d: no ok", chunk)
		}
		if stops != 1 || rest.String() != string(out) {
			t.Errorf("chunk %d: %d stops, rest %q", chunk, stops, rest.String())
		}
	}
	// A failed install never says ok; "ok" inside a line is not it.
	l := &okLine{rest: io.Discard, ok: make(chan struct{}), stop: func() {}}
	l.Write([]byte("cat: write error: no space left; not ok\nbook\n"))
	select {
	case <-l.ok:
		t.Error("ok without an ok line")
	default:
	}
}

// Both ways of installing the runner give a working job: the init
// container that exits (clusters before 1.29) and the native sidecar
// (the job container starts while the binary streams in).
func TestInstallModes(t *testing.T) {
	for _, sidecar := range []bool{false, true} {
		kb := newBackend(t, Options{})
		kb.sidecar.once.Do(func() {})
		kb.sidecar.ok = sidecar
		job := newJob(t)
		sb := setupJob(t, kb, job)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, code := backendtest.Exec(t, sb, &backend.Process{Argv: []string{"sh", "-c", "echo hi; ls -l /__conveyor/conveyor | cut -c1-10"}}); code != 0 || !strings.Contains(out, "hi\n-r-xr-xr-x") {
			t.Errorf("sidecar %v: %q, %d", sidecar, out, code)
		}
		p, err := kb.cs.CoreV1().Pods(sb.Namespace()).Get(ctx, sb.Pod(), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ic := p.Spec.InitContainers[0]
		isSidecar := ic.RestartPolicy != nil && *ic.RestartPolicy == corev1.ContainerRestartPolicyAlways
		if isSidecar != sidecar {
			t.Errorf("sidecar %v: the install container's restart policy is %v", sidecar, ic.RestartPolicy)
		}
	}
}

// cutAfter cuts the runner binary's stream short for the first n pods.
func cutAfter(kb *Backend, n int32) *atomic.Int32 {
	var made atomic.Int32
	kb.installReader = func(r io.Reader) io.Reader {
		if made.Add(1) <= n {
			return io.LimitReader(r, 1<<20)
		}
		return r
	}
	return &made
}

// An install stream that drops (here: its standard input ends after
// 1 MiB) never puts a truncated runner in place: the install container
// refuses it, and the job gets a fresh pod that runs; after installTries
// drops, Setup fails with errInstallDropped and leaves no pod.
func TestInstallStreamDrops(t *testing.T) {
	for _, sidecar := range []bool{false, true} {
		kb := newBackend(t, Options{})
		kb.sidecar.once.Do(func() {})
		kb.sidecar.ok = sidecar
		made := cutAfter(kb, 1)
		var log bytes.Buffer
		job := newJob(t)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		sb, err := kb.Setup(ctx, job, &log)
		if err != nil {
			t.Fatalf("sidecar %v: %v\n%s", sidecar, err, log.String())
		}
		out, code := backendtest.Exec(t, sb, &backend.Process{Argv: []string{"sh", "-c", "echo hi"}})
		if err := sb.Teardown(context.WithoutCancel(ctx)); err != nil {
			t.Error(err)
		}
		if code != 0 || out != "hi\n" {
			t.Errorf("sidecar %v: %q, %d", sidecar, out, code)
		}
		if made.Load() != 2 || !strings.Contains(log.String(), "making the pod again (try 2 of 3)") {
			t.Errorf("sidecar %v: %d pods; log:\n%s", sidecar, made.Load(), log.String())
		}
		assertGone(t, kb, job.ID)
	}

	kb := newBackend(t, Options{})
	made := cutAfter(kb, installTries)
	job := newJob(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sb, err := kb.Setup(ctx, job, io.Discard)
	if err == nil {
		_ = sb.Teardown(ctx)
		t.Fatal("set up with a truncated runner")
	}
	if !errors.Is(err, errInstallDropped) || !strings.Contains(err.Error(), "arrived truncated") || made.Load() != installTries {
		t.Errorf("%d pods: %v", made.Load(), err)
	}
	assertGone(t, kb, job.ID)
}
