package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

const (
	seqLines = "seq 1 100000"
	// bigOutput prints ~1 GB in 73-byte lines. `|| true` keeps pipefail
	// shells from failing the step when head closes the pipe.
	bigOutput = "{ yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvw || true; } | head -c 1000000000"
)

// outputReps is how many 100k-line steps a job of the output cases has,
// against as many `true` steps, so the job start's noise is divided.
const outputReps = 5

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func echoSteps(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("echo step %d", i+1)
	}
	return s
}

// stepTimings returns the 1-step and 10-step job times of a backend, interleaved.
func (h *harness) stepTimings(backend string) (one, ten []time.Duration) {
	keys := []string{backend + "-1step", backend + "-10step"}
	var runs []conveyorRun
	if h.memo[keys[0]] == nil || h.memo[keys[1]] == nil {
		runs = []conveyorRun{
			h.prepare(backend, workflow{jobs: 1, steps: echoSteps(1)}),
			h.prepare(backend, workflow{jobs: 1, steps: echoSteps(10)}),
		}
	}
	r := h.conveyorTimings(keys, runs)
	return r[0], r[1]
}

// 1. docker: per-step overhead of 10 echo steps vs a raw docker exec.
func dockerSteps(h *harness) []row {
	h.sleeperContainer()
	one, ten := h.stepTimings("docker")
	exec := median(h.timings("docker exec true", func() time.Duration { return h.rawExec("true") })[0])
	per := median(pairedDiff(ten, one)) / 9
	return []row{
		{name: "docker 10 echo steps, job total", ours: fmtDur(median(ten)), floor: "-", ratio: "-", target: "-", ok: "-",
			comment: fmt.Sprintf("1-step job %s; whole `conveyor run` process, container start included", fmtDur(median(one)))},
		{name: "docker per-step overhead", ours: fmtDur(per), floor: fmtDur(exec) + " (exec)", ratio: fmtRatio(per, exec),
			target: "<= 0.15x", ok: okIf(float64(per) <= 0.15*float64(exec)),
			comment: "(t(10 steps) - t(1 step)) / 9, paired runs; floor: raw docker exec CTR true via the API (create+attach+inspect)"},
	}
}

// 2. docker: job start vs docker run --rm IMAGE true.
// The job and the floor are timed round-robin (job, floor, job, ...): a
// docker start moves by hundreds of milliseconds with the machine's load,
// so figures taken minutes apart do not compare.
func dockerStart(h *harness) []row {
	h.dockerClient()
	job := h.prepare("docker", workflow{jobs: 1, steps: echoSteps(1)})
	r := h.timings("docker 1-step job / docker run --rm true", func() time.Duration { return h.exec(job, false).wall }, h.rawRun)
	ours, run := median(r[0]), median(r[1])
	return []row{{name: "docker 1-step job (start)", ours: fmtDur(ours), floor: fmtDur(run) + " (run --rm)", ratio: fmtRatio(ours, run),
		target: "<= floor+100ms", ok: okIf(ours <= run+100*time.Millisecond),
		comment: fmt.Sprintf("ours - floor = %s (median of paired differences %s); floor: create+start+wait+remove via the API, timed alternately with the job",
			fmtDur(ours-run), fmtDur(median(pairedDiff(r[0], r[1]))))}}
}

// 3. docker: a step printing 100,000 lines vs raw docker exec of the same command.
func dockerOutput(h *harness) []row {
	h.sleeperContainer()
	runs := []conveyorRun{
		h.prepare("docker", workflow{jobs: 1, steps: repeat("true", outputReps)}),
		h.prepare("docker", workflow{jobs: 1, steps: repeat(seqLines, outputReps)}),
	}
	r := h.conveyorTimings([]string{"docker-true", "docker-seq"}, runs)
	raw := h.timings("docker exec sh -c", func() time.Duration { return h.rawExec("sh", "-c", "true") },
		func() time.Duration { return h.rawExec("sh", "-c", seqLines) })
	ours := median(pairedDiff(r[1], r[0])) / outputReps
	floor := median(pairedDiff(raw[1], raw[0]))
	return []row{{name: "docker 100k-line step (extra)", ours: fmtDur(ours), floor: fmtDur(floor) + " (exec)", ratio: fmtRatio(ours, floor),
		target: "<= 3x", ok: okIf(ours <= 3*floor),
		comment: fmt.Sprintf("(t(job: 5 seq steps) - t(job: 5 true steps)) / 5 = (%s - %s) / 5; floor: raw exec sh -c seq %s - sh -c true %s",
			fmtDur(median(r[1])), fmtDur(median(r[0])), fmtDur(median(raw[1])), fmtDur(median(raw[0])))}}
}

