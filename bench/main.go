// Command bench measures Conveyor against the floor of the machine it runs
// on: each case times `conveyor run` (a freshly built binary, as a
// subprocess) and, in the same run, the cheapest thing that does the same
// work without Conveyor (a raw Docker exec, `docker run --rm`, a fork/exec of
// sh...). It prints one table row per figure: ours (median), floor (median),
// ratio, target, ok?.
//
//	go run ./bench              # every case, 10 runs each (the 1 GB case once)
//	go run ./bench -n 3         # quick
//	go run ./bench -only host   # cases whose name starts with "host" (comma-separated list)
//
// It is a harness, not a test: nothing fails when a target is missed. See
// docs/benchmarks.md.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"
)

type benchCase struct {
	name string
	desc string
	run  func(h *harness) []row
}

// row is one line of the table.
type row struct {
	name    string
	ours    string
	floor   string
	ratio   string
	target  string
	ok      string // "yes", "NO", "-" (nothing to judge), "ERR"
	comment string
}

var cases = []benchCase{
	{"docker-steps", "10 echo steps in one docker job; per-step overhead vs raw docker exec", dockerSteps},
	{"docker-start", "1-step docker job vs docker run --rm IMAGE true", dockerStart},
	{"docker-output", "docker step printing 100,000 lines vs raw docker exec of seq", dockerOutput},
	{"host-steps", "10 echo steps on the host; per-step overhead vs fork/exec of sh -c true", hostSteps},
	{"host-output", "host step printing 100,000 lines vs sh -c 'seq 1 100000'", hostOutput},
	{"parallel-host", "4 independent jobs x 3 steps vs 1 job x 3 steps, host", parallelHost},
	{"parallel-docker", "4 independent jobs x 3 steps vs 1 job x 3 steps, docker", parallelDocker},
	{"memory", "peak RSS of conveyor while a host step prints ~1 GB", memoryCase},
	{"server-intake", "signed GitHub webhooks into conveyor server (SQLite): sustained rate, p99, 10,000 burst counted in the database; vs raw batched inserts", serverIntake},
	{"server-process", "10,000 signed pushes of a workflow into runs (server --workers 0, SQLite): events processed per second; vs raw batched inserts", serverProcessing},
	{"server-process-pg", "server-process on PostgreSQL (CONVEYOR_TEST_POSTGRES) with 1 and with 2 replicas sharing the processing", serverProcessingPG},
	{"server-dispatch", "conveyor server, host backend: job ready -> first step (metrics), needs: chain gaps (API); vs fork/exec of sh -c true", serverDispatch},
	{"server-start", "conveyor server exec to first 200 on /healthz, fresh data dir; vs exec of conveyor version", serverStart},
	{"server-rss", "idle RSS of conveyor server, and after a 10,000 webhook burst", serverRSS},
	{"actions-warm", "remote node action (host), warm action cache, vs a run: step of node on its entry file", actionsWarm},
	{"actions-fetch", "first fetch of a remote action (empty cache) vs git clone --depth 1 of it", actionsFetch},
	{"actions-real", "whole conveyor run with a warm real remote action (actions/github-script@v7 from the compat material) vs the same workflow with a run: step", actionsReal},
	{"cache", "native actions/cache save + restore of a tree of many small files (-cache-mb, default 1 GB) vs tar | zstd to disk and back", cacheCase},
	{"server-logs", "a host step printing -log-mb MB followed live by 10 SSE clients, then read by 10 more: peak server RSS vs the idle server; database growth", serverLogs},
	{"agents-throughput", "conveyor server --workers 0 + 2 conveyor agents (capacity 4, host): ready -> step running of 1-job runs on idle agents, 200 jobs at once; vs fork/exec of sh -c true", agentsThroughput},
}

