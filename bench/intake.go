package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	dbsql "database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, as the server's store uses

	"github.com/conveyor-ci/conveyor/internal/store"
	sqlstore "github.com/conveyor-ci/conveyor/internal/store/sql"
)

const (
	// intakeClients is how many keep-alive HTTP clients post at once: a
	// busy forge fans deliveries out over many connections. Each client has
	// one request in flight, so it also bounds the batcher's batches; the
	// [skip ci] variant runs again with intakeFewClients.
	intakeClients    = 128
	intakeFewClients = 64
	intakeWarmUp     = time.Second
	intakeWindow     = 10 * time.Second
	burstSize        = 10000
	// floorBatch is the batcher's largest batch (server.New: 256).
	floorBatch = 256
	floorRows  = 10000
)

// push describes one generated GitHub push delivery.
type push struct {
	seq     int64
	repo    string // owner/name; default octo/repo
	repoDir string
	head    string // the commit pushed: the repository's HEAD, so the processor finds it locally
	skipCI  bool
	// template leaves the per-delivery parts as markers (see pushTemplate).
	template bool
}

// Markers of a pushTemplate: as wide as what replaces them.
const (
	markBefore = "@@before@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@" // 40 hex digits
	markSeq    = "@@seq@@@@@@@"                             // %012d
)

// body is a GitHub push payload shaped like a real one (fields of octokit's
// push example, one commit), about 4 KB, unique per seq: before, the
// message and the compare URL differ; after stays the repository's HEAD.
func (p push) body() []byte {
	before, seq := pseudoSHA(p.seq), fmt.Sprintf("%012d", p.seq)
	if p.template {
		before, seq = markBefore, markSeq
	}
	msg := "Update README (change " + seq + ")\n\nBenchmark push number " + seq + "."
	if p.skipCI {
		msg += " [skip ci]"
	}
	name := p.repo
	if name == "" {
		name = "octo/repo"
	}
	owner, short, _ := strings.Cut(name, "/")
	api := "https://api.github.com/repos/" + name
	web := "https://github.com/" + name
	ts := time.Unix(1767225600, 0).UTC().Format(time.RFC3339)
	user := func(login string, id int) map[string]any {
		u := "https://api.github.com/users/" + login
		return map[string]any{"name": login, "email": login + "@users.noreply.github.com", "login": login, "id": id,
			"node_id": "MDQ6VXNlcjIxMDMxMDY3", "avatar_url": "https://avatars.githubusercontent.com/u/21031067?v=4",
			"gravatar_id": "", "url": u, "html_url": "https://github.com/" + login, "followers_url": u + "/followers",
			"following_url": u + "/following{/other_user}", "gists_url": u + "/gists{/gist_id}",
			"starred_url": u + "/starred{/owner}{/repo}", "subscriptions_url": u + "/subscriptions",
			"organizations_url": u + "/orgs", "repos_url": u + "/repos", "events_url": u + "/events{/privacy}",
			"received_events_url": u + "/received_events", "type": "User", "site_admin": false}
	}
	person := map[string]any{"name": "Octo Cat", "email": "octocat@example.com", "username": "octocat"}
	commit := map[string]any{"id": p.head, "tree_id": pseudoSHA(-1), "distinct": true, "message": msg, "timestamp": ts,
		"url": web + "/commit/" + p.head, "author": person, "committer": person,
		"added": []string{}, "removed": []string{}, "modified": []string{"README.md"}}
	body, err := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "before": before, "after": p.head, "created": false, "deleted": false, "forced": false,
		"base_ref": nil, "compare": web + "/compare/" + before + "..." + p.head[:12],
		"commits": []any{commit}, "head_commit": commit,
		"repository": map[string]any{"id": 186853002, "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=", "name": short,
			"full_name": name, "private": false, "owner": user(owner, 21031067), "html_url": web,
			"description": nil, "fork": false, "url": api, "hooks_url": api + "/hooks", "git_url": "git://github.com/" + name + ".git",
			"ssh_url": "git@github.com:" + name + ".git", "clone_url": "file://" + p.repoDir, "homepage": nil, "size": 42,
			"stargazers_count": 0, "watchers_count": 0, "language": "Go", "has_issues": true, "forks_count": 0,
			"open_issues_count": 0, "default_branch": "main", "master_branch": "main", "created_at": 1557933565,
			"pushed_at": 1557933657, "updated_at": ts},
		"pusher": map[string]any{"name": "octocat", "email": "octocat@example.com"},
		"sender": user("octocat", 21031068),
	})
	if err != nil {
		panic(err)
	}
	return body
}

