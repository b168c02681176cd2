package sqlstore

import (
	"context"
	dbsql "database/sql"
	"errors"
	"slices"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// quotaLock is the advisory-lock space that serialises the concurrent-jobs
// quota check per organisation on PostgreSQL (see Lease).
const quotaLock = int64(7122) << 40

// quotaFull is Lease's condition that the job's organisation is below its
// maximum of concurrent jobs (or has none). On SQLite, whose writer is
// alone, it is exact; PostgreSQL's replicas recount under quotaLock.
const quotaFull = ` AND NOT EXISTS (SELECT 1 FROM quotas q WHERE q.org_id = j.org_id AND q.max_jobs > 0
	AND q.max_jobs <= (SELECT COUNT(*) FROM jobs x WHERE x.org_id = j.org_id AND x.status = 'running'))`

// Quota returns an organisation's limits (zero values when none were set).
func (s *DB) Quota(ctx context.Context, orgID int64) (*store.Quota, error) {
	return s.quota(ctx, s.r, orgID)
}

func (s *DB) quota(ctx context.Context, q querier, orgID int64) (*store.Quota, error) {
	out := &store.Quota{OrgID: orgID}
	var updated int64
	err := q.QueryRowContext(ctx, `SELECT max_jobs, max_timeout_minutes, monthly_build_seconds, updated
		FROM quotas WHERE org_id = $1`, orgID).Scan(&out.MaxConcurrentJobs, &out.MaxTimeoutMinutes, &out.MonthlyBuildSeconds, &updated)
	if errors.Is(err, dbsql.ErrNoRows) {
		return out, nil
	}
	if err != nil {
		return nil, mapErr("store.Quota", err)
	}
	out.Updated = tm(updated)
	return out, nil
}

// SetQuota replaces an organisation's limits and sets q.Updated.
func (s *DB) SetQuota(ctx context.Context, q *store.Quota) error {
	const op = "store.SetQuota"
	if q.MaxConcurrentJobs < 0 || q.MaxTimeoutMinutes < 0 || q.MonthlyBuildSeconds < 0 {
		return errs.E(op, errs.Invalid, "quota limits cannot be negative (0 is no limit)")
	}
	t := now()
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM orgs WHERE id = $1`, q.OrgID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return errs.E(op, errs.NotFound, "no organisation %d", q.OrgID)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO quotas (org_id, max_jobs, max_timeout_minutes, monthly_build_seconds, updated)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org_id) DO UPDATE SET max_jobs = excluded.max_jobs,
			max_timeout_minutes = excluded.max_timeout_minutes, monthly_build_seconds = excluded.monthly_build_seconds,
			updated = excluded.updated`, q.OrgID, q.MaxConcurrentJobs, q.MaxTimeoutMinutes, q.MonthlyBuildSeconds, us(t))
		return err
	})
	if err == nil {
		q.Updated = t
	}
	return err
}

// Usage returns an organisation's metered build time in month.
func (s *DB) Usage(ctx context.Context, orgID int64, month string) (*store.Usage, error) {
	if _, err := time.Parse("2006-01", month); err != nil {
		return nil, errs.E("store.Usage", errs.Invalid, "month %q is not YYYY-MM", month)
	}
	u := &store.Usage{OrgID: orgID, Month: month}
	var ms int64
	err := s.r.QueryRowContext(ctx, `SELECT build_ms, jobs FROM build_usage WHERE org_id = $1 AND month = $2`,
		orgID, month).Scan(&ms, &u.Jobs)
	if err != nil && !errors.Is(err, dbsql.ErrNoRows) {
		return nil, mapErr("store.Usage", err)
	}
	u.Build = time.Duration(ms) * time.Millisecond
	return u, nil
}

// meter records a completed job's build time on the job and adds it to its
// organisation's month, in Complete's transaction.
func (s *DB) meter(ctx context.Context, tx *dbsql.Tx, jobID int64, build time.Duration, t time.Time) error {
	ms := max(build.Milliseconds(), 0)
	var orgID int64
	if err := tx.QueryRowContext(ctx, `UPDATE jobs SET build_ms = $1 WHERE id = $2 RETURNING org_id`, ms, jobID).Scan(&orgID); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO build_usage (org_id, month, build_ms, jobs) VALUES ($1, $2, $3, 1)
		ON CONFLICT (org_id, month) DO UPDATE SET build_ms = build_usage.build_ms + excluded.build_ms,
		jobs = build_usage.jobs + 1`, orgID, store.Month(t), ms)
	return err
}

// quotaRecount is Lease's check on PostgreSQL that orgID is still below its
// maximum of concurrent jobs, made alone under the organisation's advisory
// lock: replicas leasing in parallel each saw the count before the others
// committed. It reports false when the organisation is full.
func (s *DB) quotaRecount(ctx context.Context, tx *dbsql.Tx, orgID int64) (bool, error) {
	var maxJobs int
	err := tx.QueryRowContext(ctx, `SELECT max_jobs FROM quotas WHERE org_id = $1`, orgID).Scan(&maxJobs)
	if errors.Is(err, dbsql.ErrNoRows) || (err == nil && maxJobs <= 0) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, quotaLock|orgID); err != nil {
		return false, err
	}
	var running int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs WHERE org_id = $1 AND status = 'running'`,
		orgID).Scan(&running); err != nil {
		return false, err
	}
	return running < maxJobs, nil
}

// qQuotaWait finds the jobs of a run ($1) or one job ($2) that are in the
// queue (not held by a concurrency group or a blocked run) while their
// organisation runs its maximum of concurrent jobs: Lease's quotaFull, negated.
const qQuotaWait = `SELECT j.id FROM jobs j WHERE (j.run_id = $1 OR j.id = $2) AND j.status = 'queued' AND j.held = 0
	AND EXISTS (SELECT 1 FROM quotas q WHERE q.org_id = j.org_id AND q.max_jobs > 0
	AND q.max_jobs <= (SELECT COUNT(*) FROM jobs x WHERE x.org_id = j.org_id AND x.status = 'running'))`

// markQuotaWait sets QuotaWait on the jobs of js (all of run runID, or the
// one job jobID) that wait for their organisation's quota.
func (s *DB) markQuotaWait(ctx context.Context, runID, jobID int64, js []*store.Job) error {
	if !slices.ContainsFunc(js, func(j *store.Job) bool { return j.Status == store.StatusQueued }) {
		return nil
	}
	ids, err := queryAll(ctx, s.r, func(sc scanner) (int64, error) {
		var id int64
		return id, sc.Scan(&id)
	}, qQuotaWait, runID, jobID)
	if err != nil {
		return err
	}
	for _, j := range js {
		j.QuotaWait = slices.Contains(ids, j.ID)
	}
	return nil
}
