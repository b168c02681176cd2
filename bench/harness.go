package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/client"
)

type harness struct {
	ctx     context.Context
	n       int
	tmp     string
	bin     string
	image   string
	verbose bool
	repos   int
	memo    map[string][]time.Duration // conveyor timings shared between cases

	docker  *client.Client
	sleeper string // container id for raw exec floors
}

// failure aborts a case; runCase turns it into an ERR row.
type failure struct{ err error }

func (h *harness) fail(format string, args ...any) {
	panic(failure{fmt.Errorf(format, args...)})
}

// runCase runs one case, turning a failure into an ERR row.
func runCase(h *harness, c benchCase) (rows []row) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(failure)
			if !ok {
				panic(r)
			}
			rows = append(rows, row{name: c.name, ours: "-", floor: "-", ratio: "-", target: "-", ok: "ERR", comment: oneLine(f.err.Error())})
		}
	}()
	return c.run(h)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// workflow is jobs × steps of `run:` commands.
type workflow struct {
	jobs  int
	steps []string
}

func (w workflow) yaml() string {
	var b strings.Builder
	b.WriteString("on: push\njobs:\n")
	for j := 0; j < w.jobs; j++ {
		fmt.Fprintf(&b, "  job%d:\n    runs-on: ubuntu-latest\n    steps:\n", j+1)
		for _, s := range w.steps {
			fmt.Fprintf(&b, "      - run: %s\n", strconv.Quote(s))
		}
	}
	return b.String()
}

// repo writes a temporary repository holding the workflow.
func (h *harness) repo(w workflow) string {
	h.repos++
	dir := filepath.Join(h.tmp, fmt.Sprintf("repo%d", h.repos))
	wf := filepath.Join(dir, ".github", "workflows")
	if err := os.MkdirAll(wf, 0o755); err != nil {
		h.fail("%v", err)
	}
	if err := os.WriteFile(filepath.Join(wf, "bench.yml"), []byte(w.yaml()), 0o644); err != nil {
		h.fail("%v", err)
	}
	return dir
}

// conveyorRun is one prepared `conveyor run` invocation.
type conveyorRun struct {
	dir  string
	args []string
	env  []string // added to the environment
}

func (h *harness) prepare(backend string, w workflow) conveyorRun {
	args := []string{"run", "--no-color", "--backend", backend, "--jobs", strconv.Itoa(max(w.jobs, 1))}
	if backend == "docker" {
		args = append(args, "-P", "ubuntu-latest="+h.image)
	}
	return conveyorRun{dir: h.repo(w), args: args}
}

// result of one conveyor run.
type result struct {
	wall   time.Duration
	maxRSS int64 // bytes, from wait4's rusage (conveyor and the children it waited for)
	hwm    int64 // bytes, highest VmHWM of the conveyor process seen while polling (0 if not polled)
}

// exec runs conveyor once with stdout to /dev/null.
func (h *harness) exec(r conveyorRun, pollHWM bool) result {
	cmd := exec.CommandContext(h.ctx, h.bin, r.args...)
	cmd.Dir = r.dir
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		h.fail("%v", err)
	}
	defer devnull.Close()
	cmd.Stdout = devnull
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Env = append(append(os.Environ(), "NO_COLOR=1"), r.env...)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		h.fail("%v", err)
	}
	var hwm int64
	done := make(chan struct{})
	polled := make(chan struct{})
	if pollHWM {
		go func() {
			defer close(polled)
			path := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				if v := readVmHWM(path); v > hwm {
					hwm = v
				}
				select {
				case <-done:
					return
				case <-t.C:
				}
			}
		}()
	} else {
		close(polled)
	}
	err = cmd.Wait()
	wall := time.Since(t0)
	close(done)
	<-polled
	if err != nil {
		h.fail("conveyor %s in %s: %v\n%s\n(rerun by hand: cd %s && %s %s)", strings.Join(r.args, " "), r.dir, err, stderr.String(), r.dir, h.bin, strings.Join(r.args, " "))
	}
	res := result{wall: wall, hwm: hwm}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.maxRSS = int64(ru.Maxrss) * 1024 // kilobytes on Linux
	}
	return res
}

// readVmHWM returns the VmHWM line of /proc/PID/status in bytes, 0 if unreadable.
func readVmHWM(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// timings runs the functions round-robin h.n times each after one
// discarded warm-up round, so drift of the machine hits all of them alike.
// It returns the durations per function.
func (h *harness) timings(label string, fns ...func() time.Duration) [][]time.Duration {
	for _, f := range fns {
		f()
	}
	out := make([][]time.Duration, len(fns))
	for i := 0; i < h.n; i++ {
		for j, f := range fns {
			d := f()
			out[j] = append(out[j], d)
			if h.verbose {
				fmt.Fprintf(os.Stderr, "  %s[%d] #%d %s\n", label, j, i+1, fmtDur(d))
			}
		}
	}
	return out
}

// conveyorTimings is timings of conveyor runs, memoised by key so cases
// that need the same figure (the 1-step docker job) share it.
func (h *harness) conveyorTimings(keys []string, runs []conveyorRun) [][]time.Duration {
	all := true
	for _, k := range keys {
		if _, ok := h.memo[k]; !ok {
			all = false
		}
	}
	if !all {
		fns := make([]func() time.Duration, len(runs))
		for i, r := range runs {
			fns[i] = func() time.Duration { return h.exec(r, false).wall }
		}
		res := h.timings(strings.Join(keys, "+"), fns...)
		for i, k := range keys {
			h.memo[k] = res[i]
		}
	}
	out := make([][]time.Duration, len(keys))
	for i, k := range keys {
		out[i] = h.memo[k]
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// pairedDiff returns a[i]-b[i] for each run (a and b were interleaved).
func pairedDiff(a, b []time.Duration) []time.Duration {
	out := make([]time.Duration, min(len(a), len(b)))
	for i := range out {
		out[i] = a[i] - b[i]
	}
	return out
}

func fmtDur(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms < 0:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 1000:
		return fmt.Sprintf("%.0f ms", ms)
	default:
		return fmt.Sprintf("%.2f s", ms/1000)
	}
}

func fmtRatio(a, b time.Duration) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", float64(a)/float64(b))
}

func fmtMB(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

func okIf(cond bool) string {
	if cond {
		return "yes"
	}
	return "NO"
}