// pushTemplate makes push bodies with a copy and a few small writes: the
// load generator must not eat the CPU the server needs.
type pushTemplate struct {
	b           []byte
	before, seq []int // offsets of the markers
}

func newPushTemplate(p push) *pushTemplate {
	p.template = true
	t := &pushTemplate{b: p.body()}
	for _, m := range []struct {
		mark string
		at   *[]int
	}{{markBefore, &t.before}, {markSeq, &t.seq}} {
		for i := 0; ; {
			j := bytes.Index(t.b[i:], []byte(m.mark))
			if j < 0 {
				break
			}
			*m.at = append(*m.at, i+j)
			i += j + len(m.mark)
		}
	}
	return t
}

// bodyInto is push{seq: seq, ...}.body() of the template's push, written
// over dst's memory (grown if need be): the
// sustained load makes one per request, so it allocates nothing.
func (t *pushTemplate) bodyInto(dst []byte, seq int64) []byte {
	b := append(dst[:0], t.b...)
	var before, n [40]byte
	appendPseudoSHA(before[:0], seq)
	appendPadded(n[:0], seq, 10, 12)
	for _, i := range t.before {
		copy(b[i:], before[:])
	}
	for _, i := range t.seq {
		copy(b[i:], n[:12])
	}
	return b
}

func pseudoSHA(n int64) string { return string(appendPseudoSHA(nil, n)) }

// appendPseudoSHA appends the hex SHA-1 of n's decimal digits.
func appendPseudoSHA(dst []byte, n int64) []byte {
	var d [20]byte
	s := sha1.Sum(strconv.AppendInt(d[:0], n, 10))
	return hex.AppendEncode(dst, s[:])
}

// appendPadded appends n (≥ 0) in base, zero-padded to width digits.
func appendPadded(dst []byte, n int64, base, width int) []byte {
	var d [24]byte
	digits := strconv.AppendInt(d[:0], n, base)
	for range width - len(digits) {
		dst = append(dst, '0')
	}
	return append(dst, digits...)
}

// deliveryID is unique per process run and seq (GitHub sends a GUID).
func deliveryID(run string, seq int64) string { return string(appendDeliveryID(nil, run, seq)) }

func appendDeliveryID(dst []byte, run string, seq int64) []byte {
	dst = append(append(dst, run...), '-')
	dst = appendPadded(dst, seq>>48, 16, 4)
	dst = append(dst, '-')
	return appendPadded(dst, seq&(1<<48-1), 16, 12)
}

// loadResult is what a load phase measured client-side.
type loadResult struct {
	accepted, duplicate, failed int
	lat                         []time.Duration // accepted requests completed inside the window
	elapsed                     time.Duration
	firstErr                    string
	acceptedIDs                 []string // burst only: delivery ids answered 202
	cpu                         string   // CPU shares during the measurement
}

func (r *loadResult) add(o loadResult) {
	r.accepted += o.accepted
	r.duplicate += o.duplicate
	r.failed += o.failed
	r.lat = append(r.lat, o.lat...)
	r.acceptedIDs = append(r.acceptedIDs, o.acceptedIDs...)
	if r.firstErr == "" {
		r.firstErr = o.firstErr
	}
}

func hookClient(conns int) *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true,
		IdleConnTimeout: time.Minute,
	}}
}

// intakeTarget is a server with a repository registered for webhooks.
type intakeTarget struct {
	srv     *serverProc
	hookURL string
	secret  string
	repoDir string
	head    string
	run     string // delivery id prefix
}

func (h *harness) intakeServer(label string) intakeTarget {
	return h.intakeRepo(h.startServer(label))
}

// intakeRepo registers a repository without workflows on srv.
func (h *harness) intakeRepo(srv *serverProc) intakeTarget {
	dir, head := h.gitRepo(map[string]string{"README.md": "# bench\n\nNo workflows here: events are read, planned and finished with no run.\n"})
	const secret = "bench-webhook-secret"
	id := srv.addRepo(dir, "octo/repo", secret)
	return intakeTarget{srv: srv, hookURL: fmt.Sprintf("%s/hooks/%d", srv.url, id), secret: secret, repoDir: dir, head: head,
		run: fmt.Sprintf("%08x", time.Now().UnixNano()&0xffffffff)}
}

