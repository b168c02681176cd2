package e2e

import (
	"bufio"
	"bytes"
	"context"
	dbsql "database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, to read a live server's leases
)

var (
	agentTokenLine = regexp.MustCompile(`(?m)^agent token \(shown once, stored hashed\): (\S+)$`)
	agentIDLine    = regexp.MustCompile(`(?m)^agent (\d+): `)
)

// startProc starts a long-lived conveyor process (args after the binary)
// with its output in files, killed and checked for data races when t
// ends, like startServer.
func startProc(t *testing.T, name string, env []string, args ...string) *serverProc {
	t.Helper()
	return startProcIn(t, name, "", env, args...)
}

// startProcIn is startProc with dir as the working directory ("": this one).
func startProcIn(t *testing.T, name, dir string, env []string, args ...string) *serverProc {
	t.Helper()
	p := &serverProc{t: t, name: name, done: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(cleanEnv(), env...)
	logs := t.TempDir()
	p.stdoutFile, p.stderrFile = filepath.Join(logs, "stdout"), filepath.Join(logs, "stderr")
	for _, f := range []struct {
		path string
		to   *io.Writer
	}{{p.stdoutFile, &p.cmd.Stdout}, {p.stderrFile, &p.cmd.Stderr}} {
		out, err := os.Create(f.path)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		*f.to = out
	}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.running() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if i := strings.Index(p.stderr(), "WARNING: DATA RACE"); i >= 0 {
			t.Errorf("%s: data race:\n%s", name, p.stderr()[i:])
		}
		if t.Failed() {
			t.Logf("--- %s stdout:\n%s--- %s stderr (last lines):\n%s", name, p.stdout(), name, tail(p.stderr(), 80))
		}
	})
	return p
}

// startAgent starts `conveyor agent` with an agent token on the host
// backend and waits until it has registered.
func startAgent(t *testing.T, name, server, token, data string, args ...string) *serverProc {
	t.Helper()
	all := append([]string{"agent", "--server", server, "--backend", "host", "--data", data, "--log-level", "debug"}, args...)
	p := startProc(t, name, []string{"CONVEYOR_AGENT_TOKEN=" + token}, all...)
	waitFor(t, 20*time.Second, name+" registered", func() bool {
		if !p.running() {
			t.Fatalf("%s exited at start (%v):\n%s%s", name, p.err, p.stdout(), p.stderr())
		}
		return strings.Contains(p.stderr(), `msg="agent registered"`)
	}, func() string { return p.stderr() })
	return p
}

// createAgentCLI makes an agent with `conveyor agent-token create`; it
// returns its id and token.
func createAgentCLI(t *testing.T, c client, name, labels string) (int64, string) {
	t.Helper()
	cmd := exec.Command(binary, "agent-token", "create", "--name", name, "--labels", labels, "--server", c.url, "--token", c.token)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("agent-token create: %v\n%s", err, out)
	}
	tok, id := agentTokenLine.FindSubmatch(out), agentIDLine.FindSubmatch(out)
	if tok == nil || id == nil || !bytes.HasPrefix(tok[1], []byte("cva_")) {
		t.Fatalf("agent-token create printed no agent id and token:\n%s", out)
	}
	n, _ := strconv.ParseInt(string(id[1]), 10, 64)
	return n, string(tok[1])
}

// createAgentAPI makes an agent with POST /api/agents.
func createAgentAPI(t *testing.T, c client, name string, labels ...string) (int64, string) {
	t.Helper()
	var out struct {
		Agent struct {
			ID int64 `json:"id"`
		} `json:"agent"`
		Token string `json:"token"`
	}
	c.do("POST", "/api/agents", map[string]any{"name": name, "labels": labels}, http.StatusCreated, &out)
	if out.Agent.ID == 0 || out.Token == "" {
		t.Fatalf("POST /api/agents: %+v", out)
	}
	return out.Agent.ID, out.Token
}

type apiAgent struct {
	ID     int64    `json:"id"`
	Name   string   `json:"name"`
	Labels []string `json:"labels"`
	State  string   `json:"state"`
	Jobs   []struct {
		ID      int64  `json:"id"`
		RunID   int64  `json:"run_id"`
		Key     string `json:"key"`
		Attempt int    `json:"attempt"`
	} `json:"jobs"`
}

