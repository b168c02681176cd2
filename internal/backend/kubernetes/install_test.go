package kubernetes

import (
	"bytes"
	"context"
	"io"
	"strings"
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
