package sqlstore

import (
	"context"
	dbsql "database/sql"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// CreateJobToken stores a job's token and deletes expired ones.
func (s *DB) CreateJobToken(ctx context.Context, t *store.JobToken) error {
	const op = "store.CreateJobToken"
	if len(t.Hash) == 0 || t.OrgID == 0 || t.JobID == 0 || t.Expires.IsZero() {
		return errs.E(op, errs.Invalid, "a job token needs a hash, an organisation, a job and an expiry")
	}
	return s.write(ctx, op, func(tx *dbsql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM job_tokens WHERE expires <= $1`, us(now())); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO job_tokens (hash, org_id, run_id, job_id, lease_token, read_run, expires)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, blob(t.Hash), t.OrgID, t.RunID, t.JobID, t.Lease, boolInt(t.ReadRun), us(t.Expires))
		return err
	})
}

// JobTokenByHash returns a token whose job still runs under its lease.
func (s *DB) JobTokenByHash(ctx context.Context, hash []byte) (*store.JobToken, error) {
	const op = "store.JobTokenByHash"
	var t store.JobToken
	var readRun, expires int64
	err := s.r.QueryRowContext(ctx, `SELECT t.hash, t.org_id, t.run_id, t.job_id, t.lease_token, t.read_run, t.expires
		FROM job_tokens t JOIN jobs j ON j.id = t.job_id
		WHERE t.hash = $1 AND t.expires > $2 AND j.status = 'running' AND j.lease_token = t.lease_token`,
		blob(hash), us(now())).Scan(&t.Hash, &t.OrgID, &t.RunID, &t.JobID, &t.Lease, &readRun, &expires)
	if err == dbsql.ErrNoRows {
		return nil, errs.E(op, errs.NotFound, "job token")
	}
	if err != nil {
		return nil, mapErr(op, err)
	}
	t.ReadRun, t.Expires = readRun != 0, tm(expires)
	return &t, nil
}

// RevokeJobTokens deletes a job's tokens.
func (s *DB) RevokeJobTokens(ctx context.Context, jobID int64) error {
	return s.write(ctx, "store.RevokeJobTokens", func(tx *dbsql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM job_tokens WHERE job_id = $1`, jobID)
		return err
	})
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