func (c client) agents() map[int64]apiAgent {
	c.t.Helper()
	var out struct {
		Agents []apiAgent `json:"agents"`
	}
	c.do("GET", "/api/agents", nil, http.StatusOK, &out)
	m := map[int64]apiAgent{}
	for _, a := range out.Agents {
		m[a.ID] = a
	}
	return m
}

// agentCall makes one agent-protocol call with an agent token and a
// fencing token; it returns the status and body.
func agentCall(t *testing.T, base, token, path string, lease int64, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Conveyor-Lease-Token", strconv.FormatInt(lease, 10))
	if json.Valid(body) {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// liveLease reads a job's lease owner and fencing token from the SQLite
// database of a running server (WAL: a reader does not disturb it). The
// API does not show fencing tokens; the test needs the one an agent held
// to replay that agent's late report.
func liveLease(t *testing.T, dbPath string, jobID int64) (string, int64) {
	t.Helper()
	db, err := dbsql.Open("sqlite", dbPath+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var owner string
	var token int64
	if err := db.QueryRowContext(ctx, `SELECT lease_owner, lease_token FROM jobs WHERE id = ?`, jobID).Scan(&owner, &token); err != nil {
		t.Fatalf("reading the lease of job %d: %v", jobID, err)
	}
	return owner, token
}

// readJobLines parses "<key> <pwd>" lines (jobLine) into pwds by key.
func readJobLines(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	out := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, dir, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			t.Fatalf("%s: bad line %q", path, sc.Text())
		}
		out[key] = append(out[key], dir)
	}
	return out
}

func within(path, dir string) bool { return strings.HasPrefix(path, dir+string(filepath.Separator)) }

// labelsFlow: jobs for alpha (A or B), for beta (only B) and for gpu (no
// agent); each records the job folder it ran in, which names the agent.
func agentLabelsFlow(jobsFile string) string {
	var b strings.Builder
	b.WriteString("name: labels\non: push\njobs:\n")
	job := func(key, labels string) {
		fmt.Fprintf(&b, "  %s:\n    runs-on: [%s]\n    steps:\n      - run: |\n%s\n", key, labels, indent(jobLine(jobsFile, key), 10))
	}
	for i := 1; i <= 4; i++ {
		job(fmt.Sprintf("alpha-%d", i), "self-hosted, alpha")
	}
	job("beta-1", "self-hosted, beta")
	job("beta-2", "self-hosted, beta")
	job("gpu", "self-hosted, gpu")
	return b.String()
}

// longStep is how long the job killed mid-way sleeps between its marks.
const longStep = 5 * time.Second

func agentLongFlow(marks string) string {
	return `name: long
on: workflow_dispatch
jobs:
  long:
    runs-on: [self-hosted, alpha]
    steps:
      - run: |
` + indent(markStep(marks, "long", strconv.Itoa(int(longStep/time.Second))), 10) + "\n"
}

// TestAgentsRealProcesses runs a server without workers of its own and
// two real `conveyor agent` processes on loopback:
//   - kill -9 of agent B while it runs a job: the job's step dies with
//     it, the lease expires, the job is re-queued to agent A and completes
//     there exactly once (attempt 2, the interrupted attempt "agent lost");
//     B restarted with the same token reports nothing for it, and B's late
//     calls with its old fencing token are refused (409);
//   - jobs go only to agents with their labels (beta only on B, alpha on
//     either); a job no agent can take stays queued with a waiting reason.
func TestAgentsRealProcesses(t *testing.T) {
	skipShort(t)
	t.Parallel()
	tmp := t.TempDir()
	data, dataA, dataB := filepath.Join(tmp, "server"), filepath.Join(tmp, "agent-a"), filepath.Join(tmp, "agent-b")
	marks, jobsFile := filepath.Join(tmp, "marks.txt"), filepath.Join(tmp, "jobs.txt")
	killStrays(t, marks, dataA, dataB)
	const secret = "agents-secret"
	g := newGitRepo(t, map[string]string{
		".github/workflows/labels.yml": agentLabelsFlow(jobsFile),
		".github/workflows/long.yml":   agentLongFlow(marks),
	})
	s := startServer(t, "server", data, true, "--workers", "0", "--lease-ttl", leaseTTL.String(), "--poll", "100ms")
	c := client{t: t, url: s.url, token: s.token}
	repoID := c.addRepo(g.dir, secret)
	idA, tokA := createAgentCLI(t, c, "agent-a", "alpha")
	idB, tokB := createAgentAPI(t, c, "agent-b", "beta", "alpha")
	ownerB := fmt.Sprintf("agent:%d", idB)

	// B alone takes the long job; A starts once B runs it.
	b1 := startAgent(t, "agent-b", s.url, tokB, dataB, "--capacity", "2", "--labels", "beta,alpha")
	var ev struct {
		EventID int64 `json:"event_id"`
	}
	c.do("POST", fmt.Sprintf("/api/repos/%d/dispatch", repoID), map[string]string{"workflow": "long.yml"}, http.StatusAccepted, &ev)
	var onB apiAgent
	waitFor(t, 30*time.Second, "agent B to run the long job", func() bool {
		onB = c.agents()[idB]
		return len(onB.Jobs) == 1 && countStarts(t, marks) == 1
	}, func() string { return fmt.Sprintf("agent B: %+v; marks: %v", onB, readAttempts(t, marks)) })
	jobID, longRun := onB.Jobs[0].ID, onB.Jobs[0].RunID
	owner, leaseB := liveLease(t, filepath.Join(data, "conveyor.db"), jobID)
	if owner != ownerB || onB.State != "busy" || onB.Jobs[0].Key != "long" {
		t.Fatalf("long job %d: lease owner %q (want %s), agent B %+v", jobID, owner, ownerB, onB)
	}
	a := startAgent(t, "agent-a", s.url, tokA, dataA, "--capacity", "2", "--labels", "alpha")
	list := c.agents()
	if la, lb := list[idA], list[idB]; !slices.Contains(la.Labels, "alpha") || slices.Contains(la.Labels, "beta") ||
		!slices.Contains(lb.Labels, "beta") || len(la.Jobs) != 0 || len(lb.Jobs) != 1 || lb.Jobs[0].ID != jobID {
		t.Fatalf("agents before the kill: A %+v, B %+v", la, lb)
	}
	first := readAttempts(t, marks)["long"][0]
	if !within(first.dir, dataB) || !first.end.IsZero() || !first.under(b1.pid()) {
		t.Fatalf("the long job's first attempt %v: want it running under agent B (pid %d) in %s", first, b1.pid(), dataB)
	}

	killed := b1.kill9()
	t.Logf("killed agent B %.2fs into the long job's step", killed.Sub(first.start).Seconds())
	// The step dies with the agent: the out-of-process runner sees its
	// input close and kills the job's process groups.
	deadline := time.Now().Add(3 * time.Second)
	for alive(first.pid) && time.Now().Before(deadline) {
		time.Sleep(25 * time.Millisecond)
	}
	if alive(first.pid) {
		t.Errorf("the step of the long job (process group %d, in %s) is still running 3 s after agent B was killed with SIGKILL: "+
			"the agent's host backend does not stop steps when the agent dies", first.pid, first.dir)
	}

	var long apiJob
	waitFor(t, 60*time.Second, "the long job to finish after the kill", func() bool {
		long = c.run(longRun).job("long")
		return terminal(long.Status)
	}, func() string { return fmt.Sprintf("job: %+v; agents %+v", long, c.agents()) })
	t.Logf("the long job finished %.2fs after the kill", time.Since(killed).Seconds())
	if long.Status != "success" || long.Attempt != 2 || len(long.Interrupted) != 1 {
		t.Errorf("long job: %s attempt %d interrupted %+v; want success at attempt 2 after one interrupted attempt", long.Status, long.Attempt, long.Interrupted)
	} else if ia := long.Interrupted[0]; ia.Attempt != 1 || ia.Worker != ownerB || !strings.HasPrefix(ia.Reason, "agent lost") {
		t.Errorf("interrupted attempt %+v: want attempt 1 of %s, reason starting \"agent lost\"", ia, ownerB)
	}
	attempts := readAttempts(t, marks)["long"]
	if len(attempts) != 2 {
		t.Fatalf("the long job's step ran %d times, want twice (on B, cut; on A): %v", len(attempts), attempts)
	}
	if cut := attempts[0]; cut.pid != first.pid || !cut.end.IsZero() {
		t.Errorf("agent B's attempt %v ran on to its end after B was killed at %s", cut, killed.Format("15:04:05.000"))
	}
	if re := attempts[1]; !within(re.dir, dataA) || !re.under(a.pid()) || re.end.IsZero() || re.start.Before(killed) {
		t.Errorf("re-run %v: want it on agent A (pid %d, in %s), started after the kill and ended", re, a.pid(), dataA)
	}
	if l := c.text(fmt.Sprintf("/api/runs/%d/jobs/long/logs", longRun)); !strings.Contains(l, "working on long in "+dataA) {
		t.Errorf("the long job's log does not show the run on agent A:\n%s", l)
	}

	// B comes back with the same token: it has nothing to report, and its
	// late calls with the old fencing token are refused.
	b2 := startAgent(t, "agent-b (restarted)", s.url, tokB, dataB, "--capacity", "2", "--labels", "beta,alpha")
	for _, call := range []struct {
		path string
		body []byte
	}{
		{"heartbeat", nil},
		{"logs", []byte("late line from the killed agent B\n")},
		{"complete", []byte(`{"status":"failure","error":"late report"}`)},
	} {
		code, body := agentCall(t, s.url, tokB, fmt.Sprintf("/api/agent/jobs/%d/%s", jobID, call.path), leaseB, call.body)
		if code != http.StatusConflict || !strings.Contains(body, "stale") {
			t.Errorf("agent B's late %s with its old lease %d: %d %s; want 409 stale", call.path, leaseB, code, body)
		}
	}
	if j := c.run(longRun).job("long"); j.Status != "success" || j.Attempt != 2 || len(j.Interrupted) != 1 {
		t.Errorf("the late report changed the job: %+v", j)
	}
	if l := c.text(fmt.Sprintf("/api/runs/%d/jobs/long/logs", longRun)); strings.Contains(l, "late line") {
		t.Errorf("a refused log chunk is in the job's log:\n%s", l)
	}

	// Labels: a push runs alpha jobs on either agent, beta jobs on B only;
	// the gpu job waits with a reason.
	sha := g.git("rev-parse", "HEAD")
	if code, body, err := hook(s.url, repoID, secret, "push", "agents-1", pushBody(g.dir, "main", sha, "labels")); err != nil || code != http.StatusAccepted {
		t.Fatalf("push: %d %s %v", code, body, err)
	}
	var d apiRunDetail
	waitFor(t, 30*time.Second, "the alpha and beta jobs to finish", func() bool {
		for _, r := range c.runs() {
			if r.ID != longRun {
				d = c.run(r.ID)
			}
		}
		if len(d.Jobs) != 7 {
			return false
		}
		for _, j := range d.Jobs {
			if j.Key != "gpu" && !terminal(j.Status) {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("run: %+v", d) })
	ran := readJobLines(t, jobsFile)
	onA := 0
	for _, j := range d.Jobs {
		if j.Key == "gpu" {
			if j.Status != "queued" || !strings.Contains(j.WaitingReason, "gpu") {
				t.Errorf("gpu job: %s, waiting reason %q; want queued with a reason naming gpu", j.Status, j.WaitingReason)
			}
			if len(ran[j.Key]) != 0 {
				t.Errorf("the gpu job ran: %v", ran[j.Key])
			}
			t.Logf("gpu job: %s, %q", j.Status, j.WaitingReason)
			continue
		}
		if j.Status != "success" || j.WaitingReason != "" {
			t.Errorf("job %s: %s %q", j.Key, j.Status, j.WaitingReason)
		}
		dirs := ran[j.Key]
		if len(dirs) != 1 {
			t.Errorf("job %s ran %d times: %v", j.Key, len(dirs), dirs)
			continue
		}
		switch {
		case strings.HasPrefix(j.Key, "beta") && !within(dirs[0], dataB):
			t.Errorf("beta job %s ran in %s, not on agent B (%s)", j.Key, dirs[0], dataB)
		case !within(dirs[0], dataA) && !within(dirs[0], dataB):
			t.Errorf("job %s ran in %s, on neither agent", j.Key, dirs[0])
		case within(dirs[0], dataA):
			onA++
		}
	}
	t.Logf("alpha jobs on agent A: %d of 4", onA)
	c.do("POST", fmt.Sprintf("/api/runs/%d/cancel", d.Run.ID), nil, http.StatusOK, nil)

	// The restarted B never heard of the moved job; the killed attempt
	// never reached its end.
	if re := regexp.MustCompile(fmt.Sprintf(`\bjob=%d\b`, jobID)); re.MatchString(b2.stderr()) {
		t.Errorf("the restarted agent B mentions job %d:\n%s", jobID, b2.stderr())
	}
	if as := readAttempts(t, marks)["long"]; len(as) != 2 || !as[0].end.IsZero() {
		t.Errorf("the long job's attempts at the end: %v", as)
	}
}
