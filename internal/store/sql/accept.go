package sqlstore

import (
	"context"
	dbsql "database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/fnv"
	"slices"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/secrets"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// dedupeWindow is how long an equal body counts as a duplicate delivery.
const dedupeWindow = 24 * time.Hour

// lookupSizes are the lengths of the IN lists that find earlier copies of
// a batch's events: a list is padded (with its last value) to the next
// size, so the few statements are prepared once instead of parsed per
// batch. The largest bounds one list, far below both dialects' limits on
// parameters.
var lookupSizes = []int{1, 4, 16, 64, 256}

// lookupSize is the smallest of lookupSizes that holds n values.
func lookupSize(n int) int {
	for _, k := range lookupSizes {
		if n <= k {
			return k
		}
	}
	return lookupSizes[len(lookupSizes)-1]
}

// padded is vals grown to n values by repeating the last one.
func padded(vals []any, n int) []any {
	for len(vals) < n {
		vals = append(vals, vals[len(vals)-1])
	}
	return vals
}

const qRepoOrg = `SELECT org_id FROM repos WHERE id = $1`

// writerQueries are the statements of the webhook group commit and of the
// event processor's claims, prepared once on SQLite's writer (see
// prepareWriter).
func writerQueries(s *DB) []string {
	qs := []string{qRepoOrg, s.insertEventQuery(), qInsertPayload,
		s.claimEventsQuery(), s.holdEventQuery(), qEventDone, qEventFailed}
	qs = append(qs, runQueries...)
	qs = append(qs, s.claimStatusesQuery())
	for _, n := range lookupSizes {
		qs = append(qs, qEventsByDelivery(n), qEventsByBody(n))
	}
	return qs
}

// Accept stores evs in one transaction, skipping duplicates (same delivery
// id, or same body hash within 24 h, for the same repository), including
// duplicates inside evs. Each stored event gets its ID, OrgID (from its
// repository), State and Received set.
func (s *DB) Accept(ctx context.Context, evs []*store.Event) ([]store.Accepted, error) {
	return s.acceptMore(ctx, evs, nil, nil)
}

// acceptsMore: SQLite's transactions take more events (its one writer
// holds the database anyway); PostgreSQL's lock their events' keys once,
// in order, so that concurrent batches cannot deadlock (lockDedupeKeys).
func (s *DB) acceptsMore() bool { return s.dialect == dialectSQLite }

// acceptMore is Accept of evs and then, on SQLite, of each slice more
// returns (more may be nil), in one transaction: the group commit inserts
// events while the next ones come instead of waiting for them first.
// hdrs, when not nil, are the events' storedHeaders, encoded by their
// callers (and more returns them with its events): the single writer then
// spends no time on them.
func (s *DB) acceptMore(ctx context.Context, evs []*store.Event, hdrs []string, more func() ([]*store.Event, []string)) ([]store.Accepted, error) {
	const op = "store.Accept"
	if len(evs) == 0 {
		return nil, nil
	}
	// Every event taken, should the transaction be tried again.
	all, allHdrs := slices.Clip(evs), slices.Clip(hdrs)
	var take func() ([]*store.Event, []string)
	if more != nil && s.acceptsMore() {
		take = func() ([]*store.Event, []string) {
			evs, hdrs := more()
			all, allHdrs = append(all, evs...), append(allHdrs, hdrs...)
			return evs, hdrs
		}
	}
	var out []store.Accepted
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		var err error
		out, err = s.acceptTx(ctx, tx, all, allHdrs, take)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// dedupeKey names what makes two events of a repository equal.
type dedupeKey struct {
	repo int64
	kind byte // 'd': delivery id, 'h': body hash
	val  string
}

// seenEvent is the newest stored event with a dedupeKey.
type seenEvent struct {
	id       int64
	received time.Time
}

// acceptTx is Accept inside tx, of evs (with their stored headers hdrs,
// or nil) and, when take is not nil, of what it returns until it returns
// none. Each slice costs a few lookups (one per repository and kind,
// however many events) plus one insert per new event: it is the webhook
// hot path.
func (s *DB) acceptTx(ctx context.Context, tx *dbsql.Tx, evs []*store.Event, hdrs []string, take func() ([]*store.Event, []string)) ([]store.Accepted, error) {
	b := &acceptBatch{s: s, tx: tx, t: now(), orgs: map[int64]int64{}, seen: map[dedupeKey]seenEvent{}}
	var err error
	if b.insert, err = s.txStmt(ctx, tx, s.insertEventQuery()); err != nil {
		return nil, err
	}
	defer b.insert.Close()
	if s.dialect == dialectSQLite { // PostgreSQL inserts both rows in one statement
		if b.payload, err = s.txStmt(ctx, tx, qInsertPayload); err != nil {
			return nil, err
		}
		defer b.payload.Close()
	}
	out := make([]store.Accepted, 0, len(evs))
	for len(evs) > 0 {
		if err := b.scope(ctx, evs); err != nil {
			return nil, err
		}
		for i, ev := range evs {
			a, err := b.accept(ctx, ev, hdrs, i)
			if err != nil {
				return nil, err
			}
			out = append(out, a)
		}
		if take == nil {
			break
		}
		evs, hdrs = take()
	}
	return out, nil
}

// acceptBatch is the state of one Accept transaction: its statements,
// the organisation of each repository and the deliveries and bodies seen
// (stored, or accepted earlier in the batch).
type acceptBatch struct {
	s               *DB
	tx              *dbsql.Tx
	t               time.Time
	insert, payload *dbsql.Stmt // payload: SQLite only
	orgs            map[int64]int64
	seen            map[dedupeKey]seenEvent
}

// scope checks the events, locks their de-duplication keys and loads, per
// repository, its organisation and the deliveries and bodies seen (added
// to those of the transaction's earlier events).
func (b *acceptBatch) scope(ctx context.Context, evs []*store.Event) error {
	const op = "store.Accept"
	byRepo := map[int64][]*store.Event{}
	for _, ev := range evs {
		if ev == nil || ev.RepoID == 0 {
			return errs.E(op, errs.Invalid, "an event needs a repository")
		}
		byRepo[ev.RepoID] = append(byRepo[ev.RepoID], ev)
	}
	if err := b.s.lockDedupeKeys(ctx, b.tx, evs); err != nil {
		return err
	}
	for repo, group := range byRepo {
		if _, ok := b.orgs[repo]; !ok {
			var org int64
			if err := b.s.wq(b.tx).QueryRowContext(ctx, qRepoOrg, repo).Scan(&org); err != nil {
				return notFound(op, err, "no repository %d", repo)
			}
			b.orgs[repo] = org
		}
		if err := b.s.loadSeen(ctx, b.tx, repo, group, b.t, b.seen); err != nil {
			return err
		}
	}
	return nil
}

// accept stores ev (hdrs[i] its stored headers, when hdrs is not nil), or
// finds it a duplicate of a delivery or body seen.
func (b *acceptBatch) accept(ctx context.Context, ev *store.Event, hdrs []string, i int) (store.Accepted, error) {
	const op = "store.Accept"
	org := b.orgs[ev.RepoID]
	if ev.OrgID != 0 && ev.OrgID != org {
		return store.Accepted{}, errs.E(op, errs.Invalid, "event of repository %d names another organisation", ev.RepoID)
	}
	received := receivedAt(ev, b.t)
	dk := dedupeKey{ev.RepoID, 'd', ev.DeliveryID}
	hk := dedupeKey{ev.RepoID, 'h', string(ev.BodyHash)}
	if p, ok := b.seen[dk]; ok && ev.DeliveryID != "" {
		return store.Accepted{ID: p.id, Duplicate: true}, nil
	}
	if p, ok := b.seen[hk]; ok && len(ev.BodyHash) > 0 && p.received.After(received.Add(-dedupeWindow)) {
		// An earlier copy of the delivery itself wins (SQLite did not look it up).
		id, err := b.s.storedDelivery(ctx, b.tx, ev)
		if err != nil || id != 0 {
			return store.Accepted{ID: id, Duplicate: true}, err
		}
		return store.Accepted{ID: p.id, Duplicate: true}, nil
	}
	var headers string
	if hdrs != nil {
		headers = hdrs[i]
	} else {
		headers = storedHeaders(ev)
	}
	id, err := b.s.insertEvent(ctx, b.insert, b.payload, org, ev, headers, received)
	if errs.Is(err, errs.Conflict) { // SQLite: the delivery id is stored already
		if id, err = b.s.storedDelivery(ctx, b.tx, ev); err == nil && id == 0 {
			err = errs.E(op, errs.Other, "delivery %q of repository %d conflicts but is not stored", ev.DeliveryID, ev.RepoID)
		}
		if err != nil {
			return store.Accepted{}, err
		}
		b.seen[dk] = seenEvent{id, received}
		return store.Accepted{ID: id, Duplicate: true}, nil
	}
	if err != nil {
		return store.Accepted{}, err
	}
	ev.ID, ev.OrgID, ev.Received, ev.State = id, org, received, store.EventPending
	if ev.DeliveryID != "" {
		b.seen[dk] = seenEvent{id, received}
	}
	if len(ev.BodyHash) > 0 {
		b.seen[hk] = seenEvent{id, received}
	}
	return store.Accepted{ID: id}, nil
}

// storedDelivery is the id of the stored event with ev's delivery id in
// its repository, 0 if none. SQLite's batches do not look delivery ids up
// beforehand: the unique index finds a stored copy as the row is inserted
// (see insertEventQuery), and the rare duplicate is looked up alone.
func (s *DB) storedDelivery(ctx context.Context, tx *dbsql.Tx, ev *store.Event) (int64, error) {
	if s.dialect != dialectSQLite || ev.DeliveryID == "" {
		return 0, nil // PostgreSQL's loadSeen looked it up
	}
	var d string
	var id, received int64
	err := s.wq(tx).QueryRowContext(ctx, qEventsByDelivery(1), ev.RepoID, ev.DeliveryID).Scan(&d, &id, &received)
	if errors.Is(err, dbsql.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

func receivedAt(ev *store.Event, t time.Time) time.Time {
	if ev.Received.IsZero() {
		return t
	}
	return ev.Received.UTC().Truncate(time.Microsecond)
}

// loadSeen adds to seen the stored events of repo that evs could
// duplicate: same delivery id, or same body hash inside the window of the
// oldest of evs.
func (s *DB) loadSeen(ctx context.Context, tx *dbsql.Tx, repo int64, evs []*store.Event, t time.Time, seen map[dedupeKey]seenEvent) error {
	var deliveries, hashes []any
	oldest := t
	for _, ev := range evs {
		if ev.DeliveryID != "" && s.dialect != dialectSQLite { // SQLite: see storedDelivery
			deliveries = append(deliveries, ev.DeliveryID)
		}
		if len(ev.BodyHash) > 0 {
			hashes = append(hashes, ev.BodyHash)
			if r := receivedAt(ev, t); r.Before(oldest) {
				oldest = r
			}
		}
	}
	maxList := lookupSizes[len(lookupSizes)-1]
	for c := range slices.Chunk(deliveries, maxList) {
		n := lookupSize(len(c))
		err := eachRow(ctx, s.wq(tx), func(sc scanner) error {
			var d string
			var id, received int64
			if err := sc.Scan(&d, &id, &received); err != nil {
				return err
			}
			seen[dedupeKey{repo, 'd', d}] = seenEvent{id, tm(received)}
			return nil
		}, qEventsByDelivery(n), padded(append([]any{repo}, c...), n+1)...)
		if err != nil {
			return err
		}
	}
	for c := range slices.Chunk(hashes, maxList) {
		n := lookupSize(len(c))
		err := eachRow(ctx, s.wq(tx), func(sc scanner) error {
			var h []byte
			var id, received int64
			if err := sc.Scan(&h, &id, &received); err != nil {
				return err
			}
			k := dedupeKey{repo, 'h', string(h)}
			if p, ok := seen[k]; !ok || tm(received).After(p.received) {
				seen[k] = seenEvent{id, tm(received)}
			}
			return nil
		}, qEventsByBody(n), padded(append([]any{repo, us(oldest.Add(-dedupeWindow))}, c...), n+2)...)
		if err != nil {
			return err
		}
	}
	return nil
}

// qEventsByDelivery and qEventsByBody find earlier copies; the condition on
// delivery_id repeats the partial index's, so that SQLite uses the index.
func qEventsByDelivery(n int) string {
	return `SELECT delivery_id, id, received FROM events WHERE repo_id = $1 AND delivery_id <> ''
		AND delivery_id IN (` + placeholders(2, n) + `)`
}

func qEventsByBody(n int) string {
	return `SELECT body_hash, id, received FROM events WHERE repo_id = $1 AND received > $2
		AND body_hash IN (` + placeholders(3, n) + `)`
}

// insertEventQuery inserts an event; on PostgreSQL its payload too, in
// the same statement (one round trip), taking $10 and $11 as headers and
// body. On SQLite a stored delivery id (events_delivery, the only unique
// index of events) inserts nothing: insertEvent reports a conflict.
// (Finding stored equal bodies in the insert too, with a NOT EXISTS on
// events_body, made each insert ~50% dearer than the batch's one lookup.)
func (s *DB) insertEventQuery() string {
	q := `INSERT INTO events (org_id, repo_id, source, forge, name, delivery_id, body_hash, received, state)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	if s.dialect == dialectSQLite {
		q += ` ON CONFLICT DO NOTHING`
	}
	if s.dialect == dialectPostgres {
		q = `WITH e AS (` + q + ` RETURNING id)
			INSERT INTO event_payloads (event_id, headers, body) SELECT id, $10, $11 FROM e RETURNING event_id`
	}
	return q
}

const qInsertPayload = `INSERT INTO event_payloads (event_id, headers, body) VALUES ($1, $2, $3)`

// insertEvent stores an event and its payload (headers: storedHeaders(ev)).
// SQLite reports the id without the cost of a result set; PostgreSQL has
// no last-insert id.
func (s *DB) insertEvent(ctx context.Context, stmt, payload *dbsql.Stmt, org int64, ev *store.Event, headers string, received time.Time) (int64, error) {
	args := []any{org, ev.RepoID, ev.Source, ev.Forge, ev.Name, ev.DeliveryID, blob(ev.BodyHash), us(received), store.EventPending}
	if s.dialect == dialectPostgres {
		var id int64
		err := stmt.QueryRowContext(ctx, append(args, headers, blob(ev.Body))...).Scan(&id)
		return id, err
	}
	res, err := stmt.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if err == nil {
			err = errs.E("store.Accept", errs.Conflict, "delivery %q is stored already", ev.DeliveryID)
		}
		return 0, err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	_, err = payload.ExecContext(ctx, id, headers, blob(ev.Body))
	return id, err
}

// storedHeaders are ev's headers as stored: without the ones carrying
// secrets (GitLab's token is the webhook secret itself; signatures are
// useless once verified). This is the only place events' headers are
// written, so no path stores them.
func storedHeaders(ev *store.Event) string {
	return encodeHeaders(ev.Headers)
}

// encodeHeaders is encode(secrets.DropSecretHeaders(h)), byte for byte,
// without the map copy and reflection: it runs on the single writer once
// per stored webhook.
func encodeHeaders(h map[string]string) string {
	if h == nil {
		return "null"
	}
	var keyBuf [32]string
	keys := keyBuf[:0]
	size := 2
	for k, v := range h {
		if !secrets.IsSecretHeader(k) {
			keys = append(keys, k)
			size += len(k) + len(v) + 6
		}
	}
	slices.Sort(keys)
	b := make([]byte, 0, size)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, h[k])
	}
	return string(append(b, '}'))
}

// appendJSONString appends s as encoding/json writes it: plain printable
// ASCII as is, anything else through json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // strings always marshal
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// eachRow runs query and calls f on every row.
func eachRow(ctx context.Context, q querier, f func(scanner) error, query string, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// lockDedupeKeys makes concurrent PostgreSQL batches with a common delivery
// id or body hash take turns, so each sees the other's row before deciding.
// Keys are locked in ascending order: two batches cannot deadlock. SQLite
// needs nothing: its writer is already alone.
func (s *DB) lockDedupeKeys(ctx context.Context, tx *dbsql.Tx, evs []*store.Event) error {
	if s.dialect != dialectPostgres {
		return nil
	}
	keys := make([]int64, 0, 2*len(evs))
	key := func(repo int64, kind byte, val []byte) int64 {
		h := fnv.New64a()
		binary.Write(h, binary.LittleEndian, repo) // hashes never fail
		h.Write([]byte{kind})
		h.Write(val)
		return int64(h.Sum64())
	}
	for _, ev := range evs {
		if ev.DeliveryID != "" {
			keys = append(keys, key(ev.RepoID, 'd', []byte(ev.DeliveryID)))
		}
		if len(ev.BodyHash) > 0 {
			keys = append(keys, key(ev.RepoID, 'h', ev.BodyHash))
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(k) FROM
		(SELECT k FROM unnest($1::bigint[]) AS u(k) ORDER BY k) AS sorted`, keys)
	return err
}
