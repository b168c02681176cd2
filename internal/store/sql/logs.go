package sqlstore

import (
	"bytes"
	"cmp"
	"context"
	dbsql "database/sql"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

const qAppendLog = `INSERT INTO log_chunks (job_id, seq, data, compressed, at)
	SELECT $1, COALESCE(MAX(seq), (SELECT MAX(last_seq) FROM log_segments WHERE job_id = $1), 0) + 1, $2, $3, $4
	FROM log_chunks WHERE job_id = $1 RETURNING seq`

// AppendLog stores the next chunk of a job's output under seq = last+1,
// compressed outside the transaction.
func (s *DB) AppendLog(ctx context.Context, jobID int64, data []byte) (int64, error) {
	const op = "store.AppendLog"
	packed, z := s.logz.pack(data)
	var seq int64
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		// The job row lock (PostgreSQL) makes concurrent appends to one
		// job take turns, so seq has no gaps and no duplicates.
		var id int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM jobs WHERE id = $1`+s.forUpdate, jobID).Scan(&id); err != nil {
			return notFound(op, err, "no job %d", jobID)
		}
		return tx.QueryRowContext(ctx, qAppendLog, jobID, blob(packed), b2i(z), us(now())).Scan(&seq)
	})
	if err == nil && s.objects != nil && seq%sealEvery == 0 {
		// The tail goes to the object store as it fills, so a huge log
		// never grows the database; a failure leaves it for the next
		// check, or for MoveLogs once the run has finished.
		_ = s.sealTail(ctx, jobID)
	}
	return seq, err
}

// RetryLog appends data unless it is the job's last chunk already (see
// store.Logs).
func (s *DB) RetryLog(ctx context.Context, jobID, prev int64, data []byte) (int64, bool, error) {
	const op = "store.RetryLog"
	packed, z := s.logz.pack(data)
	var seq int64
	var dup bool
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		dup = false
		var id int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM jobs WHERE id = $1`+s.forUpdate, jobID).Scan(&id); err != nil {
			return notFound(op, err, "no job %d", jobID)
		}
		var last, lastZ int64
		var lastData []byte
		err := tx.QueryRowContext(ctx, `SELECT seq, data, compressed FROM log_chunks WHERE job_id = $1 ORDER BY seq DESC LIMIT 1`, jobID).
			Scan(&last, &lastData, &lastZ)
		if err != nil && !errors.Is(err, dbsql.ErrNoRows) {
			return err
		}
		if err == nil && (prev == 0 || last == prev+1) {
			if lastData, err = s.logz.unpack(lastData, lastZ != 0); err != nil {
				return errs.Wrap(op, errs.Other, err)
			}
			if bytes.Equal(lastData, data) {
				seq, dup = last, true
				return nil
			}
		}
		return tx.QueryRowContext(ctx, qAppendLog, jobID, blob(packed), b2i(z), us(now())).Scan(&seq)
	})
	return seq, dup, err
}

// ReadLog returns up to limit chunks of a job of the organisation with
// Seq > after, stopping once they hold store.LogReadBytes. The chunks in
// the database are read first, then the segments before them (see
// logsegments.go), so a move between the two reads loses nothing.
func (s *DB) ReadLog(ctx context.Context, orgID, jobID, after int64, limit int) ([]store.LogChunk, error) {
	if _, err := s.GetJob(ctx, orgID, jobID); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	tail, err := s.readChunks(ctx, jobID, after, limit)
	if err != nil || (len(tail) > 0 && tail[0].Seq == after+1) {
		return tail, err
	}
	size := 0
	page, err := s.readSegments(ctx, jobID, after, limit, nil, &size)
	if err != nil {
		return nil, err
	}
	if len(page) == 0 {
		return tail, nil // no segment holds after+1: the tail as it is
	}
	next := after + 1
	if len(page) > 0 {
		next = page[len(page)-1].Seq + 1
	}
	for _, c := range tail {
		if c.Seq != next || len(page) >= limit || size >= store.LogReadBytes {
			break
		}
		page = append(page, c)
		size += len(c.Data)
		next++
	}
	return page, nil
}