// sustained posts distinct signed pushes from clients keep-alive clients
// for warm-up + window and measures the window.
func (t intakeTarget) sustained(skipCI bool, clients int) loadResult {
	tmpl := newPushTemplate(push{repoDir: t.repoDir, head: t.head, skipCI: skipCI})
	var seq atomic.Int64
	start := time.Now()
	from, to := start.Add(intakeWarmUp), start.Add(intakeWarmUp+intakeWindow)
	results := make([]loadResult, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[c]
			conn, err := newHookConn(t.hookURL, t.secret)
			if err != nil {
				r.failed, r.firstErr = 1, err.Error()
				return
			}
			defer conn.close()
			var body, id []byte
			for {
				n := seq.Add(1)
				body = tmpl.bodyInto(body, n)
				id = appendDeliveryID(id[:0], t.run, n)
				t0 := time.Now()
				if t0.After(to) {
					return
				}
				status, resp, err := conn.post(body, string(id))
				t1 := time.Now()
				inWindow := !t1.Before(from) && !t1.After(to)
				switch {
				case err != nil || status >= 300:
					if inWindow {
						r.failed++
					}
					if r.firstErr == "" {
						r.firstErr = fmt.Sprintf("status %d %s %v", status, strings.TrimSpace(string(resp)), err)
					}
				case status == http.StatusOK:
					if inWindow {
						r.duplicate++
					}
				case inWindow:
					r.accepted++
					r.lat = append(r.lat, t1.Sub(t0))
				}
			}
		}()
	}
	time.Sleep(time.Until(from))
	c0 := sampleCPU(t.srv.pid())
	time.Sleep(time.Until(to))
	c1 := sampleCPU(t.srv.pid())
	wg.Wait()
	var out loadResult
	for _, r := range results {
		out.add(r)
	}
	out.elapsed = intakeWindow
	out.cpu = cpuShare(c1, c0)
	return out
}

// burst posts burstSize distinct pushes (made beforehand) as fast as
// intakeClients clients can.
func (t intakeTarget) burst() loadResult {
	type delivery struct {
		id   string
		body []byte
	}
	ds := make([]delivery, burstSize)
	for i := range ds {
		n := int64(1_000_000 + i)
		ds[i] = delivery{deliveryID(t.run, n), push{seq: n, repoDir: t.repoDir, head: t.head}.body()}
	}
	var next atomic.Int64
	results := make([]loadResult, intakeClients)
	var wg sync.WaitGroup
	c0 := sampleCPU(t.srv.pid())
	start := time.Now()
	for c := range intakeClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[c]
			conn, err := newHookConn(t.hookURL, t.secret)
			if err != nil {
				r.failed, r.firstErr = 1, err.Error()
				return
			}
			defer conn.close()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(ds)) {
					return
				}
				t0 := time.Now()
				status, resp, err := conn.post(ds[i].body, ds[i].id)
				switch {
				case err != nil || status >= 300:
					r.failed++
					if r.firstErr == "" {
						r.firstErr = fmt.Sprintf("status %d %s %v", status, strings.TrimSpace(string(resp)), err)
					}
				case status == http.StatusOK:
					r.duplicate++
				default:
					r.accepted++
					r.lat = append(r.lat, time.Since(t0))
					r.acceptedIDs = append(r.acceptedIDs, ds[i].id)
				}
			}
		}()
	}
	wg.Wait()
	var out loadResult
	for _, r := range results {
		out.add(r)
	}
	out.elapsed = time.Since(start)
	out.cpu = cpuShare(sampleCPU(t.srv.pid()), c0)
	return out
}

