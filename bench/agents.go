package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	agentCount     = 2
	agentCapacity  = 4
	agentLabel     = "bench-agent" // every job's runs-on: [self-hosted, bench-agent]
	agentJobsRun   = 20            // independent jobs per run of the throughput workflow
	agentPushes    = 10            // pushes per throughput round: 200 jobs
	agentIdleRuns  = 20            // 1-job runs, one at a time
	agentIdlePause = 200 * time.Millisecond
)

// agentProc is a running `conveyor agent` (the real binary).
type agentProc struct {
	name, data, logPath string
	cmd                 *exec.Cmd
	exited              chan struct{}
}

// startAgents creates agentCount agents through the API (admin token) and
// starts `conveyor agent --capacity 4 --backend host` for each; it returns
// when the server has seen all of them register.
func (h *harness) startAgents(srv *serverProc) []*agentProc {
	var out []*agentProc
	ok := false
	defer func() { // a failure below stops the agents already started
		if !ok {
			stopAgents(out)
		}
	}()
	for i := range agentCount {
		name := fmt.Sprintf("bench-%c", 'a'+i)
		var created struct {
			Agent struct {
				ID int64 `json:"id"`
			} `json:"agent"`
			Token string `json:"token"`
		}
		srv.call("POST", "/api/agents", map[string]any{"name": name, "labels": []string{agentLabel}}, http.StatusCreated, &created)
		a := &agentProc{name: name, data: filepath.Join(srv.data+"-"+name, "jobs"), logPath: srv.data + "-" + name + ".log",
			exited: make(chan struct{})}
		logf, err := os.Create(a.logPath)
		if err != nil {
			h.fail("%v", err)
		}
		a.cmd = exec.Command(h.bin, "agent", "--server", srv.url, "--labels", agentLabel,
			"--capacity", strconv.Itoa(agentCapacity), "--backend", "host", "--data", a.data, "--shutdown-timeout", "10s")
		a.cmd.Env = append(os.Environ(), "CONVEYOR_AGENT_TOKEN="+created.Token) // not in ps
		a.cmd.Stdout, a.cmd.Stderr = logf, logf
		if err := a.cmd.Start(); err != nil {
			logf.Close()
			h.fail("starting conveyor agent: %v", err)
		}
		go func() { _ = a.cmd.Wait(); logf.Close(); close(a.exited) }()
		out = append(out, a)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var list struct {
			Agents []struct {
				Name     string     `json:"name"`
				LastSeen *time.Time `json:"last_seen"`
			} `json:"agents"`
		}
		srv.call("GET", "/api/agents", nil, http.StatusOK, &list)
		seen := 0
		for _, a := range list.Agents {
			if a.LastSeen != nil {
				seen++
			}
		}
		if seen == agentCount {
			break
		}
		for _, a := range out {
			select {
			case <-a.exited:
				h.fail("agent %s exited: %s\n%s", a.name, a.cmd.ProcessState, a.logTail())
			default:
			}
		}
		if time.Now().After(deadline) {
			h.fail("%d of %d agents registered within 20 s\n%s", seen, agentCount, out[0].logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // every slot into its first long poll
	ok = true
	return out
}

func stopAgents(agents []*agentProc) {
	var wg sync.WaitGroup
	for _, a := range agents {
		wg.Go(a.stop)
	}
	wg.Wait()
}

// stop ends the agent gracefully (SIGTERM), SIGKILL after 15 s.
func (a *agentProc) stop() {
	select {
	case <-a.exited:
		return
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(15 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.exited
	}
}

func (a *agentProc) logTail() string {
	b, _ := os.ReadFile(a.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "agent " + a.name + " log (" + a.logPath + "):\n" + string(b)
}

// stampWorkflow is jobs independent jobs for the agents, each one bash step
// that writes the wall clock at which it runs ($EPOCHREALTIME, a builtin:
// no fork) and its working directory (which agent ran it) to
// stamps/RUNID-JOB: the moment the job is really running on the agent.
func stampWorkflow(jobs int, stamps string) string {
	var b strings.Builder
	b.WriteString("on: push\njobs:\n")
	for j := 1; j <= jobs; j++ {
		fmt.Fprintf(&b, "  j%02d:\n    runs-on: [self-hosted, %s]\n    steps:\n      - shell: bash\n        run: echo \"$EPOCHREALTIME $PWD\" > %s/$GITHUB_RUN_ID-$GITHUB_JOB\n",
			j, agentLabel, stamps)
	}
	return b.String()
}

// stamp reads the time and directory a job's step wrote.
func (h *harness) stamp(stamps string, runID int64, key string) (time.Time, string) {
	b, err := os.ReadFile(filepath.Join(stamps, fmt.Sprintf("%d-%s", runID, key)))
	if err != nil {
		h.fail("job %s of run %d left no stamp: %v", key, runID, err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		h.fail("stamp of run %d job %s: %q", runID, key, b)
	}
	sec, frac, _ := strings.Cut(strings.ReplaceAll(f[0], ",", "."), ".")
	s, err1 := strconv.ParseInt(sec, 10, 64)
	us, err2 := strconv.ParseInt((frac + "000000")[:6], 10, 64)
	if err1 != nil || err2 != nil {
		h.fail("stamp of run %d job %s: %q (no bash $EPOCHREALTIME?)", runID, key, b)
	}
	return time.Unix(s, us*1000), f[1]
}

// agentJob is one job's times: queued (ready), started (leased: status
// running), step (its step running on the agent, from the stamp), finished.
type agentJob struct {
	queued, started, step, finished time.Time
	agent                           string
}

func (h *harness) agentJobs(stamps string, agents []*agentProc, run apiRun) []agentJob {
	var out []agentJob
	for _, j := range run.Jobs {
		if j.Queued == nil || j.Started == nil || j.Finished == nil {
			h.fail("run %d job %s: times missing (queued %v, started %v, finished %v)", run.Run.ID, j.Key, j.Queued, j.Started, j.Finished)
		}
		t, dir := h.stamp(stamps, run.Run.ID, j.Key)
		aj := agentJob{queued: *j.Queued, started: *j.Started, step: t, finished: *j.Finished}
		for _, a := range agents {
			if strings.HasPrefix(dir, a.data+string(filepath.Separator)) {
				aj.agent = a.name
			}
		}
		if aj.agent == "" {
			h.fail("run %d job %s ran in %s, not on an agent: is the server running jobs itself (--workers 0)?", run.Run.ID, j.Key, dir)
		}
		out = append(out, aj)
	}
	return out
}

// throughputRound posts agentPushes pushes at once and waits for every run.
// It returns the jobs and the wall time from the first post to the last
// job's finished time (as the server recorded it).
func (h *harness) throughputRound(srv *serverProc, c *http.Client, r dispatchRepo, stamps string, agents []*agentProc, seq *int64) ([]agentJob, time.Duration) {
	t0 := time.Now()
	events := map[int64]bool{}
	for range agentPushes {
		*seq++
		events[h.pushEvent(c, r, "agents", *seq)] = true
	}
	deadline := time.Now().Add(5 * time.Minute)
	var runIDs []int64
	for {
		var list struct {
			Runs []struct {
				ID      int64  `json:"id"`
				EventID int64  `json:"event_id"`
				Status  string `json:"status"`
			} `json:"runs"`
		}
		srv.call("GET", fmt.Sprintf("/api/runs?repo=%d&limit=%d", r.id, 2*agentPushes), nil, http.StatusOK, &list)
		runIDs = runIDs[:0]
		for _, run := range list.Runs {
			if events[run.EventID] && terminal(run.Status) {
				runIDs = append(runIDs, run.ID)
			}
		}
		if len(runIDs) == len(events) {
			break
		}
		if time.Now().After(deadline) {
			h.fail("%d of %d runs finished within 5 min\n%s", len(runIDs), len(events), srv.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	var jobs []agentJob
	var last time.Time
	for _, id := range runIDs {
		var run apiRun
		srv.call("GET", fmt.Sprintf("/api/runs/%d", id), nil, http.StatusOK, &run)
		if run.Run.Status != "success" {
			h.fail("run %d: %s %s\n%s", id, run.Run.Status, run.Run.Error, srv.logTail())
		}
		for _, j := range h.agentJobs(stamps, agents, run) {
			jobs = append(jobs, j)
			if j.finished.After(last) {
				last = j.finished
			}
		}
	}
	if len(jobs) != agentPushes*agentJobsRun {
		h.fail("%d jobs in %d runs, want %d", len(jobs), len(runIDs), agentPushes*agentJobsRun)
	}
	return jobs, last.Sub(t0)
}

// parallelForks is the floor of the throughput: n fork/execs of sh -c true,
// `conc` at a time.
func (h *harness) parallelForks(n, conc int) time.Duration {
	t0 := time.Now()
	work := make(chan struct{}, n)
	for range n {
		work <- struct{}{}
	}
	close(work)
	var wg sync.WaitGroup
	errc := make(chan error, conc)
	for range conc {
		wg.Go(func() {
			for range work {
				if err := exec.CommandContext(h.ctx, "sh", "-c", "true").Run(); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(t0)
	select {
	case err := <-errc:
		h.fail("sh -c true: %v", err)
	default:
	}
	return d
}

// agentCPU is CPU time in clock ticks (USER_HZ, 100 a second): the
// machine's busy and total time (all CPUs), and the server's and the
// agents' own time and that of the children they reaped (git on the
// server; steps' shells on the agents).
type agentCPU struct{ busy, total, srv, srvKids, ag, agKids float64 }

func sampleAgentCPU(srv *serverProc, agents []*agentProc) agentCPU {
	m := sampleCPU(srv.pid())
	c := agentCPU{busy: m.busy, total: m.total}
	c.srv = procTicks(fmt.Sprintf("/proc/%d/stat", srv.pid()), false)
	c.srvKids = m.server - c.srv
	for _, a := range agents {
		path := fmt.Sprintf("/proc/%d/stat", a.cmd.Process.Pid)
		own := procTicks(path, false)
		c.ag += own
		c.agKids += procTicks(path, true) - own
	}
	return c
}

func (c agentCPU) minus(o agentCPU) agentCPU {
	return agentCPU{c.busy - o.busy, c.total - o.total, c.srv - o.srv, c.srvKids - o.srvKids, c.ag - o.ag, c.agKids - o.agKids}
}

func (c *agentCPU) add(o agentCPU) {
	c.busy, c.total, c.srv, c.srvKids = c.busy+o.busy, c.total+o.total, c.srv+o.srv, c.srvKids+o.srvKids
	c.ag, c.agKids = c.ag+o.ag, c.agKids+o.agKids
}

// perJob describes c as CPU milliseconds per job.
func (c agentCPU) perJob(jobs int) string {
	ms := func(ticks float64) string { return fmt.Sprintf("%.1f ms", ticks*10/float64(jobs)) }
	other := max(c.busy-c.srv-c.srvKids-c.ag-c.agKids, 0)
	busy := 0.0
	if c.total > 0 {
		busy = 100 * c.busy / c.total
	}
	return fmt.Sprintf("machine %.0f%% busy; CPU per job: server %s + its children (git) %s, agents %s + their children (steps) %s, everything else %s",
		busy, ms(c.srv), ms(c.srvKids), ms(c.ag), ms(c.agKids), ms(other))
}

// gaps returns to(j) - from(j) for every job.
func gaps(jobs []agentJob, from, to func(agentJob) time.Time) []time.Duration {
	out := make([]time.Duration, len(jobs))
	for i, j := range jobs {
		out[i] = to(j).Sub(from(j))
	}
	return out
}

func queuedAt(j agentJob) time.Time   { return j.queued }
func startedAt(j agentJob) time.Time  { return j.started }
func stepAt(j agentJob) time.Time     { return j.step }
func finishedAt(j agentJob) time.Time { return j.finished }

// idleRuns runs agentIdleRuns 1-job runs of r one at a time, agentIdlePause
// apart, so that every slot of every agent is in its long poll; it returns
// their jobs and the time from each post to seeing its run finished.
func (h *harness) idleRuns(srv *serverProc, c *http.Client, r dispatchRepo, stamps string, agents []*agentProc, seq *int64) ([]agentJob, []time.Duration) {
	var idle []agentJob
	var e2e []time.Duration
	for range agentIdleRuns {
		time.Sleep(agentIdlePause)
		*seq++
		run, took := h.runOnce(srv, c, r, *seq)
		idle = append(idle, h.agentJobs(stamps, agents, run)...)
		e2e = append(e2e, took)
		if h.verbose {
			j := idle[len(idle)-1]
			fmt.Fprintf(os.Stderr, "  run %d on %s: queued->leased %s, ->step %s, step->finished %s\n", run.Run.ID, j.agent,
				fmtDur(j.started.Sub(j.queued)), fmtDur(j.step.Sub(j.queued)), fmtDur(j.finished.Sub(j.step)))
		}
	}
	return idle, e2e
}

// throughputRounds runs h.n throughput rounds (see throughputRound) of r,
// agentIdlePause apart; it returns all their jobs, each round's wall time
// and the CPU the server and agents used during the rounds.
func (h *harness) throughputRounds(srv *serverProc, c *http.Client, r dispatchRepo, stamps string, agents []*agentProc, seq *int64) ([]agentJob, []time.Duration, agentCPU) {
	var all []agentJob
	var walls []time.Duration
	var cpu agentCPU
	for i := range h.n {
		time.Sleep(agentIdlePause)
		c0 := sampleAgentCPU(srv, agents)
		jobs, wall := h.throughputRound(srv, c, r, stamps, agents, seq)
		cpu.add(sampleAgentCPU(srv, agents).minus(c0))
		all = append(all, jobs...)
		walls = append(walls, wall)
		if h.verbose {
			fmt.Fprintf(os.Stderr, "  round %d: %d jobs in %s, queued->step p50 %s p90 %s\n", i+1, len(jobs), fmtDur(wall),
				fmtDur(percentile(gaps(jobs, queuedAt, stepAt), 50)), fmtDur(percentile(gaps(jobs, queuedAt, stepAt), 90)))
		}
	}
	return all, walls, cpu
}

// jobsPerAgent says how many of jobs each agent ran ("name count").
func jobsPerAgent(jobs []agentJob, agents []*agentProc) []string {
	perAgent := map[string]int{}
	for _, j := range jobs {
		perAgent[j.agent]++
	}
	var split []string
	for _, a := range agents {
		split = append(split, fmt.Sprintf("%s %d", a.name, perAgent[a.name]))
	}
	return split
}

// agentsThroughput: the real server (--workers 0: it runs nothing itself)
// and two real `conveyor agent` processes (capacity 4, host backend) on
// loopback. Idle: 1-job runs one at a time, ready -> running. Throughput:
// 10 pushes of a 20-job workflow at once, 200 jobs.
func agentsThroughput(h *harness) []row {
	// CONVEYOR_WORKERS=0 is --workers 0 (flags > env); the agents' jobs
	// are checked to have run on an agent (agentJobs), so a server that ran
	// them itself fails the case.
	srv := withEnv("CONVEYOR_WORKERS", "0", func() *serverProc { return h.startServer("agents") })
	defer srv.stop()
	agents := h.startAgents(srv)
	defer stopAgents(agents)
	stamps := srv.data + "-stamps"
	if err := os.MkdirAll(stamps, 0o755); err != nil {
		h.fail("%v", err)
	}
	one := h.dispatchRepo(srv, "octo/agent-one", stampWorkflow(1, stamps))
	many := h.dispatchRepo(srv, "octo/agent-many", stampWorkflow(agentJobsRun, stamps))
	c := hookClient(2)
	defer c.CloseIdleConnections()

	// Warm-up: the first event of a repository clones its mirror.
	h.runOnce(srv, c, one, 1)
	h.runOnce(srv, c, many, 2)
	seq := int64(10)

	idle, idleE2E := h.idleRuns(srv, c, one, stamps, agents, &seq)
	all, walls, cpu := h.throughputRounds(srv, c, many, stamps, agents, &seq)
	split := jobsPerAgent(all, agents)

	total := agentPushes * agentJobsRun
	ft := h.timings("sh -c true", func() time.Duration { return h.rawHost("true") },
		func() time.Duration { return h.parallelForks(total, agentCount*agentCapacity) })
	fork, forks := median(ft[0]), median(ft[1])

	iStep, iLease := gaps(idle, queuedAt, stepAt), gaps(idle, queuedAt, startedAt)
	iAgent, iEnd := gaps(idle, startedAt, stepAt), gaps(idle, stepAt, finishedAt)
	idleP50, leaseP50 := percentile(iStep, 50), percentile(iLease, 50)
	tStep, tLease := gaps(all, queuedAt, stepAt), gaps(all, queuedAt, startedAt)
	tAgent := gaps(all, startedAt, stepAt)
	wall := median(walls)
	rate := float64(total) / wall.Seconds()
	setup := fmt.Sprintf("`conveyor server --workers 0 --backend host` (SQLite) + %d `conveyor agent --capacity %d --backend host` on loopback", agentCount, agentCapacity)
	return []row{
		{name: "agents idle: ready -> step running", ours: fmtDur(idleP50), floor: fmtDur(fork) + " (sh)", ratio: fmtRatio(idleP50, fork),
			target: "< 50 ms", ok: okIf(idleP50 < 50*time.Millisecond),
			comment: fmt.Sprintf("p50 of %d 1-job runs, one at a time (%s apart), %s; job queued (API) to its bash step writing $EPOCHREALTIME on the agent; "+
				"p90 %s, min %s; of which leased -> step (agent: assignment, source tarball, sandbox, shell) p50 %s; step -> job finished (API) p50 %s; "+
				"webhook posted -> run seen finished p50 %s; floor: fork/exec of sh -c true",
				len(iStep), agentIdlePause, setup, fmtDur(percentile(iStep, 90)), fmtDur(percentile(iStep, 0)),
				fmtDur(percentile(iAgent, 50)), fmtDur(percentile(iEnd, 50)), fmtDur(percentile(idleE2E, 50)))},
		{name: "agents idle: ready -> leased", ours: fmtDur(leaseP50), floor: fmtDur(fork) + " (sh)", ratio: fmtRatio(leaseP50, fork),
			target: "< 50 ms", ok: okIf(leaseP50 < 50*time.Millisecond),
			comment: fmt.Sprintf("the same jobs, queued to started in GET /api/runs/{id} (the job's status becomes running when an agent's long poll leases it); p90 %s",
				fmtDur(percentile(iLease, 90)))},
		{name: "agents 200 jobs: ready -> step running", ours: fmtDur(percentile(tStep, 50)), floor: fmtDur(fork) + " (sh)", ratio: fmtRatio(percentile(tStep, 50), fork),
			target: "-", ok: "-",
			comment: fmt.Sprintf("p50 of all %d jobs of %d round(s) of %d pushes x %d independent 1-step jobs posted at once; p90 %s; "+
				"queued -> leased p50 %s, p90 %s (jobs wait for a free slot: 200 jobs, %d slots); leased -> step p50 %s, p90 %s",
				len(tStep), len(walls), agentPushes, agentJobsRun, fmtDur(percentile(tStep, 90)),
				fmtDur(percentile(tLease, 50)), fmtDur(percentile(tLease, 90)), agentCount*agentCapacity,
				fmtDur(percentile(tAgent, 50)), fmtDur(percentile(tAgent, 90)))},
		{name: "agents 200 jobs: wall", ours: fmtDur(wall), floor: fmtDur(forks) + " (200 sh)", ratio: fmtRatio(wall, forks),
			target: "-", ok: "-",
			comment: fmt.Sprintf("first webhook posted -> last job finished (server's time), median of %d round(s) (%s); jobs per agent %s; "+
				"over the rounds (with the harness polling the API every 50 ms): %s; floor: 200 fork/execs of sh -c true, %d at a time",
				len(walls), durList(walls), strings.Join(split, ", "), cpu.perJob(len(all)), agentCount*agentCapacity)},
		{name: "agents 200 jobs: rate", ours: fmt.Sprintf("%.1f jobs/s", rate), floor: fmt.Sprintf("%.0f/s (sh)", float64(total)/forks.Seconds()),
			ratio: fmt.Sprintf("%.3fx", rate/(float64(total)/forks.Seconds())), target: "-", ok: "-",
			comment: "200 / the median wall time"},
	}
}

func durList(ds []time.Duration) string {
	var b bytes.Buffer
	for i, d := range ds {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(fmtDur(d))
	}
	return b.String()
}
