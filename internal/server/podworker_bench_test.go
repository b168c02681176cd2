package server

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// stepsFlow is a job of benchSteps `true` steps.
func stepsFlow(n int) string {
	var b strings.Builder
	b.WriteString("name: Steps\non: push\njobs:\n  steps:\n    runs-on: ubuntu-latest\n    steps:\n")
	for range n {
		b.WriteString("      - run: \"true\"\n")
	}
	return b.String()
}

const benchSteps = 40

// stepTime matches a step's end line in a job's log and its duration.
var stepTime = regexp.MustCompile(`##\[step\] Run true: success \(([^)]+)\)`)

// Per-step cost of the two kubernetes layouts in the same run, on the
// test cluster (see docs/benchmarks.md):
//
//	go test -run '^$' -bench PodLayouts -benchtime 2x ./internal/server/
//
// A pushed job of 40 `true` steps; ms/step is the mean step time the
// executor logs (from the step's start to its result: expressions, the
// step's process, and in the attach layout the request over the attach
// stream and the job folder's sync around it); job-s is the job's time
// from its lease to its result (pod start, binary install and teardown
// included).
func BenchmarkPodLayouts(b *testing.B) {
	for _, layout := range []string{"attach", "worker"} {
		b.Run(layout, func(b *testing.B) {
			hs, _ := kubeServer(b, map[string]string{".github/workflows/steps.yml": stepsFlow(benchSteps), "README.md": "0\n"}, nil, layout == "worker")
			var stepSum, jobSum time.Duration
			steps := 0
			b.ResetTimer()
			for i := range b.N {
				hs.git.commit("bench "+strconv.Itoa(i), map[string]string{"README.md": strconv.Itoa(i) + "\n"})
				if code, body := hs.hook("push", hs.push("main", "README.md"), "bench-"+layout+strconv.Itoa(i)); code != http.StatusAccepted {
					b.Fatalf("push: %d %s", code, body)
				}
				r := hs.waitRuns(i+1, 5*time.Minute)[0]
				job := hs.jobs(r.ID)["steps"]
				log := hs.jobLog(r.ID, "steps")
				if job.Status != store.StatusSuccess {
					b.Fatalf("job %s:\n%s", job.Status, log)
				}
				if layout == "worker" && !strings.Contains(log, "worker layout") {
					b.Fatalf("the job did not run in the worker layout:\n%s", log)
				}
				for _, m := range stepTime.FindAllStringSubmatch(log, -1) {
					d, err := time.ParseDuration(m[1])
					if err != nil {
						b.Fatalf("step time %q: %v", m[1], err)
					}
					stepSum += d
					steps++
				}
				jobSum += job.Finished.Sub(job.Started)
			}
			if steps != benchSteps*b.N {
				b.Fatalf("%d step times in the logs, want %d", steps, benchSteps*b.N)
			}
			b.ReportMetric(float64(stepSum.Microseconds())/1000/float64(steps), "ms/step")
			b.ReportMetric(jobSum.Seconds()/float64(b.N), "job-s")
		})
	}
}
