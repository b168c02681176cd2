package jobrun

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/jobspec"
	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// benchFlow is a job of a typical size: a matrix, env, a container, eight
// steps with with:, env: and if:.
const benchFlow = `name: CI
on: [push, pull_request]
env:
  GO: "1.26"
defaults:
  run:
    shell: bash
jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
  build:
    needs: lint
    runs-on: ${{ matrix.os }}
    timeout-minutes: 30
    strategy:
      fail-fast: false
      matrix:
        os: [ubuntu-latest, ubuntu-22.04]
        go: ["1.25", "1.26"]
        include:
          - os: ubuntu-latest
            experimental: true
    container:
      image: golang:${{ matrix.go }}
      env:
        CGO_ENABLED: "0"
    env:
      GOFLAGS: -mod=readonly
    outputs:
      version: ${{ steps.v.outputs.version }}
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - uses: actions/setup-go@v5
        with:
          go-version: ${{ matrix.go }}
          cache: true
      - id: v
        run: echo "version=$(git describe --tags)" >> "$GITHUB_OUTPUT"
      - run: go vet ./...
      - run: go test -race ./...
        env:
          CI: "true"
        timeout-minutes: 20
      - if: ${{ matrix.experimental }}
        run: go test -tags experimental ./...
        continue-on-error: true
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: coverage-${{ matrix.os }}-${{ matrix.go }}
          path: coverage.out
      - name: Summary
        run: |
          echo "## Build ${{ matrix.os }} / ${{ matrix.go }}" >> "$GITHUB_STEP_SUMMARY"
          echo "done"
`

// What a worker does with an assignment before the executor starts: plan
// the job from the workflow file (contract version 1) or from the
// compiled job as it arrives on the wire (version 2: decoded JSON).
func BenchmarkPrepare(b *testing.B) {
	yaml := benchFlow
	if f := os.Getenv("CONVEYOR_BENCH_WORKFLOW"); f != "" { // a larger file of one's own
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		yaml = string(data)
	}
	file := ".github/workflows/ci.yml"
	b.Run("yaml", func(b *testing.B) {
		asg := &jobspec.Assignment{Key: "build", Run: jobspec.Run{Workflow: file, WorkflowYAML: yaml, Event: "push"}}
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			if _, err := Prepare(asg); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu)
		b.ReportMetric(float64(len(yaml)), "input-B")
	})
	// What the server adds to a run's creation per job: compile the parsed
	// file's job and encode it for the store.
	b.Run("server-compile", func(b *testing.B) {
		wf, probs := workflow.Parse([]byte(yaml), file)
		if len(probs) > 0 {
			b.Fatal(probs)
		}
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			j, err := plan.Spec(wf, "build", "push")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := jobspec.EncodeJob(j); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu)
	})
	enc, err := jobspec.EncodeJob(compiled(b, yaml, file, "build", "push"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("compiled", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			j, err := jobspec.DecodeJob(enc)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Prepare(&jobspec.Assignment{Key: "build", Job: j}); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu)
		b.ReportMetric(float64(len(enc)), "input-B")
	})
}

// cpuTime is the process's CPU time (user and system) so far: on a busy
// machine it says what an operation costs better than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per operation since start.
func reportCPU(b *testing.B, start time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	}
}
