package e2e

import (
	"cmp"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// quotaJob records its sandbox's start and end (nanoseconds of this
// machine's clock) and its folder, which names who ran it.
func quotaJob(file, key string) string {
	return fmt.Sprintf(`echo "start $(date +%%s%%N) %[2]s $PWD" >> '%[1]s'
sleep 0.6
echo "end $(date +%%s%%N) %[2]s" >> '%[1]s'`, file, key)
}

func quotaFlow(file string) string {
	var b strings.Builder
	b.WriteString("name: quota\non: push\njobs:\n")
	for i := 1; i <= 4; i++ {
		fmt.Fprintf(&b, "  r%d:\n    runs-on: ubuntu-latest\n    steps:\n      - run: |\n%s\n", i,
			indent(quotaJob(file, fmt.Sprintf("${{ github.run_id }}-r%d", i)), 10))
		fmt.Fprintf(&b, "  g%d:\n    runs-on: [self-hosted, alpha]\n    steps:\n      - run: |\n%s\n", i,
			indent(quotaJob(file, fmt.Sprintf("${{ github.run_id }}-g%d", i)), 10))
	}
	return b.String()
}

// conveyorCLI runs the conveyor binary against a server.
func conveyorCLI(t *testing.T, url, token string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, append(args, "--server", url, "--token", token)...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("conveyor %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestQuotaTwoReplicasAndAgentPostgres: an organisation's maximum of
// concurrent jobs holds across two server replicas on one PostgreSQL
// database and an agent, all leasing at once: the jobs' own records of
// their sandboxes never overlap more than the maximum. Jobs held back are
// shown as queued: quota (API and conveyor run show), and every job's
// sandbox time, on replicas and the agent, is metered (conveyor usage).
func TestQuotaTwoReplicasAndAgentPostgres(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dsn := freshSchema(t)
	tmp := t.TempDir()
	data1, data2, dataA := filepath.Join(tmp, "r1"), filepath.Join(tmp, "r2"), filepath.Join(tmp, "agent")
	jobsFile := filepath.Join(tmp, "jobs.txt")
	const secret, limit, pushes = "quota-secret", 2, 2
	g := newGitRepo(t, map[string]string{".github/workflows/quota.yml": quotaFlow(jobsFile), "n.txt": "0"})
	shas := []string{g.git("rev-parse", "HEAD"), g.commit("change", map[string]string{"n.txt": "1"})}

	// One key for both replicas: each seals and opens the repository's credentials.
	flags := []string{"--database", dsn, "--lease-ttl", leaseTTL.String(), "--poll", "100ms", "--workers", "4",
		"--secret-key-file", filepath.Join(tmp, "secret.key")}
	r1 := startServer(t, "r1", data1, true, append([]string{"--replica", "r1"}, flags...)...)
	r2 := startServer(t, "r2", data2, false, append([]string{"--replica", "r2"}, flags...)...)
	c := client{t: t, url: r1.url, token: r1.token}
	repoID := c.addRepo(g.dir, secret)
	_, tok := createAgentAPI(t, c, "agent-q", "alpha")
	startAgent(t, "agent-q", r2.url, tok, dataA, "--capacity", "4", "--labels", "alpha")
	if out := conveyorCLI(t, r1.url, r1.token, "quota", "set", "--max-jobs", fmt.Sprint(limit)); !strings.Contains(out, "concurrent jobs:       2 at most") {
		t.Fatalf("quota set: %s", out)
	}

	var wg sync.WaitGroup
	for i, sha := range shas {
		wg.Go(func() {
			to := []*serverProc{r1, r2}[i%2]
			code, body, err := hook(to.url, repoID, secret, "push", fmt.Sprintf("quota-%d", i), pushBody(g.dir, "main", sha, "change"))
			if err != nil || code != http.StatusAccepted {
				t.Errorf("push %d to %s: %d %s %v", i, to.name, code, body, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// Jobs held back by the quota say so, in the API and in run show.
	type job struct {
		Key          string  `json:"key"`
		Status       string  `json:"status"`
		Queue        string  `json:"queue"`
		BuildSeconds float64 `json:"build_seconds"`
	}
	var detail struct {
		Jobs []job `json:"jobs"`
	}
	sawAPI, sawCLI := false, false
	waitFor(t, 60*time.Second, "a job shown as queued: quota", func() bool {
		for _, r := range c.runs() {
			c.do("GET", fmt.Sprintf("/api/runs/%d", r.ID), nil, http.StatusOK, &detail)
			if slices.ContainsFunc(detail.Jobs, func(j job) bool { return j.Status == "queued" && j.Queue == "quota" }) {
				sawAPI = true
				sawCLI = sawCLI || strings.Contains(conveyorCLI(t, r2.url, r1.token, "run", "show", fmt.Sprint(r.ID)), "queued: quota")
			}
		}
		return sawAPI && sawCLI
	})
	runs := c.waitRuns(pushes, 120*time.Second)

	// Every job ran once; at no moment did more than the limit run.
	b, err := os.ReadFile(jobsFile)
	if err != nil {
		t.Fatal(err)
	}
	type edge struct {
		at    int64
		delta int
	}
	var edges []edge
	where := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		var at int64
		fmt.Sscan(f[1], &at)
		switch f[0] {
		case "start":
			edges = append(edges, edge{at, +1})
			if _, dup := where[f[2]]; dup {
				t.Errorf("job %s ran twice", f[2])
			}
			where[f[2]] = f[3]
		case "end":
			edges = append(edges, edge{at, -1})
		}
	}
	slices.SortFunc(edges, func(a, b edge) int {
		return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.delta, b.delta)) // an end before a start at the same instant
	})
	running, peak := 0, 0
	for _, e := range edges {
		running += e.delta
		peak = max(peak, running)
	}
	if peak > limit {
		t.Errorf("%d jobs ran at once across two replicas and an agent; the organisation's maximum is %d", peak, limit)
	}
	onAgent := 0
	for key, dir := range where {
		if within(dir, dataA) != strings.Contains(key, "-g") {
			t.Errorf("job %s ran in %s", key, dir)
		}
		if within(dir, dataA) {
			onAgent++
		}
	}
	if len(where) != 8*pushes || onAgent != 4*pushes {
		t.Fatalf("%d jobs ran (%d on the agent), want %d (%d)", len(where), onAgent, 8*pushes, 4*pushes)
	}
	t.Logf("peak %d jobs at once (limit %d)", peak, limit)

	// Metering: every job's sandbox time, at least its 0.6 s sleep, adds up.
	var sum float64
	for _, r := range runs {
		if r.Status != "success" {
			t.Errorf("run %d: %s %s", r.ID, r.Status, r.Error)
		}
		c.do("GET", fmt.Sprintf("/api/runs/%d", r.ID), nil, http.StatusOK, &detail)
		for _, j := range detail.Jobs {
			if j.BuildSeconds < 0.6 {
				t.Errorf("run %d job %s: %.3f build seconds metered, less than its sleep", r.ID, j.Key, j.BuildSeconds)
			}
			sum += j.BuildSeconds
		}
	}
	var usage struct {
		BuildSeconds float64 `json:"build_seconds"`
		Jobs         int64   `json:"jobs"`
	}
	c.do("GET", "/api/usage", nil, http.StatusOK, &usage)
	if usage.Jobs != 8*pushes || fmt.Sprintf("%.3f", usage.BuildSeconds) != fmt.Sprintf("%.3f", sum) {
		t.Errorf("usage %+v, want %d jobs and %.3f s (the jobs' sum)", usage, 8*pushes, sum)
	}
	if out := conveyorCLI(t, r2.url, r1.token, "usage"); !strings.Contains(out, fmt.Sprintf("over %d jobs", 8*pushes)) {
		t.Errorf("conveyor usage: %s", out)
	}
}
