package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/secrets"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// TestGracefulStop sends SIGTERM while a job runs: the server stops the
// job's processes and exits 0 within seconds; the job is left to lease
// expiry, and after a restart it is re-run (attempt 2, the interrupted
// attempt recorded with its reason) and the run succeeds.
func TestGracefulStop(t *testing.T) {
	skipShort(t)
	t.Parallel()
	data := t.TempDir()
	tmp := t.TempDir()
	marks, again := filepath.Join(tmp, "marks.txt"), filepath.Join(tmp, "again")
	killStrays(t, marks, data)
	// The first attempt sleeps until it is stopped; the re-run is quick.
	flow := `on: push
jobs:
  long:
    runs-on: ubuntu-latest
    steps:
      - run: |
          if [ -e '` + again + `' ]; then
` + indent(markStep(marks, "${{ github.run_id }}-long", "0.1"), 12) + `
            exit 0
          fi
          touch '` + again + `'
` + indent(markStep(marks, "${{ github.run_id }}-long", "60"), 10) + `
  after:
    needs: long
    runs-on: ubuntu-latest
    steps:
      - run: echo "after ${{ needs.long.result }}"
`
	const secret = "stop-secret"
	g := newGitRepo(t, map[string]string{".github/workflows/stop.yml": flow})
	sha := g.git("rev-parse", "HEAD")
	flags := []string{"--lease-ttl", leaseTTL.String(), "--poll", "100ms"}
	s1 := startServer(t, "first", data, true, append([]string{"--replica", "first"}, flags...)...)
	c := client{t: t, url: s1.url, token: s1.token}
	repoID := c.addRepo(g.dir, secret)
	if code, body, err := hook(s1.url, repoID, secret, "push", "stop-1", pushBody(g.dir, "main", sha, "go")); err != nil || code != http.StatusAccepted {
		t.Fatalf("push: %d %s %v", code, body, err)
	}
	waitFor(t, 30*time.Second, "job long to start", func() bool { return countStarts(t, marks) == 1 })

	code, took := s1.stop(10 * time.Second)
	stopped := time.Now()
	t.Logf("SIGTERM with a job running: exit %d after %s", code, took.Round(time.Millisecond))
	if code != 0 || took > 5*time.Second {
		t.Errorf("SIGTERM: exit %d after %s, want 0 within 5 s", code, took)
	}
	if !strings.Contains(s1.stderr(), "left to lease expiry") {
		t.Errorf("the server did not say it left the job to lease expiry:\n%s", tail(s1.stderr(), 30))
	}
	var first *attempt
	for _, as := range readAttempts(t, marks) {
		first = as[0]
	}
	if alive(first.pid) {
		t.Errorf("the step of the stopped job (process group %d) is still running after the server exited", first.pid)
	}
	var leases leaseSnapshot
	inspect(t, filepath.Join(data, "conveyor.db"), filepath.Join(data, secrets.KeyFileName), func(st store.Store, org int64) { leases = runningLeases(t, st, org) })
	if len(leases) != 1 {
		t.Fatalf("after SIGTERM the database holds %d running jobs, want the stopped one: %v", len(leases), leases)
	}

	s2 := startServer(t, "second", data, false, append([]string{"--replica", "second"}, flags...)...)
	c = client{t: t, url: s2.url, token: s1.token}
	runs := c.waitRuns(1, 30*time.Second)
	d := c.run(runs[0].ID)
	if d.Run.Status != "success" {
		t.Fatalf("run after the restart: %s %s; jobs %+v", d.Run.Status, d.Run.Error, d.Jobs)
	}
	long, key := d.job("long"), fmt.Sprintf("%d-long", d.Run.ID)
	lease := leases[key]
	if lease == nil {
		t.Fatalf("the running job was %v, not %s", leases, key)
	}
	if long.Status != "success" || long.Attempt != 2 || len(long.Interrupted) != 1 {
		t.Fatalf("job long: %s attempt %d interrupted %+v; want success at attempt 2 after one interrupted attempt", long.Status, long.Attempt, long.Interrupted)
	}
	if ia := long.Interrupted[0]; ia.Attempt != 1 || ia.Worker != "first" || !strings.Contains(ia.Reason, "lease expired") {
		t.Errorf("interrupted attempt: %+v", ia)
	}
	if after := d.job("after"); after.Status != "success" || after.Attempt != 1 || len(after.Interrupted) != 0 {
		t.Errorf("job after: %+v", after)
	}
	as := readAttempts(t, marks)[key]
	if len(as) != 2 {
		t.Fatalf("job long ran %d times, want 2: %+v", len(as), as)
	}
	if !as[0].end.IsZero() {
		t.Errorf("the stopped attempt ran on to its end at %s (the server stopped at %s)", as[0].end, stopped)
	}
	if r := as[1]; r.end.IsZero() || r.start.Before(lease.LeaseExpires) {
		t.Errorf("re-run %+v: want it ended, started after the lease expired (%s)", r, lease.LeaseExpires)
	}
	log := c.text(fmt.Sprintf("/api/runs/%d/jobs/long/logs", d.Run.ID))
	if n := strings.Count(log, "working on "+key); n != 2 {
		t.Errorf("the job's log shows %d attempts, want both:\n%s", n, log)
	}
}