// storedEvents opens the server's SQLite file read-only (the server is
// gone) and returns the delivery ids of its events and the count by state.
func (h *harness) storedEvents(data string) (map[string]bool, map[string]int) {
	db, err := dbsql.Open("sqlite", "file:"+filepath.Join(data, "conveyor.db")+"?mode=ro")
	if err != nil {
		h.fail("opening the database: %v", err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil {
		h.fail("counting events: %v", err)
	}
	ids := make(map[string]bool, n)
	rows, err := db.Query(`SELECT delivery_id, state FROM events`)
	if err != nil {
		h.fail("reading events: %v", err)
	}
	defer rows.Close()
	states := map[string]int{}
	for rows.Next() {
		var id, state string
		if err := rows.Scan(&id, &state); err != nil {
			h.fail("reading events: %v", err)
		}
		ids[id] = true
		states[state]++
	}
	if err := rows.Err(); err != nil {
		h.fail("reading events: %v", err)
	}
	if len(ids) != n {
		h.fail("count(*) says %d events, the rows hold %d delivery ids", n, len(ids))
	}
	return ids, states
}

// floorRowsFor makes the rows the floor inserts: the same columns and
// sizes the server stores for a push delivery.
type floorRow struct {
	delivery, headers string
	hash, body        []byte
}

func floorRowsFor(repoDir, head string) []floorRow {
	rows := make([]floorRow, floorRows)
	for i := range rows {
		n := int64(i + 1)
		body := push{seq: n, repoDir: repoDir, head: head}.body()
		sum := sha256.Sum256(body)
		hdr, _ := json.Marshal(map[string]string{"Accept-Encoding": "gzip", "Content-Length": fmt.Sprint(len(body)),
			"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/bench", "X-Github-Delivery": deliveryID("floor", n),
			"X-Github-Event": "push", "X-Github-Hook-Id": "123456789", "X-Hub-Signature-256": "sha256=" + hex.EncodeToString(sum[:])})
		rows[i] = floorRow{delivery: deliveryID("floor", n), headers: string(hdr), hash: sum[:], body: body}
	}
	return rows
}

// floorInsert inserts rows (an event and its payload each) into a fresh database with Conveyor's schema
// (made by the store itself, so indexes match), through database/sql and
// the same modernc driver and pragmas (WAL, synchronous=FULL), batch rows
// per transaction, without HTTP, signatures or duplicate checks. It
// returns rows per second.
func (h *harness) floorInsert(rows []floorRow, batch int) float64 {
	h.repos++
	path := filepath.Join(h.tmp, fmt.Sprintf("floor%d.db", h.repos))
	defer func() {
		for _, suf := range []string{"", "-wal", "-shm"} {
			os.Remove(path + suf)
		}
	}()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, path, sqlstore.Options{})
	if err != nil {
		h.fail("floor database: %v", err)
	}
	org, err := st.EnsureOrg(ctx, "default")
	if err != nil {
		h.fail("floor database: %v", err)
	}
	repo := &store.Repo{OrgID: org.ID, Name: "octo/repo", URL: "file:///nowhere", Forge: "github", Secret: "s", Branch: "main"}
	if err := st.CreateRepo(ctx, repo); err != nil {
		h.fail("floor database: %v", err)
	}
	st.Close()

	db, err := dbsql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"+
		"&_pragma=foreign_keys(1)&_txlock=immediate")
	if err != nil {
		h.fail("floor database: %v", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		h.fail("floor database: %v", err)
	}
	t0 := time.Now()
	for c := range slices.Chunk(rows, batch) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			h.fail("floor: %v", err)
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO events (org_id, repo_id, source, forge, name, delivery_id, body_hash,
			received, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`)
		if err != nil {
			h.fail("floor: %v", err)
		}
		payload, err := tx.PrepareContext(ctx, `INSERT INTO event_payloads (event_id, headers, body) VALUES ($1, $2, $3)`)
		if err != nil {
			h.fail("floor: %v", err)
		}
		now := time.Now().UnixMicro()
		for _, r := range c {
			res, err := stmt.ExecContext(ctx, org.ID, repo.ID, "webhook", "github", "push", r.delivery, r.hash, now, store.EventPending)
			if err != nil {
				h.fail("floor: %v", err)
			}
			id, err := res.LastInsertId()
			if err != nil {
				h.fail("floor: %v", err)
			}
			if _, err := payload.ExecContext(ctx, id, r.headers, r.body); err != nil {
				h.fail("floor: %v", err)
			}
		}
		stmt.Close()
		payload.Close()
		if err := tx.Commit(); err != nil {
			h.fail("floor: %v", err)
		}
	}
	return float64(len(rows)) / time.Since(t0).Seconds()
}

func medianF(fs []float64) float64 {
	s := slices.Clone(fs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtRate(f float64) string { return fmt.Sprintf("%.0f/s", f) }

// fmtMs shows a latency with a tenth of a millisecond, so that one just
// under a target does not print as the target.
func fmtMs(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// serverIntake: signed webhook intake on SQLite, sustained and burst, vs
// raw batched inserts of the same rows.
func serverIntake(h *harness) []row {
	// The floor first, alone on the machine.
	frows := floorRowsFor("/tmp/octo-repo", pseudoSHA(0))
	var batched, small, single []float64
	for range h.n {
		batched = append(batched, h.floorInsert(frows, floorBatch))
		small = append(small, h.floorInsert(frows, intakeFewClients))
		single = append(single, h.floorInsert(frows[:1000], 1))
		if h.verbose {
			fmt.Fprintf(os.Stderr, "  floor: %.0f rows/s (batch %d), %.0f (batch %d), %.0f (1 per tx)\n",
				batched[len(batched)-1], floorBatch, small[len(small)-1], intakeFewClients, single[len(single)-1])
		}
	}
	floor := medianF(batched)
	floorCol := fmtRate(floor) + " (raw)"
	var rows []row

	for _, v := range []struct {
		skip    bool
		clients int
		name    string
		note    string
	}{
		{false, intakeClients, "processor busy", "pushes to main at the repository's HEAD, which has no workflow: every event is also claimed, " +
			"read with git (ls-tree) and finished by the server on the same 2 CPUs"},
		{true, intakeClients, "[skip ci]", "the same pushes with [skip ci] in the head commit: events are parsed and finished without git"},
		{true, intakeFewClients, "[skip ci], 64 clients", "as the row above with half the clients"},
	} {
		t := h.intakeServer("intake")
		defer t.srv.stop() // on failure; stop is idempotent
		res := t.sustained(v.skip, v.clients)
		t.srv.stop()
		stored, states := h.storedEvents(t.srv.data)
		if res.accepted == 0 {
			h.fail("no webhook accepted: %s\n%s", res.firstErr, t.srv.logTail())
		}
		rate := float64(res.accepted) / res.elapsed.Seconds()
		p50, p99 := percentile(res.lat, 50), percentile(res.lat, 99)
		errNote := ""
		if res.failed+res.duplicate > 0 {
			errNote = fmt.Sprintf("; %d failed, %d duplicate (first: %s)", res.failed, res.duplicate, res.firstErr)
		}
		rows = append(rows,
			row{name: "intake sustained, " + v.name, ours: fmtRate(rate), floor: floorCol, ratio: fmt.Sprintf("%.2fx", rate/floor),
				target: ">= 5000/s", ok: okIf(rate >= 5000),
				comment: fmt.Sprintf("%d clients, %d-byte signed push payloads, %s measured after %s warm-up, %d accepted (202)%s; %s. Floor: raw inserts of the same rows, %d per transaction (%s with %d per transaction), median of %d",
					v.clients, len(push{seq: 1, repoDir: t.repoDir, head: t.head}.body()), intakeWindow, intakeWarmUp, res.accepted, errNote, v.note, floorBatch, fmtRate(medianF(small)), intakeFewClients, h.n)},
			row{name: "intake p99 latency, " + v.name, ours: fmtMs(p99), floor: "-", ratio: "-", target: "< 50 ms", ok: okIf(p99 < 50*time.Millisecond),
				comment: fmt.Sprintf("client-side, request written to 202 read; p50 %s, max %s; %s; the processor had finished %d of the %d stored events when the server was stopped",
					fmtMs(p50), fmtMs(percentile(res.lat, 100)), res.cpu, states[store.EventDone], len(stored))},
		)
	}

	// Burst, then SIGKILL, then count what the database holds.
	t := h.intakeServer("burst")
	defer t.srv.stop()
	res := t.burst()
	rss := t.srv.rss()
	t.srv.kill()
	stored, states := h.storedEvents(t.srv.data)
	lost := 0
	for _, id := range res.acceptedIDs {
		if !stored[id] {
			lost++
		}
	}
	rate := float64(res.accepted) / res.elapsed.Seconds()
	ok := okIf(lost == 0 && res.accepted == burstSize && len(stored) == burstSize)
	rows = append(rows,
		row{name: "intake burst 10,000", ours: fmt.Sprintf("%d/%d stored, %d lost", len(stored), res.accepted, lost), floor: "-", ratio: "-",
			target: "10000 accepted, 0 lost", ok: ok,
			comment: fmt.Sprintf("%d sent by %d clients in %s (%s, p99 %s); %d answered 202, %d 200, %d failed%s; server killed with SIGKILL right after, "+
				"then count(*) of events read from its SQLite file: %d (by state %v); RSS before the kill %s; %s",
				burstSize, intakeClients, fmtDur(res.elapsed), fmtRate(rate), fmtDur(percentile(res.lat, 99)), res.accepted, res.duplicate, res.failed,
				firstErr(res.firstErr), len(stored), states, fmtMB(rss), res.cpu)},
		row{name: "raw SQLite insert, 1 row per tx", ours: fmtRate(medianF(single)), floor: "-", ratio: "-", target: "-", ok: "-",
			comment: "for scale: one fsynced commit per row (same schema, pragmas and rows), median of " + fmt.Sprint(h.n)},
	)
	return rows
}

func firstErr(s string) string {
	if s == "" {
		return ""
	}
	return " (first error: " + s + ")"
}
