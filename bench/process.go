package main

import (
	dbsql "database/sql"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// withEnv runs fn with the environment variable k set to v, then restores it.
func withEnv[T any](k, v string, fn func() T) T {
	old, had := os.LookupEnv(k)
	os.Setenv(k, v)
	defer func() {
		if had {
			os.Setenv(k, old)
		} else {
			os.Unsetenv(k)
		}
	}()
	return fn()
}

// serverProcessing: a storm of 10,000 signed pushes to a repository whose
// workflow runs on every push, on a server that runs no jobs itself
// (--workers 0: the jobs stay queued), so the rate is the event
// processor's: claim, parse, read the workflow at the commit, match on:,
// plan, write the run with its jobs and queue entries, finish. Measured
// from the first delivery to the last run written (intake shares the 2
// CPUs during the first seconds). Floor: raw batched inserts of the same
// event rows, as for intake.
func serverProcessing(h *harness) []row {
	frows := floorRowsFor("/tmp/octo-repo", pseudoSHA(0))
	var floors []float64
	for range h.n {
		floors = append(floors, h.floorInsert(frows, floorBatch))
	}
	floor := medianF(floors)

	srv := withEnv("CONVEYOR_WORKERS", "0", func() *serverProc { return h.startServer("process") })
	defer srv.stop()
	t := h.pushTarget(srv)
	start := time.Now()
	c0 := sampleCPU(srv.pid())
	res := t.burst()
	if res.accepted == 0 {
		h.fail("no webhook accepted: %s\n%s", res.firstErr, srv.logTail())
	}
	db, err := dbsql.Open("sqlite", "file:"+filepath.Join(srv.data, "conveyor.db")+"?mode=ro")
	if err != nil {
		h.fail("opening the database: %v", err)
	}
	defer db.Close()
	runs := h.waitRuns(db, srv, res.accepted)
	took := time.Since(start)
	cpu := cpuShare(sampleCPU(srv.pid()), c0)
	rate := float64(runs) / took.Seconds()
	return []row{{name: "events processed into runs", ours: fmtRate(rate), floor: fmtRate(floor) + " (raw inserts)", ratio: fmt.Sprintf("%.2fx", rate/floor),
		target: ">= 1000/s", ok: okIf(rate >= 1000),
		comment: fmt.Sprintf("%d signed pushes (%d clients, accepted in %s) to a repository with a 1-job workflow on push; %d runs written %s after the first delivery; server --workers 0 (jobs stay queued); %s. Floor: raw inserts of the same event rows, %d per transaction, median of %d",
			res.accepted, intakeClients, fmtDur(res.elapsed), runs, fmtDur(took), cpu, floorBatch, h.n)}}
}

// pushTarget adds a repository with a one-job workflow on push to srv and
// returns the target that sends signed pushes to it.
func (h *harness) pushTarget(srv *serverProc) intakeTarget {
	dir, head := h.gitRepo(map[string]string{".github/workflows/ci.yml": "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo built\n"})
	const secret = "bench-webhook-secret"
	id := srv.addRepo(dir, "octo/repo", secret)
	return intakeTarget{srv: srv, hookURL: fmt.Sprintf("%s/hooks/%d", srv.url, id), secret: secret, repoDir: dir, head: head,
		run: fmt.Sprintf("%08x", time.Now().UnixNano()&0xffffffff)}
}

// waitRuns waits, 5 minutes at most, until no event is left pending in db
// and it holds at least accepted runs; it returns how many runs it holds.
func (h *harness) waitRuns(db *dbsql.DB, srv *serverProc, accepted int) int {
	var runs, pending int
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if err := db.QueryRow(`SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM events WHERE state NOT IN ('done', 'failed'))`).Scan(&runs, &pending); err != nil {
			h.fail("counting runs: %v", err)
		}
		if pending == 0 && runs >= accepted {
			return runs
		}
		if time.Now().After(deadline) {
			h.fail("after 5 minutes: %d runs, %d events pending of %d accepted\n%s", runs, pending, accepted, srv.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
