package sqlstore

import (
	"context"
	dbsql "database/sql"
	"errors"
	"time"

	"github.com/conveyor-ci/conveyor/internal/ratelimit"
)

// FailureWait is how long key waits before its next attempt.
func (s *DB) FailureWait(ctx context.Context, key string, lim ratelimit.Limit, now time.Time) (time.Duration, error) {
	lim = lim.Norm()
	var tokens float64
	var at int64
	err := s.r.QueryRowContext(ctx, `SELECT tokens, at_ms FROM failure_buckets WHERE key = $1`, key).Scan(&tokens, &at)
	if errors.Is(err, dbsql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, mapErr("store.FailureWait", err)
	}
	return lim.WaitFor(lim.Refill(tokens, time.UnixMilli(at), now)), nil
}

// failureRefilled is a stored bucket's tokens brought up to $3 (ms) at one
// per $4 ms, at most $5: ratelimit.Limit.Refill in SQL, so that one
// statement takes a token however many replicas fail at once.
const failureRefilled = `(CASE WHEN CAST($3 AS BIGINT) <= failure_buckets.at_ms THEN failure_buckets.tokens
	WHEN failure_buckets.tokens + (CAST($3 AS BIGINT) - failure_buckets.at_ms) / CAST($4 AS DOUBLE PRECISION) >= CAST($5 AS DOUBLE PRECISION)
		THEN CAST($5 AS DOUBLE PRECISION)
	ELSE failure_buckets.tokens + (CAST($3 AS BIGINT) - failure_buckets.at_ms) / CAST($4 AS DOUBLE PRECISION) END)`

// TakeFailure takes a token from key's bucket, in one statement.
func (s *DB) TakeFailure(ctx context.Context, key string, lim ratelimit.Limit, now time.Time) error {
	const op = "store.TakeFailure"
	lim = lim.Norm()
	keep := max(24*time.Hour, time.Duration(lim.Burst)*lim.Every)
	return s.write(ctx, op, func(tx *dbsql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM failure_buckets WHERE at_ms < $1`, now.Add(-keep).UnixMilli()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO failure_buckets (key, tokens, at_ms) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET
			tokens = CASE WHEN `+failureRefilled+` >= 1 THEN `+failureRefilled+` - 1 ELSE 0 END,
			at_ms = CASE WHEN CAST($3 AS BIGINT) > failure_buckets.at_ms THEN CAST($3 AS BIGINT) ELSE failure_buckets.at_ms END`,
			key, float64(lim.Burst-1), now.UnixMilli(), float64(max(1, lim.Every.Milliseconds())), float64(lim.Burst))
		return err
	})
}

// ResetFailures forgets key's failures.
func (s *DB) ResetFailures(ctx context.Context, key string) error {
	const op = "store.ResetFailures"
	return s.write(ctx, op, func(tx *dbsql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM failure_buckets WHERE key = $1`, key)
		return err
	})
}
