package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/version"

	"github.com/conveyor-ci/conveyor/internal/backend/runner"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// installScript receives the runner binary on standard input (one attach
// stream), checks its size against $CONVEYOR_RUNNER_SIZE (a stream that
// dropped ends standard input early: a truncated binary must never be put
// in place), puts it in place atomically and says "ok".
const installScript = `set -e; f=` + runnerDir + `/.conveyor.part; cat >"$f"; ` +
	`[ "$(wc -c <"$f")" -eq "$` + envRunnerSize + `" ] || { echo "conveyor: the runner binary arrived truncated" >&2; exit 1; }; ` +
	`chmod 555 "$f"; mv "$f" ` + runnerPath + `; echo ok`

// envRunnerSize is the runner binary's size in bytes, in the install
// container's environment.
const envRunnerSize = "CONVEYOR_RUNNER_SIZE"

// installTries is how many pods Setup makes for a job whose install
// stream drops (an API server or kubelet restart, a proxy's idle timeout):
// the job gets a fresh pod rather than failing.
const installTries = 3

// errInstallDropped is an install stream that ended without the script's
// "ok": the binary did not arrive whole.
var errInstallDropped = errs.E("kubernetes: install the runner", errs.Unavailable, "the install container ended without installing the runner")

// sidecarScript is installScript for a native sidecar (an init container
// that keeps running, so that the job container and the services start
// while the binary streams in): it installs once (a restart finds the
// binary), then idles until the pod ends, without holding the attach.
const sidecarScript = `[ -x ` + runnerPath + ` ] || (` + installScript + `) || exit 1; ` +
	`trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done`

// awaitScript starts the job container's step runner once the sidecar
// has put it in place.
const awaitScript = `while [ ! -x ` + runnerPath + ` ]; do sleep 0.05 2>/dev/null || sleep 1; done; exec ` +
	runnerPath + ` entrypoint --await`

// install streams the runner binary into the install container; done
// when the script says ok (a sidecar keeps running: its attach would not
// end by itself).
func (s *Sandbox) install(ctx context.Context) error {
	f, err := openFile(s.b.opts.RunnerBinary)
	if err != nil {
		return errs.Wrap("kubernetes: runner binary", errs.Invalid, err)
	}
	defer f.Close()
	var in io.Reader = f
	if s.b.installReader != nil {
		in = s.b.installReader(f)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	diag := &runner.Tail{Max: 4096}
	out := &okLine{rest: diag, ok: make(chan struct{}), stop: stop}
	err = s.b.stream(sctx, s.ns, s.name, installContainer, "attach", nil, in, out, diag)
	select {
	case <-out.ok:
		return nil
	default:
	}
	if err == nil {
		err = errInstallDropped
	}
	if d := strings.TrimSpace(diag.String()); d != "" {
		err = fmt.Errorf("%w: %s", err, d)
	}
	return errs.Wrap("kubernetes: install the runner", kindOf(err), err)
}

// okLine watches the install script's output for its "ok" line, which
// closes ok and stops the stream; other output goes to rest (diagnostics).
type okLine struct {
	mu   sync.Mutex
	line []byte
	seen bool
	ok   chan struct{}
	stop func()
	rest io.Writer
}

func (l *okLine) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.rest.Write(p)
	for _, c := range p {
		switch {
		case l.seen:
		case c != '\n':
			if len(l.line) < 16 {
				l.line = append(l.line, c)
			}
		case string(l.line) == "ok":
			l.seen = true
			close(l.ok)
			l.stop()
		default:
			l.line = l.line[:0]
		}
	}
	return len(p), nil
}

// sidecarSupport tells once whether the cluster runs native sidecars
// (init containers with restartPolicy Always: Kubernetes 1.29 and later,
// where the feature is on by default).
type sidecarSupport struct {
	once sync.Once
	ok   bool
}

// sidecars reports whether job pods install the runner from a native
// sidecar; an unknown version counts as no.
func (b *Backend) sidecars(ctx context.Context) bool {
	b.sidecar.once.Do(func() {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		raw, err := b.cs.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
		var v version.Info
		if err != nil || json.Unmarshal(raw, &v) != nil {
			return
		}
		major, _ := strconv.Atoi(leadingDigits(v.Major))
		minor, _ := strconv.Atoi(leadingDigits(v.Minor))
		b.sidecar.ok = major > 1 || major == 1 && minor >= 29
	})
	return b.sidecar.ok
}

// leadingDigits is s up to its first non-digit ("29+" on some clouds).
func leadingDigits(s string) string {
	for i, r := range s {
		if r < '0' || r > '9' {
			return s[:i]
		}
	}
	return s
}

// setRunnerSize tells the install container the runner binary's size.
func setRunnerSize(pod *corev1.Pod, size int64) {
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; c.Name == installContainer {
			c.Env = append(c.Env, corev1.EnvVar{Name: envRunnerSize, Value: strconv.FormatInt(size, 10)})
		}
	}
}

// asSidecar turns the pod's install init container into a native sidecar
// and makes the job container wait for the binary: the job container and
// the services then start while the binary streams in, instead of after.
func asSidecar(pod *corev1.Pod) {
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; c.Name == installContainer {
			c.RestartPolicy = ptr(corev1.ContainerRestartPolicyAlways)
			c.Command = []string{"sh", "-c", sidecarScript}
		}
	}
	for i := range pod.Spec.Containers {
		if c := &pod.Spec.Containers[i]; c.Name == jobContainer {
			c.Command = []string{"sh", "-c", awaitScript}
		}
	}
}
