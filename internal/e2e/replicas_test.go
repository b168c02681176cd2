package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/secrets"
	"github.com/conveyor-ci/conveyor/internal/store"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// freshSchema makes an empty schema in the test PostgreSQL, dropped when t
// ends (after the servers, whose cleanups run first), and returns its DSN.
func freshSchema(t *testing.T) string { return testenv.PostgresSchema(t, "e2e") }

// jobLine records which job ran where: "<run>-<job> <pwd>".
func jobLine(file, key string) string {
	return fmt.Sprintf(`echo "job %[2]s on $PWD"
echo "%[2]s $PWD" >> '%[1]s'
sleep 0.3`, file, key)
}

var jobFinished = regexp.MustCompile(`msg="job finished" run=(\d+) job=(\S+)`)

// TestTwoReplicasPostgres runs two replicas on one PostgreSQL schema:
//   - webhooks sent to either are run; every job runs exactly once (the
//     jobs record themselves in a shared file, their working directory
//     naming the replica) and both replicas do some of the work;
//   - runs, jobs and logs of work done by r1 are read from r2, and r2
//     follows the log of a job running on r1 live over SSE;
//   - kill -9 of r1 while it runs jobs: their steps die with r1, r2
//     re-runs them after their leases expire and the run succeeds.
func TestTwoReplicasPostgres(t *testing.T) {
	skipShort(t)
	t.Parallel()
	dsn := freshSchema(t)
	tmp := t.TempDir()
	data1, data2 := filepath.Join(tmp, "r1"), filepath.Join(tmp, "r2")
	jobsFile, marks := filepath.Join(tmp, "jobs.txt"), filepath.Join(tmp, "marks.txt")
	killStrays(t, marks, data1, data2)
	// Workers per replica: several, so that both lease in bursts at once.
	const secret, pushes, workers = "replica-secret", 10, 4

	ci := "on:\n  push:\n    branches: [main]\njobs:\n"
	for _, j := range []struct{ key, needs string }{{"a", ""}, {"b", "a"}, {"c", ""}} {
		ci += "  " + j.key + ":\n    runs-on: ubuntu-latest\n"
		if j.needs != "" {
			ci += "    needs: " + j.needs + "\n"
		}
		ci += "    steps:\n      - run: |\n" + indent(jobLine(jobsFile, "${{ github.run_id }}-"+j.key), 10) + "\n"
	}
	long := "on:\n  push:\n    branches: [long]\njobs:\n"
	var longKeys []string
	for i := 1; i <= 2*workers; i++ {
		longKeys = append(longKeys, fmt.Sprintf("l%d", i))
		long += fmt.Sprintf("  l%d:\n    runs-on: ubuntu-latest\n    steps:\n      - run: |\n%s\n", i,
			indent(markStep(marks, fmt.Sprintf("${{ github.run_id }}-l%d", i), "3"), 10))
	}
	long += "  after:\n    needs: [" + strings.Join(longKeys, ", ") + "]\n    runs-on: ubuntu-latest\n    steps:\n      - run: |\n" +
		indent(jobLine(jobsFile, "${{ github.run_id }}-after"), 10) + "\n"
	g := newGitRepo(t, map[string]string{".github/workflows/ci.yml": ci, ".github/workflows/long.yml": long, "n.txt": "0"})
	shas := []string{g.git("rev-parse", "HEAD")}
	for i := 1; i < pushes; i++ {
		shas = append(shas, g.commit(fmt.Sprintf("change %d", i), map[string]string{"n.txt": fmt.Sprint(i)}))
	}

	// Replicas of one database share its secret key (the server refuses
	// to make one per replica).
	keyFile := filepath.Join(t.TempDir(), "shared.key")
	if _, err := secrets.WriteKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--database", dsn, "--secret-key-file", keyFile, "--lease-ttl", leaseTTL.String(), "--poll", "100ms", "--workers", fmt.Sprint(workers)}
	// One after the other: the first start of a database prints its token.
	r1 := startServer(t, "r1", data1, true, append([]string{"--replica", "r1"}, flags...)...)
	r2 := startServer(t, "r2", data2, false, append([]string{"--replica", "r2"}, flags...)...)
	c1 := client{t: t, url: r1.url, token: r1.token}
	c2 := client{t: t, url: r2.url, token: r1.token}
	repoID := c1.addRepo(g.dir, secret)
	replicaOf := func(dir string) string {
		switch {
		case strings.HasPrefix(dir, data1+"/"):
			return "r1"
		case strings.HasPrefix(dir, data2+"/"):
			return "r2"
		}
		return "?" + dir
	}

	// All at once, alternately to each replica: both lease at the same time.
	var wg sync.WaitGroup
	for i, sha := range shas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			to := []*serverProc{r1, r2}[i%2]
			code, body, err := hook(to.url, repoID, secret, "push", fmt.Sprintf("push-%d", i), pushBody(g.dir, "main", sha, "change"))
			if err != nil || code != http.StatusAccepted {
				t.Errorf("push %d to %s: %d %s %v", i, to.name, code, body, err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	runs := c2.waitRuns(pushes, 60*time.Second)
	ranOn := map[string]string{} // "<run>-<job>" -> replica, from the jobs themselves
	b, err := os.ReadFile(jobsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		key, dir, _ := strings.Cut(line, " ")
		if prev, dup := ranOn[key]; dup {
			t.Errorf("job %s ran twice: on %s and on %s", key, prev, replicaOf(dir))
		}
		ranOn[key] = replicaOf(dir)
	}
	perReplica := map[string]int{}
	for _, r := range runs {
		if r.Status != "success" {
			t.Errorf("run %d: %s %s", r.ID, r.Status, r.Error)
		}
		// A second lease of a job shows as attempt 2 even when the
		// loser's step never ran.
		for _, j := range c2.run(r.ID).Jobs {
			if j.Status != "success" || j.Attempt != 1 || len(j.Interrupted) != 0 {
				t.Errorf("job %d-%s: %s attempt %d interrupted %+v; want one successful lease; error %q, log:\n%s", r.ID, j.Key, j.Status, j.Attempt,
					j.Interrupted, j.Error, c2.text(fmt.Sprintf("/api/runs/%d/jobs/%s/logs", r.ID, j.Key)))
			}
		}
		for _, k := range []string{"a", "b", "c"} {
			key := fmt.Sprintf("%d-%s", r.ID, k)
			if ranOn[key] == "" {
				t.Errorf("job %s never ran", key)
			}
			perReplica[ranOn[key]]++
		}
	}
	if len(ranOn) != 3*pushes || perReplica["r1"] == 0 || perReplica["r2"] == 0 || perReplica["r1"]+perReplica["r2"] != 3*pushes {
		t.Errorf("jobs by replica: %v (%d jobs ran, want %d shared by r1 and r2)", perReplica, len(ranOn), 3*pushes)
	}
	// Each replica completed the jobs it ran, and only those.
	for _, r := range []*serverProc{r1, r2} {
		for _, m := range jobFinished.FindAllStringSubmatch(r.stderr(), -1) {
			key := m[1] + "-" + m[2]
			if ranOn[key] != r.name {
				t.Errorf("%s completed job %s, which ran on %q", r.name, key, ranOn[key])
			}
			delete(ranOn, key)
		}
	}
	if len(ranOn) != 0 {
		t.Errorf("jobs ran but no replica completed them: %v", ranOn)
	}
	t.Logf("%d runs, %d jobs: %v", len(runs), 3*pushes, perReplica)
	if t.Failed() {
		t.FailNow()
	}

	// r2 shows r1's work: the run, the jobs, the log, plain and followed.
	var r1Run int64
	var r1Job string
	b, _ = os.ReadFile(jobsFile)
	for _, line := range strings.Split(string(b), "\n") {
		if key, dir, _ := strings.Cut(line, " "); replicaOf(dir) == "r1" {
			run, job, _ := strings.Cut(key, "-")
			fmt.Sscan(run, &r1Run)
			r1Job = job
			break
		}
	}
	d := c2.run(r1Run)
	if j := d.job(r1Job); d.Run.Status != "success" || j.Status != "success" || j.Attempt != 1 || len(j.Interrupted) != 0 {
		t.Errorf("run %d from r2: %+v", r1Run, d)
	}
	want := fmt.Sprintf("job %d-%s on %s/", r1Run, r1Job, data1)
	if l := c2.text(fmt.Sprintf("/api/runs/%d/jobs/%s/logs", r1Run, r1Job)); !strings.Contains(l, want) {
		t.Errorf("log of %d-%s (ran on r1) read from r2 lacks %q:\n%s", r1Run, r1Job, want, l)
	}
	s := followLog(t, c2, r1Run, r1Job)
	if end := s.wait(t, 10*time.Second); end != "success" || !strings.Contains(s.text(), want) {
		t.Errorf("log of %d-%s followed from r2: end %q, text:\n%s", r1Run, r1Job, end, s.text())
	}

	// Twice as many 3 s jobs as a replica has workers: each holds its fill.
	code, body, err := hook(r1.url, repoID, secret, "push", "long-1", pushBody(g.dir, "long", shas[len(shas)-1], "long"))
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("push long: %d %s %v", code, body, err)
	}
	waitFor(t, 30*time.Second, "all long jobs running", func() bool { return countStarts(t, marks) == 2*workers },
		func() string { b, _ := os.ReadFile(marks); return string(b) })
	held := map[string][]*attempt{}
	var longRun int64
	for key, as := range readAttempts(t, marks) {
		held[replicaOf(as[0].dir)] = append(held[replicaOf(as[0].dir)], as[0])
		fmt.Sscan(strings.Split(key, "-")[0], &longRun)
	}
	if len(held["r1"]) != workers || len(held["r2"]) != workers {
		t.Fatalf("long jobs by replica: %v", held)
	}
	// r2 follows a job running on r1: it sees its output live.
	onR1 := held["r1"][0]
	jobKey := strings.Split(onR1.key, "-")[1]
	s = followLog(t, c2, longRun, jobKey)
	waitFor(t, 10*time.Second, "r2 streaming the log of a job running on r1", func() bool {
		return strings.Contains(s.text(), "working on "+onR1.key+" in "+data1+"/")
	}, s.text)

	crashed := r1.kill9()
	// The leases r1 held, as r1 left them (r2 keeps running meanwhile).
	var leases leaseSnapshot
	inspect(t, dsn, keyFile, func(st store.Store, org int64) { leases = runningLeases(t, st, org) })
	// Do r1's steps outlive it? (Give them a second.)
	time.Sleep(time.Until(crashed.Add(time.Second)))
	aliveAfter := map[int]bool{}
	for _, a := range held["r1"] {
		aliveAfter[a.pid] = alive(a.pid)
	}

	c2.waitRuns(pushes+1, 40*time.Second)
	d = c2.run(longRun)
	if d.Run.Status != "success" {
		t.Fatalf("long run after the kill of r1: %s %s; jobs %+v", d.Run.Status, d.Run.Error, d.Jobs)
	}
	attempts := readAttempts(t, marks)
	rerun := map[string]*attempt{}
	for _, j := range d.Jobs {
		key := fmt.Sprintf("%d-%s", longRun, j.Key)
		as := attempts[key]
		if j.Key == "after" {
			if j.Status != "success" || j.Attempt != 1 {
				t.Errorf("job after: %+v", j)
			}
			continue
		}
		if len(as) == 0 {
			t.Errorf("%s never ran: %+v", key, j)
			continue
		}
		if replicaOf(as[0].dir) == "r2" {
			if j.Status != "success" || j.Attempt != 1 || len(j.Interrupted) != 0 || len(as) != 1 {
				t.Errorf("%s (on r2, which lived): %+v, attempts %+v", key, j, as)
			}
			continue
		}
		if len(as) == 1 && !as[0].end.IsZero() && as[0].end.Before(crashed) {
			// It finished on r1 just before the kill: nothing to take over.
			if j.Status != "success" || j.Attempt != 1 || len(j.Interrupted) != 0 {
				t.Errorf("%s (finished on r1 before the kill): %+v", key, j)
			}
			continue
		}
		lease := leases[key]
		if lease == nil || lease.LeaseOwner != "r1" {
			t.Errorf("%s ran on r1 but the database had no lease of r1 at the kill: %+v", key, lease)
			continue
		}
		if j.Status != "success" || j.Attempt != 2 || len(j.Interrupted) != 1 {
			t.Errorf("%s (on r1, killed): %s attempt %d interrupted %+v; want success at attempt 2", key, j.Status, j.Attempt, j.Interrupted)
			continue
		}
		if ia := j.Interrupted[0]; ia.Worker != "r1" || ia.Attempt != 1 || !strings.Contains(ia.Reason, "lease expired") {
			t.Errorf("%s: interrupted attempt %+v", key, ia)
		}
		if len(as) != 2 || replicaOf(as[1].dir) != "r2" || as[1].end.IsZero() {
			t.Errorf("%s: want a killed attempt on r1 and a complete one on r2: %+v", key, as)
			continue
		}
		rerun[key] = as[1]
		if as[1].start.Before(lease.LeaseExpires) {
			t.Errorf("%s: r2 re-ran it at %s, before r1's lease expired (%s)", key, as[1].start, lease.LeaseExpires)
		}
		t.Logf("%s: r1 killed %.2fs into it; lease expired %.2fs after the kill; r2 re-ran it %.2fs after the kill",
			key, crashed.Sub(as[0].start).Seconds(), lease.LeaseExpires.Sub(crashed).Seconds(), as[1].start.Sub(crashed).Seconds())
	}
	// The stream r2 opened while r1 ran the job shows both attempts.
	if end := s.wait(t, 30*time.Second); end != "success" || !strings.Contains(s.text(), "working on "+onR1.key+" in "+data2+"/") {
		t.Errorf("log of %s followed from r2 across the kill: end %q, text:\n%s", onR1.key, end, s.text())
	}
	b, _ = os.ReadFile(jobsFile)
	if n := strings.Count(string(b), fmt.Sprintf("%d-after ", longRun)); n != 1 {
		t.Errorf("job after ran %d times", n)
	}
	for _, l := range orphanReport(held["r1"], attempts, aliveAfter, rerun, crashed) {
		t.Error(l)
	}
}