// readChunks reads the database's chunks of a page: rows are scanned one
// at a time, so the rest of the page is never loaded, and a chunk is
// decompressed straight from the driver's buffer.
func (s *DB) readChunks(ctx context.Context, jobID, after int64, limit int) ([]store.LogChunk, error) {
	const op = "store.ReadLog"
	rows, err := s.r.QueryContext(ctx, `SELECT seq, data, compressed, at FROM log_chunks
		WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, jobID, after, limit)
	if err != nil {
		return nil, mapErr(op, err)
	}
	defer rows.Close()
	var out []store.LogChunk
	size := 0
	for size < store.LogReadBytes && rows.Next() {
		c := store.LogChunk{JobID: jobID}
		var raw dbsql.RawBytes
		var z, at int64
		if err := rows.Scan(&c.Seq, &raw, &z, &at); err != nil {
			return nil, mapErr(op, err)
		}
		if c.Data, err = s.logz.unpack(raw, z != 0); err != nil {
			return nil, errs.E(op, errs.Other, "log chunk %d of job %d: %v", c.Seq, jobID, err)
		}
		c.Time = tm(at)
		size += len(c.Data)
		out = append(out, c)
	}
	return out, mapErr(op, rows.Err())
}

// ClaimStatuses returns up to n reports due at now and pushes their next
// attempt to now+ttl, so other replicas skip them while one sends.
func (s *DB) ClaimStatuses(ctx context.Context, at time.Time, n int, ttl time.Duration) ([]*store.StatusReport, error) {
	const op = "store.ClaimStatuses"
	if n <= 0 {
		return nil, errs.E(op, errs.Invalid, "claim needs a positive count")
	}
	var out []*store.StatusReport
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		var err error
		out, err = queryAll(ctx, tx, scanStatus, s.claimStatusesQuery(), us(at.Add(ttl)), us(at), n)
		return err
	})
	if err != nil {
		return nil, err
	}
	// Oldest first: a run's pending status must not overtake its result.
	slices.SortFunc(out, func(a, b *store.StatusReport) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

func (s *DB) claimStatusesQuery() string {
	return `UPDATE statuses SET next_attempt = $1
		WHERE id IN (SELECT id FROM statuses WHERE done = 0 AND next_attempt <= $2 ORDER BY id LIMIT $3` +
		s.skipLocked() + `) RETURNING ` + statusCols
}

// GiveUpStatuses marks reports done with reason, all in one transaction:
// a storm of runs of repositories without a status token must not take
// the writer (and an fsync) once per report.
func (s *DB) GiveUpStatuses(ctx context.Context, ids []int64, reason string) error {
	if len(ids) == 0 {
		return nil
	}
	in, args := inList(ids)
	return s.write(ctx, "store.GiveUpStatuses", func(tx *dbsql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE statuses SET done = 1, attempts = attempts + 1, last_error = $`+
			strconv.Itoa(len(ids)+1)+` WHERE id IN `+in, append(args, reason)...)
		return err
	})
}

// StatusSent marks a report done (errMsg empty, or giveUp), or records
// the failure and when to try again.
func (s *DB) StatusSent(ctx context.Context, id int64, errMsg string, next time.Time, giveUp bool) error {
	const op = "store.StatusSent"
	return s.write(ctx, op, func(tx *dbsql.Tx) error {
		var res dbsql.Result
		var err error
		if errMsg == "" {
			res, err = tx.ExecContext(ctx, `UPDATE statuses SET done = 1, attempts = attempts + 1, last_error = ''
				WHERE id = $1`, id)
		} else {
			res, err = tx.ExecContext(ctx, `UPDATE statuses SET done = $1, attempts = attempts + 1, last_error = $2,
				next_attempt = $3 WHERE id = $4`, b2i(giveUp), errMsg, us(next), id)
		}
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return err
			}
			return errs.E(op, errs.NotFound, "no status report %d", id)
		}
		return nil
	})
}
