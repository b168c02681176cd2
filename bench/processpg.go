package main

import (
	"crypto/rand"
	dbsql "database/sql"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// serverProcessingPG is serverProcessing on PostgreSQL: one replica, then
// two replicas of the same database sharing the processing (webhooks go
// to the first; each replica claims batches with SKIP LOCKED). Each
// figure has a fresh schema. Needs CONVEYOR_TEST_POSTGRES.
func serverProcessingPG(h *harness) []row {
	dsn := os.Getenv("CONVEYOR_TEST_POSTGRES")
	if dsn == "" {
		h.fail("server-process-pg needs CONVEYOR_TEST_POSTGRES (eval \"$(./scripts/test.sh --env)\")")
	}
	var rows []row
	for _, replicas := range []int{1, 2} {
		var rates []float64
		var note string
		for range h.n {
			rate, n := h.processPG(dsn, replicas)
			rates = append(rates, rate)
			note = n
		}
		rate := medianF(rates)
		rows = append(rows, row{name: fmt.Sprintf("events processed into runs, PostgreSQL, %d replica(s)", replicas),
			ours: fmtRate(rate), floor: "-", target: "rising with replicas", ok: "-", comment: note})
	}
	return rows
}

// processPG runs one storm against replicas servers on a fresh schema and
// returns the rate and a note.
func (h *harness) processPG(dsn string, replicas int) (float64, string) {
	admin, err := dbsql.Open("pgx", dsn)
	if err != nil {
		h.fail("postgres: %v", err)
	}
	defer admin.Close()
	schema := fmt.Sprintf("bench_%d", time.Now().UnixNano())
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		h.fail("postgres: %v", err)
	}
	defer admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
	u, err := url.Parse(dsn)
	if err != nil {
		h.fail("postgres: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	env := map[string]string{"CONVEYOR_WORKERS": "0", "CONVEYOR_DATABASE": u.String(),
		"CONVEYOR_SECRET_KEY": base64.StdEncoding.EncodeToString(key)}
	var srvs []*serverProc
	withEnvs(env, func() {
		for i := range replicas {
			srvs = append(srvs, h.startServerOf(fmt.Sprintf("process-pg-%d", i), i == 0))
		}
	})
	defer func() {
		for _, s := range srvs {
			s.stop()
		}
	}()
	srv := srvs[0]
	t := h.pushTarget(srv)
	db, err := dbsql.Open("pgx", u.String())
	if err != nil {
		h.fail("postgres: %v", err)
	}
	defer db.Close()
	start := time.Now()
	var c0 []cpuSample
	for _, s := range srvs {
		c0 = append(c0, sampleCPU(s.pid()))
	}
	res := t.burst()
	if res.accepted == 0 {
		h.fail("no webhook accepted: %s\n%s", res.firstErr, srv.logTail())
	}
	runs := h.waitRuns(db, srv, res.accepted)
	took := time.Since(start)
	var cpus []string
	for i, s := range srvs {
		cpus = append(cpus, fmt.Sprintf("replica %d: %s", i+1, cpuShare(sampleCPU(s.pid()), c0[i])))
	}
	rate := float64(runs) / took.Seconds()
	return rate, fmt.Sprintf("%d signed pushes to replica 1 (accepted in %s); %d runs written %s after the first delivery; --workers 0; %s",
		res.accepted, fmtDur(res.elapsed), runs, fmtDur(took), strings.Join(cpus, "; "))
}

// withEnvs runs fn with the environment variables env set, then restores them.
func withEnvs(env map[string]string, fn func()) {
	for k, v := range env {
		old, had := os.LookupEnv(k)
		os.Setenv(k, v)
		defer func() {
			if had {
				os.Setenv(k, old)
			} else {
				os.Unsetenv(k)
			}
		}()
	}
	fn()
}
