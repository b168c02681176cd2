package kubernetes

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/testenv"
	"github.com/conveyor-ci/conveyor/internal/testenv/stepreg"
)

// BenchmarkImageStep compares, in one job pod of the same run, a step in
// the job container with a step that needs another image (an ephemeral
// container of the pod, see imagestep.go), both a no-op:
//
//	go test -run '^$' -bench ImageStep -benchtime 20x ./internal/backend/kubernetes/
//
// JobContainer: a backend Exec of `true` (the job folder pushed and
// pulled around it, what the executor pays); ImageStep: RunContainer of
// `sh -c true` in the busybox image (the same sync around it), an
// ephemeral container; WaitFile: the same step in the pod's step
// container (the wait-file layout, waitfile.go: the job announced the
// image, whose config an in-process registry serves);
// JobContainerSleep1s, ImageStepSleep1s and WaitFileSleep1s: the same
// with a step of one second. ImageStepPhases: the ephemeral container alone (Debian's
// `date +%s%N`), without the sync, with its phases as metrics: add-ms
// (the patch of pods/ephemeralcontainers), start-ms (until the API says
// it runs or ended), end-ms (its log followed to the end and its exit
// seen); proc-ms (patch sent → the step's process runs) and seen-ms (the
// process ran → the backend has its exit code) split the same time
// between the kubelet starting the container and the API reporting it.
func BenchmarkImageStep(b *testing.B) {
	reg := stepreg.New(b)
	kb := newBackend(b, Options{Images: reg.Resolver()})
	sb := setupJob(b, kb, jobWithSteps(b, reg.Ref))
	if len(sb.waiters) != 1 {
		b.Fatalf("step containers: %+v", sb.waiters)
	}
	img := testenv.BusyboxImage(b)
	step := &backend.ContainerStep{Image: img, Entrypoint: []string{"sh", "-c"}, Args: []string{"true"}}
	b.Run("JobContainer", func(b *testing.B) {
		benchSteps(b, func(ctx context.Context) (int, error) {
			return sb.Exec(ctx, &backend.Process{Argv: []string{"true"}}, io.Discard)
		})
	})
	b.Run("ImageStep", func(b *testing.B) {
		benchSteps(b, func(ctx context.Context) (int, error) {
			return sb.RunContainer(ctx, step, io.Discard)
		})
	})
	// The same step in the pod's step container (wait-file layout).
	wstep := &backend.ContainerStep{Image: reg.Ref, Entrypoint: []string{"sh", "-c"}, Args: []string{"true"}}
	b.Run("WaitFile", func(b *testing.B) {
		benchSteps(b, func(ctx context.Context) (int, error) {
			return sb.RunContainer(ctx, wstep, io.Discard)
		})
	})
	wsleep := &backend.ContainerStep{Image: reg.Ref, Entrypoint: []string{"sh", "-c"}, Args: []string{"sleep 1"}}
	b.Run("WaitFileSleep1s", func(b *testing.B) {
		benchSteps(b, func(ctx context.Context) (int, error) {
			return sb.RunContainer(ctx, wsleep, io.Discard)
		})
	})
	// A step of one second: how long after its end the backend learns it.
	sleep := &backend.ContainerStep{Image: img, Entrypoint: []string{"sh", "-c"}, Args: []string{"sleep 1"}}
	b.Run("JobContainerSleep1s", func(b *testing.B) {
		benchSteps(b, func(ctx context.Context) (int, error) {
			return sb.Exec(ctx, &backend.Process{Argv: []string{"sh", "-c", "sleep 1"}}, io.Discard)
		})
	})
	b.Run("ImageStepSleep1s", func(b *testing.B) {
		benchSteps(b, func(ctx context.Context) (int, error) {
			return sb.RunContainer(ctx, sleep, io.Discard)
		})
	})
	// The phases of an image step printing the time its process runs at
	// (date +%s%N, the node's clock is this machine's).
	stamp := &backend.ContainerStep{Image: testenv.Image(b), Entrypoint: []string{"date"}, Args: []string{"+%s%N"}}
	b.Run("ImageStepPhases", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		var add, start, end, proc, seen time.Duration
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			var out strings.Builder
			sb.mu.Lock()
			sb.imageSteps++
			name := fmt.Sprintf("step-%d", sb.imageSteps)
			t0 := time.Now()
			err := sb.addEphemeral(ctx, sb.ephemeralContainer(name, stamp))
			t1 := time.Now()
			if err == nil {
				_, err = sb.waitPod(ctx, "start", stepState(name, false))
			}
			t2 := time.Now()
			if err == nil {
				if err = sb.followLog(ctx, name, &out); err == nil {
					_, err = sb.waitPod(ctx, "end", stepState(name, true))
				}
			}
			t3 := time.Now()
			sb.mu.Unlock()
			if err != nil {
				b.Fatal(err)
			}
			ns, err := strconv.ParseInt(strings.TrimSpace(out.String()), 10, 64)
			if err != nil {
				b.Fatalf("the step's output %q: %v", out.String(), err)
			}
			ran := time.Unix(0, ns)
			add, start, end = add+t1.Sub(t0), start+t2.Sub(t1), end+t3.Sub(t2)
			proc, seen = proc+ran.Sub(t0), seen+t3.Sub(ran)
		}
		n := float64(b.N)
		for name, d := range map[string]time.Duration{"add-ms": add, "start-ms": start, "end-ms": end, "proc-ms": proc, "seen-ms": seen} {
			b.ReportMetric(float64(d.Milliseconds())/n, name)
		}
	})
}