func main() {
	n := flag.Int("n", 10, "runs per measurement (medians); the 1 GB case runs once")
	only := flag.String("only", "", "comma-separated case names or name prefixes (default: all)")
	image := flag.String("image", "conveyor-test/busybox:1", "image for the docker cases (needs sh, seq, sleep)")
	logMB := flag.Int("log-mb", 1024, "size of the log of the server-logs case in MB (CI: small)")
	list := flag.Bool("list", false, "list the cases and exit")
	verbose := flag.Bool("v", false, "print each timing as it is taken (stderr)")
	binFlag := flag.String("bin", "", "time this conveyor binary instead of building ./cmd/conveyor (to compare an old build with a new one)")
	cpuProfile := flag.String("cpuprofile", "", "write the bench process's own CPU profile (the load generator's cost) to this file")
	flag.Parse()
	if *list {
		for _, c := range cases {
			fmt.Printf("%-16s %s\n", c.name, c.desc)
		}
		return
	}
	if *n < 1 {
		fmt.Fprintln(os.Stderr, "bench: -n must be at least 1")
		os.Exit(2)
	}
	var sel []benchCase
	for _, c := range cases {
		if selected(c.name, *only) {
			sel = append(sel, c)
		}
	}
	if len(sel) == 0 {
		fmt.Fprintf(os.Stderr, "bench: no case matches -only %q (try -list)\n", *only)
		os.Exit(2)
	}

	tmp, err := os.MkdirTemp("", "conveyor-bench-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(tmp)
	bin, err := *binFlag, error(nil)
	if bin == "" {
		bin, err = buildConveyor(tmp)
	} else if bin, err = filepath.Abs(bin); err == nil {
		_, err = os.Stat(bin)
	}
	if err != nil {
		os.RemoveAll(tmp)
		fatal(err)
	}
	h := &harness{n: *n, tmp: tmp, bin: bin, image: *image, verbose: *verbose, logMB: *logMB,
		ctx: context.Background(), memo: map[string][]time.Duration{}}
	defer h.close()

	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fatal(err)
		}
		defer stop()
	}
	start := time.Now()
	fmt.Fprintf(os.Stderr, "bench: %d run(s) per figure, %s, %d CPUs, image %s\n", *n, runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU(), *image)
	var rows []row
	for _, c := range sel {
		fmt.Fprintf(os.Stderr, "bench: %s ...\n", c.name)
		t0 := time.Now()
		rs := runCase(h, c)
		rows = append(rows, rs...)
		fmt.Fprintf(os.Stderr, "bench: %s done in %s\n", c.name, time.Since(t0).Round(100*time.Millisecond))
	}
	printTable(rows)
	fmt.Printf("\n%d run(s) per figure (median), %d CPUs, total %s\n", *n, runtime.NumCPU(), time.Since(start).Round(time.Second))
}

func selected(name, only string) bool {
	if only == "" {
		return true
	}
	for _, o := range strings.Split(only, ",") {
		if o = strings.TrimSpace(o); o != "" && strings.HasPrefix(name, o) {
			return true
		}
	}
	return false
}

func printTable(rows []row) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "case\tours (median)\tfloor\tratio\ttarget\tok?")
	fmt.Fprintln(tw, "----\t-------------\t-----\t-----\t------\t---")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.name, r.ours, r.floor, r.ratio, r.target, r.ok)
	}
	tw.Flush()
	var notes []string
	for _, r := range rows {
		if r.comment != "" {
			notes = append(notes, fmt.Sprintf("  %s: %s", r.name, r.comment))
		}
	}
	if len(notes) > 0 {
		fmt.Println("\nnotes:")
		fmt.Println(strings.Join(notes, "\n"))
	}
}

// buildConveyor builds ./cmd/conveyor of the module the harness runs in.
func buildConveyor(dir string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run the harness inside the conveyor module (go run ./bench)")
	}
	bin := filepath.Join(dir, "conveyor")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/conveyor")
	cmd.Dir = filepath.Dir(gomod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/conveyor: %v\n%s", err, stderr.String())
	}
	return bin, nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

// startCPUProfile profiles the bench process itself into path.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
