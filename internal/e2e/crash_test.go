package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/secrets"
	"github.com/conveyor-ci/conveyor/internal/store"
	sqlstore "github.com/conveyor-ci/conveyor/internal/store/sql"
)

// leaseTTL is the servers' lease TTL in these tests: short, so that a
// killed process's jobs come back soon, but with heartbeats (every third
// of it) that survive a CI machine's stalls of a few seconds: at 2 s, a
// machine at load 19 on 2 CPUs let live workers' leases expire.
const leaseTTL = 4 * time.Second

// crashFlow: a quick job a, then b which records its attempts around a 3 s
// sleep (the one the server is killed in), then c.
func crashFlow(marks string) string {
	return `name: crash
on:
  push:
    branches: [main]
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: echo "a of run ${{ github.run_id }}"
  b:
    needs: a
    runs-on: ubuntu-latest
    steps:
      - run: |
` + indent(markStep(marks, "${{ github.run_id }}-b", "3"), 10) + `
  c:
    needs: b
    runs-on: ubuntu-latest
    steps:
      - run: echo "c of run ${{ github.run_id }}"
`
}

// leaseSnapshot is what the database holds about the leases a crash left.
type leaseSnapshot map[string]*store.Job // by "<run>-<job key>"

// inspect opens the database of a stopped server with the store package
// and the server's key file, and runs f on it: the state exactly as the
// server left it.
func inspect(t *testing.T, dsn, keyFile string, f func(st store.Store, org int64)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key, err := secrets.LoadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(ctx, dsn, sqlstore.Options{Keys: secrets.NewKeyring(key)})
	if err != nil {
		t.Fatalf("opening %s after the crash: %v", dsn, err)
	}
	defer st.Close()
	org, err := st.EnsureOrg(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	f(st, org.ID)
}

// runningLeases lists the jobs a store holds as running, with their leases.
func runningLeases(t *testing.T, st store.Store, org int64) leaseSnapshot {
	t.Helper()
	ctx := context.Background()
	runs, err := st.ListRuns(ctx, org, store.RunFilter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	out := leaseSnapshot{}
	for _, r := range runs {
		jobs, err := st.Jobs(ctx, org, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if j.Status == store.StatusRunning {
				out[fmt.Sprintf("%d-%s", r.ID, j.Key)] = j
			}
		}
	}
	return out
}

// TestKill9MidRunSQLite crashes a server (SIGKILL) while jobs run and
// webhooks arrive, then restarts it on the same data directory:
//   - every webhook answered 202 is in the database, read before any
//     restart (nothing acknowledged before it was stored);
//   - every accepted push produced its run, every run succeeds;
//   - the jobs that were running are re-run exactly once, only after their
//     lease expired (fencing), and show attempt 2 with the interrupted
//     attempt and its reason in GET /api/runs/{id};
//   - no job ran twice in parallel: the steps of the killed server die
//     with it (host backend), they never reach their end.
func TestKill9MidRunSQLite(t *testing.T) {
	skipShort(t)
	t.Parallel()
	data := t.TempDir()
	marks := filepath.Join(t.TempDir(), "marks.txt")
	killStrays(t, marks, data)
	const secret, pushes = "kill9-secret", 5
	g := newGitRepo(t, map[string]string{".github/workflows/crash.yml": crashFlow(marks), "n.txt": "0"})
	shas := []string{g.git("rev-parse", "HEAD")}
	for i := 1; i < pushes; i++ {
		shas = append(shas, g.commit(fmt.Sprintf("change %d", i), map[string]string{"n.txt": fmt.Sprint(i)}))
	}
	flags := []string{"--lease-ttl", leaseTTL.String(), "--poll", "100ms", "--workers", "4"}
	s1 := startServer(t, "first", data, true, append([]string{"--replica", "first"}, flags...)...)
	c := client{t: t, url: s1.url, token: s1.token}
	repoID := c.addRepo(g.dir, secret)

	pushEvents := map[int64]string{} // event id -> sha
	for i, sha := range shas {
		code, body, err := hook(s1.url, repoID, secret, "push", fmt.Sprintf("push-%d", i), pushBody(g.dir, "main", sha, "change"))
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("push %d: %d %s %v", i, code, body, err)
		}
		pushEvents[acceptedID(t, body)] = sha
	}
	waitFor(t, 45*time.Second, "a job b to start", func() bool { return countStarts(t, marks) > 0 })
	// Every push has its run (events are processed one after the other).
	waitFor(t, 10*time.Second, fmt.Sprintf("%d runs", pushes), func() bool { return len(c.runs()) == pushes })

	// Branch deletions flood the intake while the server dies: each one
	// answered 202 must be stored. They trigger nothing.
	var (
		mu      sync.Mutex
		flooded []int64
		wg      sync.WaitGroup
		stopped = make(chan struct{})
	)
	stopFlood := sync.OnceFunc(func() { close(stopped); wg.Wait() })
	t.Cleanup(stopFlood)
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				select {
				case <-stopped:
					return
				default:
				}
				body := []byte(fmt.Sprintf(`{"ref":"refs/heads/gone-%d-%d","before":"%s","after":"0000000000000000000000000000000000000000","created":false,"deleted":true,"repository":{"full_name":"octo/repo","default_branch":"main"},"sender":{"login":"octocat"}}`, w, i, shas[0]))
				code, resp, err := hook(s1.url, repoID, secret, "push", fmt.Sprintf("flood-%d-%d", w, i), body)
				if err != nil {
					return // the server is gone
				}
				if code != http.StatusAccepted {
					t.Errorf("flood push: %d %s", code, resp)
					return
				}
				id, err := eventID(resp)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				flooded = append(flooded, id)
				mu.Unlock()
			}
		}()
	}
	floodStart := time.Now()
	waitFor(t, 10*time.Second, "flood webhooks accepted", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(flooded) >= 50 || len(flooded) > 0 && time.Since(floodStart) > 300*time.Millisecond
	})
	crashed := s1.kill9()
	stopFlood()
	// The steps the crash cut (all marks so far are the first server's).
	var cut []*attempt
	for _, as := range readAttempts(t, marks) {
		for _, a := range as {
			if a.end.IsZero() || a.end.After(crashed) {
				cut = append(cut, a)
			}
		}
	}
	if len(cut) == 0 {
		t.Fatal("no job b was running at the kill")
	}
	t.Logf("killed the server with %d job(s) b running and %d flood webhooks accepted", len(cut), len(flooded))

	// The database as the crash left it.
	var leases leaseSnapshot
	claimed := map[int64]bool{} // events the killed server was processing
	inspect(t, filepath.Join(data, "conveyor.db"), filepath.Join(data, secrets.KeyFileName), func(st store.Store, org int64) {
		for _, id := range append(keys(pushEvents), flooded...) {
			ev, err := st.GetEvent(context.Background(), org, id)
			if err != nil {
				t.Errorf("event %d was answered 202 but is not in the database after the crash: %v", id, err)
				continue
			}
			if ev.State == store.EventProcessing {
				claimed[id] = true
			}
		}
		leases = runningLeases(t, st, org)
	})
	if t.Failed() {
		t.FailNow()
	}
	firstExpiry := time.Time{}
	for _, a := range cut {
		j := leases[a.key]
		if j == nil {
			t.Fatalf("step of %s was running at the kill but the database has no running job for it (leases: %v)", a.key, leases)
		}
		if j.LeaseOwner != "first" || !j.LeaseExpires.After(crashed.Add(-leaseTTL)) {
			t.Errorf("%s: lease %q until %s at the kill (%s)", a.key, j.LeaseOwner, j.LeaseExpires, crashed)
		}
		if firstExpiry.IsZero() || j.LeaseExpires.Before(firstExpiry) {
			firstExpiry = j.LeaseExpires
		}
	}

	s2 := startServer(t, "second", data, false, append([]string{"--replica", "second"}, flags...)...)
	// The restart must come before the leases expire, or the fencing
	// checks below prove nothing.
	t.Logf("restarted at kill%+.2fs; the first lease expires at kill%+.2fs", time.Since(crashed).Seconds(), firstExpiry.Sub(crashed).Seconds())
	if time.Now().After(firstExpiry) {
		t.Logf("warning: the restart came after the leases expired: re-runs cannot be early")
	}
	// Do the steps of the killed server outlive it? (Give them a second.)
	time.Sleep(time.Until(crashed.Add(time.Second)))
	outlived := map[int]bool{}
	for _, a := range cut {
		outlived[a.pid] = alive(a.pid)
	}
	c = client{t: t, url: s2.url, token: s1.token}
	for _, id := range append(keys(pushEvents), flooded...) {
		c.event(id) // 200, or the test stops
	}
	// Every accepted event is processed after the restart, those the
	// killed server had claimed too once their claim expires.
	var notDone []apiEvent
	waitFor(t, 40*time.Second, "every accepted event processed", func() bool {
		notDone = nil
		for _, id := range append(keys(pushEvents), flooded...) {
			if ev := c.event(id); ev.State != "done" {
				notDone = append(notDone, ev)
			}
		}
		return len(notDone) == 0
	}, func() string { return fmt.Sprintf("not done: %+v", notDone) })
	t.Logf("every accepted event processed by kill%+.2fs (%d were claimed by the killed server)", time.Since(crashed).Seconds(), len(claimed))
	runs := c.waitRuns(pushes, 60*time.Second)
	if len(runs) != pushes {
		t.Fatalf("%d pushes accepted, %d runs: %+v", pushes, len(runs), runs)
	}
	for _, r := range runs {
		if sha, ok := pushEvents[r.EventID]; !ok || sha != r.SHA {
			t.Errorf("run %d: event %d sha %s is not one of the accepted pushes", r.ID, r.EventID, r.SHA)
		}
		delete(pushEvents, r.EventID)
	}

	// Runs, jobs and attempts as the API shows them, against the marks.
	attempts := readAttempts(t, marks)
	rerun := map[string]*attempt{}
	var killed []*attempt // attempts the crash interrupted, all runs
	for _, r := range runs {
		d := c.run(r.ID)
		if r.Status != "success" {
			t.Errorf("run %d: %s %s; jobs %+v", r.ID, r.Status, r.Error, d.Jobs)
			continue
		}
		for _, j := range d.Jobs {
			key := fmt.Sprintf("%d-%s", r.ID, j.Key)
			lease := leases[key]
			if j.Status != "success" {
				t.Errorf("%s: %s %s", key, j.Status, j.Error)
			}
			if lease == nil {
				if j.Attempt != 1 || len(j.Interrupted) != 0 {
					t.Errorf("%s was not running at the crash but shows attempt %d, interrupted %+v", key, j.Attempt, j.Interrupted)
				}
				continue
			}
			if j.Attempt != 2 || len(j.Interrupted) != 1 {
				t.Errorf("%s was running at the crash: attempt %d, interrupted %+v (want attempt 2 after one interrupted attempt)", key, j.Attempt, j.Interrupted)
				continue
			}
			ia := j.Interrupted[0]
			if ia.Attempt != 1 || ia.Worker != "first" || !strings.Contains(ia.Reason, "lease expired") || ia.Finished == nil {
				t.Errorf("%s: interrupted attempt %+v", key, ia)
				continue
			}
			// Fencing: the re-run waited for the lease to expire.
			if ia.Finished.Before(lease.LeaseExpires) || j.Started == nil || j.Started.Before(lease.LeaseExpires) {
				t.Errorf("%s: lease held until %s, yet expired at %s and re-run at %v", key, lease.LeaseExpires, ia.Finished, j.Started)
			}
		}
		// Job b's own record of its attempts, by the server that ran them.
		key := fmt.Sprintf("%d-b", r.ID)
		var done, cut, after []*attempt
		for _, a := range attempts[key] {
			switch {
			case a.under(s2.pid()):
				after = append(after, a)
			case !a.end.IsZero() && a.end.Before(crashed):
				done = append(done, a)
			default:
				cut = append(cut, a)
			}
		}
		killed = append(killed, cut...)
		b := d.job("b")
		switch {
		case len(cut) > 0 && leases[key] == nil:
			t.Errorf("%s: a step was running at the kill but the database had no running job: %+v", key, cut)
		case len(done)+len(cut) > 1 || len(done)+len(after) != 1:
			t.Errorf("%s: the killed server ran %d attempt(s) to the end and %d cut, the new one %d; want one that ended: %+v",
				key, len(done), len(cut), len(after), attempts[key])
		case len(cut) > len(b.Interrupted):
			// (fewer is fine: a job leased by the killed server may not
			// have reached its step yet)
			t.Errorf("%s: %d attempts cut by the kill, the API shows %d interrupted", key, len(cut), len(b.Interrupted))
		case len(after) == 1:
			a := after[0]
			if a.end.IsZero() || !strings.HasPrefix(a.dir, data) {
				t.Errorf("%s: re-run %+v did not end in the data directory", key, a)
			}
			if l := leases[key]; l != nil {
				rerun[key] = a
				if a.start.Before(l.LeaseExpires) {
					t.Errorf("%s: re-run started at %s, before the lease of the killed attempt expired (%s)", key, a.start, l.LeaseExpires)
				}
				t.Logf("%s: lease of the killed server expired at kill%+.2fs; attempt 2 started at kill%+.2fs",
					key, l.LeaseExpires.Sub(crashed).Seconds(), a.start.Sub(crashed).Seconds())
			}
		}
	}
	// Nothing ran twice in parallel: each server ran at most one attempt
	// of a job, the new one only after the lease expired (checked above),
	// and the steps of the killed server died with it.
	for _, l := range orphanReport(killed, attempts, outlived, rerun, crashed) {
		t.Error(l)
	}
}

func keys[V any](m map[int64]V) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
