package sqlstore

import (
	"cmp"
	"context"
	dbsql "database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// ClaimEvents leases up to n pending events, or processing ones whose
// lease ended, to owner until now+ttl, oldest first.
func (s *DB) ClaimEvents(ctx context.Context, owner string, n int, ttl time.Duration) ([]*store.Event, error) {
	const op = "store.ClaimEvents"
	if owner == "" || n <= 0 {
		return nil, errs.E(op, errs.Invalid, "claim needs an owner and a positive count")
	}
	t := now()
	var evs []*store.Event
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		var err error
		evs, err = queryAll(ctx, s.wq(tx), scanEvent, s.claimEventsQuery(), store.EventProcessing, owner, us(t.Add(ttl)), us(t), n)
		return err
	})
	if err != nil {
		return nil, err
	}
	// RETURNING promises no order.
	slices.SortFunc(evs, func(a, b *store.Event) int { return cmp.Compare(a.ID, b.ID) })
	// Payloads never change: they are read after the claim, off the writer.
	if err := s.loadPayloads(ctx, evs); err != nil {
		return nil, mapErr(op, err)
	}
	return evs, nil
}

// loadPayloads fills the headers and bodies of evs.
func (s *DB) loadPayloads(ctx context.Context, evs []*store.Event) error {
	byID := make(map[int64]*store.Event, len(evs))
	ids := make([]any, 0, len(evs))
	for _, ev := range evs {
		byID[ev.ID] = ev
		ids = append(ids, ev.ID)
	}
	maxList := lookupSizes[len(lookupSizes)-1]
	for c := range slices.Chunk(ids, maxList) {
		n := lookupSize(len(c))
		st, err := s.prepared(ctx, qPayloads(n))
		if err != nil {
			return err
		}
		rows, err := st.QueryContext(ctx, padded(c, n)...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			var headers string
			var body []byte
			if err := rows.Scan(&id, &headers, &body); err != nil {
				rows.Close()
				return err
			}
			if ev := byID[id]; ev != nil {
				ev.Headers, ev.Body = decodeMap(headers), body
				delete(byID, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	for id := range byID {
		return fmt.Errorf("event %d has no payload", id)
	}
	return nil
}

func qPayloads(n int) string {
	return `SELECT event_id, ` + payloadCols + ` FROM event_payloads WHERE event_id IN (` + placeholders(1, n) + `)`
}

// claimEventsQuery takes open events in id order; "state IN" matches the
// events_open index, so done events (most of the table) are never read.
func (s *DB) claimEventsQuery() string {
	return `UPDATE events SET state = $1, lease_owner = $2, lease_expires = $3, attempts = attempts + 1
		WHERE id IN (SELECT id FROM events
			WHERE state IN ('pending', 'processing') AND (state = 'pending' OR lease_expires < $4)
			ORDER BY id LIMIT $5` + s.skipLocked() + `)
		RETURNING ` + eventCols
}

// skipLocked makes PostgreSQL replicas pass over rows another is taking.
func (s *DB) skipLocked() string {
	if s.dialect == dialectPostgres {
		return " FOR NO KEY UPDATE SKIP LOCKED"
	}
	return ""
}

// holdEvent checks, inside tx, that owner still holds the event's claim.
func (s *DB) holdEvent(ctx context.Context, tx *dbsql.Tx, op string, id int64, owner string) error {
	var state, holder string
	err := s.wq(tx).QueryRowContext(ctx, s.holdEventQuery(), id).Scan(&state, &holder)
	if err != nil {
		return notFound(op, err, "no event %d", id)
	}
	if state != store.EventProcessing || holder != owner {
		return errs.E(op, errs.Conflict, "event %d is not claimed by %s (state %s, owner %q)", id, owner, state, holder)
	}
	return nil
}

func (s *DB) holdEventQuery() string {
	return `SELECT state, lease_owner FROM events WHERE id = $1` + s.forUpdate
}

const (
	qEventDone   = `UPDATE events SET state = $1, lease_expires = 0, error = '' WHERE id = $2`
	qEventFailed = `UPDATE events SET state = $1, lease_expires = 0, error = $2 WHERE id = $3`
)

// FinishEvent writes the runs of an event and marks it done, in one
// transaction, provided owner still holds its claim.
func (s *DB) FinishEvent(ctx context.Context, eventID int64, owner string, runs []store.NewRun) ([]*store.Run, error) {
	const op = "store.FinishEvent"
	var out []*store.Run
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		var err error
		out, err = s.finishTx(ctx, tx, op, owner, store.EventOutcome{EventID: eventID, Runs: runs})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FailEvent marks an event failed with reason, provided owner holds it.
func (s *DB) FailEvent(ctx context.Context, eventID int64, owner, reason string) error {
	const op = "store.FailEvent"
	return s.write(ctx, op, func(tx *dbsql.Tx) error {
		return s.failTx(ctx, tx, op, eventID, owner, reason)
	})
}

func (s *DB) failTx(ctx context.Context, tx *dbsql.Tx, op string, eventID int64, owner, reason string) error {
	if err := s.holdEvent(ctx, tx, op, eventID, owner); err != nil {
		return err
	}
	_, err := s.wq(tx).ExecContext(ctx, qEventFailed, store.EventFailed, reason, eventID)
	return err
}

// FinishEvents ends a processed batch in one transaction (see
// store.Events).
func (s *DB) FinishEvents(ctx context.Context, owner string, outs []store.EventOutcome) []store.FinishResult {
	const op = "store.FinishEvents"
	res := make([]store.FinishResult, len(outs))
	if len(outs) == 0 {
		return res
	}
	// Replicas' batches lock repositories (PostgreSQL, run numbering) in
	// one order, by repository then event, so that they never deadlock.
	order := make([]int, len(outs))
	for i := range order {
		order[i] = i
	}
	repoOf := func(o store.EventOutcome) int64 {
		if len(o.Runs) > 0 && o.Runs[0].Run != nil {
			return o.Runs[0].Run.RepoID
		}
		return 0
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(repoOf(outs[a]), repoOf(outs[b])), cmp.Compare(outs[a].EventID, outs[b].EventID))
	})
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		clear(res)
		for _, i := range order {
			runs, err := s.finishTx(ctx, tx, op, owner, outs[i])
			if k := errs.KindOf(err); err != nil && (k == errs.Conflict || k == errs.NotFound) {
				res[i].Err = err // fenced: nothing of it was written
				continue
			}
			if err != nil {
				return err
			}
			res[i].Runs = runs
		}
		return nil
	})
	if err == nil || len(outs) == 1 {
		if err != nil {
			res[0] = store.FinishResult{Err: err}
		}
		return res
	}
	// One outcome (or the database) failed the shared transaction: write
	// each alone so that the others are not held back by it.
	for i, o := range outs {
		if o.Fail != "" {
			res[i] = store.FinishResult{Err: s.FailEvent(ctx, o.EventID, owner, o.Fail)}
		} else {
			runs, err := s.FinishEvent(ctx, o.EventID, owner, o.Runs)
			res[i] = store.FinishResult{Runs: runs, Err: err}
		}
	}
	return res
}

// finishTx writes one outcome inside tx, provided owner holds the claim.
func (s *DB) finishTx(ctx context.Context, tx *dbsql.Tx, op, owner string, o store.EventOutcome) ([]*store.Run, error) {
	if o.Fail != "" {
		return nil, s.failTx(ctx, tx, op, o.EventID, owner, o.Fail)
	}
	if err := s.holdEvent(ctx, tx, op, o.EventID, owner); err != nil {
		return nil, err
	}
	for _, nr := range o.Runs {
		if nr.Run != nil && nr.Run.EventID == 0 {
			nr.Run.EventID = o.EventID
		}
	}
	out, err := s.createRuns(ctx, tx, o.Runs)
	if err != nil {
		return nil, err
	}
	_, err = s.wq(tx).ExecContext(ctx, qEventDone, store.EventDone, o.EventID)
	return out, err
}

// GetEvent returns an event of the organisation.
func (s *DB) GetEvent(ctx context.Context, orgID, id int64) (*store.Event, error) {
	ev, err := scanEventPayload(s.r.QueryRowContext(ctx, `SELECT `+eventCols+`, `+payloadCols+`
		FROM events JOIN event_payloads ON event_id = id WHERE id = $1 AND org_id = $2`, id, orgID))
	if err != nil {
		return nil, notFound("store.GetEvent", err, "no event %d", id)
	}
	return ev, nil
}

// CronLast returns the last scheduled time fired for key.
func (s *DB) CronLast(ctx context.Context, key string) (time.Time, error) {
	var last int64
	err := s.r.QueryRowContext(ctx, `SELECT last FROM crons WHERE cron_key = $1`, key).Scan(&last)
	if errors.Is(err, dbsql.ErrNoRows) {
		return time.Time{}, nil
	}
	return tm(last), mapErr("store.CronLast", err)
}

// FireCron moves key's last fired time to scheduled and accepts ev, in one
// transaction, only when scheduled is later than the stored time. The
// upsert's WHERE is the compare-and-set: of replicas racing for the same
// tick exactly one sees a row come back.
func (s *DB) FireCron(ctx context.Context, key string, scheduled time.Time, ev *store.Event) (bool, error) {
	const op = "store.FireCron"
	if key == "" || scheduled.IsZero() {
		return false, errs.E(op, errs.Invalid, "cron needs a key and a time")
	}
	fired := false
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		fired = false
		rows, err := tx.QueryContext(ctx, `INSERT INTO crons (cron_key, last) VALUES ($1, $2)
			ON CONFLICT (cron_key) DO UPDATE SET last = excluded.last WHERE crons.last < excluded.last
			RETURNING last`, key, us(scheduled))
		if err != nil {
			return err
		}
		fired = rows.Next()
		rows.Close()
		if err := rows.Err(); err != nil || !fired || ev == nil {
			return err
		}
		if ev.Source == "" {
			ev.Source = "cron"
		}
		if ev.DeliveryID == "" {
			// A second line of defence against double firing.
			ev.DeliveryID = fmt.Sprintf("cron:%s@%d", key, scheduled.Unix())
		}
		_, err = s.acceptTx(ctx, tx, []*store.Event{ev}, nil, nil)
		return err
	})
	return fired, err
}
