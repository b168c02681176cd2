package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDefaultDataFoldersRunHostJobs starts the real server and agent as a
// new user does: from a fresh working directory with the default --data
// (conveyor-data, conveyor-agent-data: relative) and --backend host. A
// job on the server's own workers and one on the agent must succeed, and
// the folders must be where the user started them.
func TestDefaultDataFoldersRunHostJobs(t *testing.T) {
	skipShort(t)
	const secret = "defaults-secret"
	flow := `on: push
jobs:
  here:
    runs-on: ubuntu-latest
    steps:
      - run: echo "ran in $PWD"
  there:
    runs-on: [self-hosted, defaults-agent]
    steps:
      - run: echo "agent ran in $PWD"
`
	g := newGitRepo(t, map[string]string{".github/workflows/ci.yml": flow})
	sha := g.git("rev-parse", "HEAD")
	serverCwd, agentCwd := t.TempDir(), t.TempDir()
	s := startProcIn(t, "server", serverCwd, nil, "server", "--listen", "127.0.0.1:0", "--backend", "host", "--allow-file-urls", "--poll", "100ms")
	var url, token string
	waitFor(t, 30*time.Second, "the server's URL and admin token", func() bool {
		if !s.running() {
			t.Fatalf("server exited at start (%v):\n%s%s", s.err, s.stdout(), s.stderr())
		}
		m, tm := listenLine.FindStringSubmatch(s.stdout()), tokenLine.FindStringSubmatch(s.stdout())
		if m == nil || tm == nil {
			return false
		}
		url, token = m[1], tm[1]
		return true
	})
	c := client{t: t, url: url, token: token}
	_, agentToken := createAgentAPI(t, c, "defaults", "defaults-agent")
	a := startProcIn(t, "agent", agentCwd, []string{"CONVEYOR_AGENT_TOKEN=" + agentToken}, "agent", "--server", url, "--backend", "host", "--labels", "defaults-agent")
	waitFor(t, 30*time.Second, "the agent registered", func() bool {
		if !a.running() {
			t.Fatalf("agent exited at start (%v):\n%s", a.err, a.stderr())
		}
		return strings.Contains(a.stderr(), `msg="agent registered"`)
	}, func() string { return a.stderr() })

	repoID := c.addRepo(g.dir, secret)
	if code, b, err := hook(url, repoID, secret, "push", "defaults-1", pushBody(g.dir, "main", sha, "go")); err != nil || code != http.StatusAccepted {
		t.Fatalf("push: %d %s %v", code, b, err)
	}
	runs := c.waitRuns(1, 90*time.Second)
	d := c.run(runs[0].ID)
	for _, j := range []struct{ key, want string }{
		{"here", "ran in " + filepath.Join(serverCwd, "conveyor-data")},
		{"there", "agent ran in " + filepath.Join(agentCwd, "conveyor-agent-data")},
	} {
		job := d.job(j.key)
		l := c.text(fmt.Sprintf("/api/runs/%d/jobs/%s/logs", runs[0].ID, j.key))
		if job.Status != "success" || !strings.Contains(l, j.want) {
			t.Errorf("job %s: %s %s, want success with %q in its log:\n%s", j.key, job.Status, job.Error, j.want, l)
		}
	}
	for _, dir := range []string{filepath.Join(serverCwd, "conveyor-data", "conveyor.db"), filepath.Join(agentCwd, "conveyor-agent-data")} {
		if _, err := os.Stat(dir); err != nil {
			t.Errorf("default data folder: %v", err)
		}
	}
}
