package kubernetes

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// BenchmarkImageStep compares, in one job pod of the same run, a step in
// the job container with a step that needs another image (an ephemeral
// container of the pod, see imagestep.go), both a no-op:
//
//	go test -run '^$' -bench ImageStep -benchtime 20x ./internal/backend/kubernetes/
//
// JobContainer: a backend Exec of `true` (the job folder pushed and
// pulled around it, what the executor pays); ImageStep: RunContainer of
// `sh -c true` in the busybox image (the same sync around it);
// ImageStepPhases: the ephemeral container alone, without the sync, with
// its phases as metrics: add-ms (the patch of pods/ephemeralcontainers),
// start-ms (until the kubelet reports it running or ended), end-ms
// (its log followed to the end and its exit seen).
func BenchmarkImageStep(b *testing.B) {
	kb := newBackend(b, Options{})
	sb := setupJob(b, kb, newJob(b))
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
	b.Run("ImageStepPhases", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		var add, start, end time.Duration
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			sb.mu.Lock()
			sb.imageSteps++
			name := fmt.Sprintf("step-%d", sb.imageSteps)
			t0 := time.Now()
			err := sb.addEphemeral(ctx, sb.ephemeralContainer(name, step))
			t1 := time.Now()
			if err == nil {
				_, err = sb.waitPod(ctx, "start", stepState(name, false))
			}
			t2 := time.Now()
			if err == nil {
				if err = sb.followLog(ctx, name, io.Discard); err == nil {
					_, err = sb.waitPod(ctx, "end", stepState(name, true))
				}
			}
			t3 := time.Now()
			sb.mu.Unlock()
			if err != nil {
				b.Fatal(err)
			}
			add, start, end = add+t1.Sub(t0), start+t2.Sub(t1), end+t3.Sub(t2)
		}
		n := float64(b.N)
		b.ReportMetric(float64(add.Milliseconds())/n, "add-ms")
		b.ReportMetric(float64(start.Milliseconds())/n, "start-ms")
		b.ReportMetric(float64(end.Milliseconds())/n, "end-ms")
	})
}