// 4. host: per-step overhead of 10 echo steps vs fork/exec of sh -c true.
func hostSteps(h *harness) []row {
	one, ten := h.stepTimings("host")
	// What a default-shell step runs itself, for scale: bash -e of a
	// one-line script file (GitHub's default shell where there is bash).
	script := filepath.Join(h.tmp, "step.sh")
	if err := os.WriteFile(script, []byte("echo step 1\n"), 0o755); err != nil {
		h.fail("%v", err)
	}
	fns := []func() time.Duration{func() time.Duration { return h.rawHost("true") }}
	if _, err := exec.LookPath("bash"); err == nil {
		fns = append(fns, func() time.Duration { return h.rawArgv("bash", "-e", script) })
	}
	floors := h.timings("sh -c true, bash -e", fns...)
	fork := median(floors[0])
	bash := "-"
	if len(floors) > 1 {
		bash = fmtDur(median(floors[1]))
	}
	per := median(pairedDiff(ten, one)) / 9
	return []row{
		{name: "host 10 echo steps, job total", ours: fmtDur(median(ten)), floor: "-", ratio: "-", target: "-", ok: "-",
			comment: fmt.Sprintf("1-step job %s (whole `conveyor run` process)", fmtDur(median(one)))},
		{name: "host per-step overhead", ours: fmtDur(per), floor: fmtDur(fork) + " (sh)", ratio: fmtRatio(per, fork),
			target: "<= 1.2 ms", ok: okIf(per <= 1200*time.Microsecond),
			comment: "(t(10 steps) - t(1 step)) / 9, paired runs; floor: os/exec of sh -c true; os/exec of bash -e FILE (the step's own shell) " + bash},
	}
}

// 5. host: a step printing 100,000 lines vs sh -c 'seq 1 100000'.
func hostOutput(h *harness) []row {
	runs := []conveyorRun{
		h.prepare("host", workflow{jobs: 1, steps: repeat("true", outputReps)}),
		h.prepare("host", workflow{jobs: 1, steps: repeat(seqLines, outputReps)}),
	}
	r := h.conveyorTimings([]string{"host-true", "host-seq"}, runs)
	raw := h.timings("sh -c", func() time.Duration { return h.rawHost("true") },
		func() time.Duration { return h.rawHost(seqLines) })
	ours := median(pairedDiff(r[1], r[0])) / outputReps
	floor := median(raw[1])
	return []row{{name: "host 100k-line step (extra)", ours: fmtDur(ours), floor: fmtDur(floor) + " (sh)", ratio: fmtRatio(ours, floor),
		target: "<= 3x", ok: okIf(ours <= 3*floor),
		comment: fmt.Sprintf("(t(job: 5 seq steps) - t(job: 5 true steps)) / 5 = (%s - %s) / 5; floor: sh -c seq through a drained pipe (sh -c true: %s)",
			fmtDur(median(r[1])), fmtDur(median(r[0])), fmtDur(median(raw[0])))}}
}

// 6. 4 independent jobs x 3 steps vs one job of 3 steps.
func parallel(h *harness, backend string) []row {
	if backend == "docker" {
		h.dockerClient()
	}
	steps := []string{"sleep 0.2", "sleep 0.2", "sleep 0.2"}
	runs := []conveyorRun{
		h.prepare(backend, workflow{jobs: 1, steps: steps}),
		h.prepare(backend, workflow{jobs: 4, steps: steps}),
	}
	r := h.conveyorTimings([]string{backend + "-par1", backend + "-par4"}, runs)
	one, four := median(r[0]), median(r[1])
	comment := "steps are `sleep 0.2`; --jobs 4 (the default is the CPU count); floor: the same run with 1 job"
	if backend == "docker" {
		// For scale: the engine alone, 4 containers at once against 1.
		script := "sleep 0.2; sleep 0.2; sleep 0.2"
		raw := h.timings("docker run x1 / x4", func() time.Duration { return h.rawRunN(1, script) },
			func() time.Duration { return h.rawRunN(4, script) })
		r1, r4 := median(raw[0]), median(raw[1])
		comment += fmt.Sprintf("; for scale, raw docker run --rm of the 3 sleeps (API): 4 at once %s, 1 %s (%s)", fmtDur(r4), fmtDur(r1), fmtRatio(r4, r1))
	}
	return []row{{name: backend + " 4 jobs x 3 steps", ours: fmtDur(four), floor: fmtDur(one) + " (1 job)", ratio: fmtRatio(four, one),
		target: "<= 1.5x", ok: okIf(float64(four) <= 1.5*float64(one)),
		comment: comment}}
}

func parallelHost(h *harness) []row   { return parallel(h, "host") }
func parallelDocker(h *harness) []row { return parallel(h, "docker") }

// 7. peak RSS while a host step prints ~1 GB (once).
func memoryCase(h *harness) []row {
	r := h.prepare("host", workflow{jobs: 1, steps: []string{bigOutput}})
	res := h.exec(r, true)
	peak, src := res.hwm, "VmHWM"
	if peak == 0 {
		peak, src = res.maxRSS, "rusage"
	}
	return []row{{name: "host 1 GB step, peak RSS", ours: fmtMB(peak), floor: "-", ratio: "-", target: "< 50 MB", ok: okIf(peak < 50<<20),
		comment: fmt.Sprintf("%s of the conveyor process (polled every 20 ms); rusage maxrss %s; took %s (%.0f MB/s), once",
			src, fmtMB(res.maxRSS), fmtDur(res.wall), 1000/res.wall.Seconds())}}
}
