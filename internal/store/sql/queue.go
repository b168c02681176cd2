package sqlstore

import (
	"cmp"
	"context"
	dbsql "database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// Lock order on PostgreSQL, to keep deadlocks rare (they are retried):
// a run before its jobs (Complete, CancelRun, Expire); Lease alone takes a
// job first, skipping locked ones, and touches its run only while queued.

// repoLimitLock is the advisory-lock space that serialises RepoLimit
// checks per repository on PostgreSQL.
const repoLimitLock = int64(7121) << 40

// Lease takes the best queued job that req may run and marks it running
// under a new fencing token.
func (s *DB) Lease(ctx context.Context, req store.LeaseRequest) (*store.Lease, error) {
	const op = "store.Lease"
	if req.Owner == "" || req.TTL <= 0 {
		return nil, errs.E(op, errs.Invalid, "a lease needs an owner and a positive TTL")
	}
	var out *store.Lease
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		out = nil
		t := now()
		var excluded, fullOrgs []int64 // repositories and organisations found at their limit by a recount
		for range 8 {
			q, args := s.leaseQuery(req, excluded, fullOrgs...)
			var id, runID, repoID, orgID int64
			err := tx.QueryRowContext(ctx, q, args...).Scan(&id, &runID, &repoID, &orgID)
			if errors.Is(err, dbsql.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
			if s.dialect == dialectPostgres && req.RepoLimit > 0 {
				// Replicas leasing in parallel each saw the count
				// before the others committed: count again, alone.
				if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, repoLimitLock|repoID); err != nil {
					return err
				}
				var running int
				if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs WHERE repo_id = $1 AND status = 'running'`,
					repoID).Scan(&running); err != nil {
					return err
				}
				if running >= req.RepoLimit {
					excluded = append(excluded, repoID)
					continue
				}
			}
			if s.dialect == dialectPostgres {
				ok, err := s.quotaRecount(ctx, tx, orgID)
				if err != nil {
					return err
				}
				if !ok {
					fullOrgs = append(fullOrgs, orgID)
					continue
				}
			}
			token, err := s.nextToken(ctx, tx)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE jobs SET status = 'running', attempt = attempt + 1,
				lease_owner = $1, lease_token = $2, lease_expires = $3, started = $4, cancel_requested = 0
				WHERE id = $5`, req.Owner, token, us(t.Add(req.TTL)), us(t), id); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE runs SET status = 'running', started = $1
				WHERE id = $2 AND status = 'queued'`, us(t), runID); err != nil {
				return err
			}
			var spec []byte
			job, err := scanJob(withSpec{tx.QueryRowContext(ctx, `SELECT `+jobCols+`, spec FROM jobs WHERE id = $1`, id), &spec})
			if err != nil {
				return err
			}
			job.Spec = spec
			run, err := scanRun(tx.QueryRowContext(ctx, `SELECT `+runCols+` FROM runs WHERE id = $1`, runID))
			if err != nil {
				return err
			}
			out = &store.Lease{Job: job, Run: run}
			return nil
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// withSpec scans a job row followed by its spec column (Lease alone reads
// it: lists of jobs leave the compiled jobs out).
type withSpec struct {
	sc   scanner
	spec *[]byte
}

func (w withSpec) Scan(dest ...any) error { return w.sc.Scan(append(dest, w.spec)...) }

// leaseQuery selects the next job for req: highest priority, then oldest,
// among queued jobs of runs that are not blocked, of organisations below
// their quota of concurrent jobs. Every condition is in the query, so a job
// that req may not run is passed over, never taken and never in the way of
// the jobs behind it. excluded repositories and fullOrgs are passed over.
func (s *DB) leaseQuery(req store.LeaseRequest, excluded []int64, fullOrgs ...int64) (string, []any) {
	q := `SELECT j.id, j.run_id, j.repo_id, j.org_id FROM jobs j WHERE j.status = 'queued' AND j.held = 0` + quotaFull
	var args []any
	if req.OrgID != 0 {
		args = append(args, req.OrgID)
		q += fmt.Sprintf(` AND j.org_id = $%d`, len(args))
	}
	if req.Labels != nil {
		args = append(args, labelKey(req.Labels))
		q += s.labelsFit(len(args))
	}
	if len(req.Backends) > 0 {
		q += ` AND j.backend IN (` + placeholders(len(args)+1, len(req.Backends)) + `)`
		for _, b := range req.Backends {
			args = append(args, b)
		}
	}
	if len(excluded) > 0 {
		q += ` AND j.repo_id NOT IN (` + placeholders(len(args)+1, len(excluded)) + `)`
		for _, r := range excluded {
			args = append(args, r)
		}
	}
	if len(fullOrgs) > 0 {
		q += ` AND j.org_id NOT IN (` + placeholders(len(args)+1, len(fullOrgs)) + `)`
		for _, o := range fullOrgs {
			args = append(args, o)
		}
	}
	if req.RepoLimit > 0 {
		args = append(args, req.RepoLimit)
		q += fmt.Sprintf(` AND (SELECT COUNT(*) FROM jobs x WHERE x.repo_id = j.repo_id AND x.status = 'running') < $%d`, len(args))
	}
	return q + ` ORDER BY j.priority DESC, j.id LIMIT 1` + s.skipLocked(), args
}

// labelKey is the label_key column for labels: store.NormalizeLabels as
// JSON. Matching compares these keys only, so Go alone folds case.
func labelKey(labels []string) string { return encode(store.NormalizeLabels(labels)) }

// labelsFit is the condition that the job's label_key is a subset of the
// worker's, passed as parameter $n (a labelKey): PostgreSQL's jsonb
// containment, or SQLite's json_each with nothing left over.
func (s *DB) labelsFit(n int) string {
	if s.dialect == dialectPostgres {
		return fmt.Sprintf(` AND j.label_key::jsonb <@ $%d::jsonb`, n)
	}
	return fmt.Sprintf(` AND NOT EXISTS (SELECT 1 FROM json_each(j.label_key) k
		WHERE k.value NOT IN (SELECT w.value FROM json_each($%d) w))`, n)
}

// nextToken returns a fencing token larger than every one before it.
func (s *DB) nextToken(ctx context.Context, tx *dbsql.Tx) (int64, error) {
	var v int64
	q := `UPDATE counters SET value = value + 1 WHERE name = 'lease_token' RETURNING value`
	if s.dialect == dialectPostgres {
		q = `SELECT nextval('lease_tokens')`
	}
	err := tx.QueryRowContext(ctx, q).Scan(&v)
	return v, err
}

// Heartbeat extends a lease and reports whether its run was cancelled.
func (s *DB) Heartbeat(ctx context.Context, jobID, token int64, ttl time.Duration) (bool, error) {
	const op = "store.Heartbeat"
	if ttl <= 0 {
		return false, errs.E(op, errs.Invalid, "non-positive TTL")
	}
	var cancel bool
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE jobs SET lease_expires = $1
			WHERE id = $2 AND lease_token = $3 AND status = 'running' RETURNING cancel_requested`,
			us(now().Add(ttl)), jobID, token).Scan(&cancel)
		if errors.Is(err, dbsql.ErrNoRows) {
			return s.lostLease(ctx, tx, op, jobID, token)
		}
		return err
	})
	return cancel, err
}

// lostLease explains why token does not hold jobID: NotFound or Conflict.
func (s *DB) lostLease(ctx context.Context, tx *dbsql.Tx, op string, jobID, token int64) error {
	var status string
	var holder int64
	err := tx.QueryRowContext(ctx, `SELECT status, lease_token FROM jobs WHERE id = $1`, jobID).Scan(&status, &holder)
	if err != nil {
		return notFound(op, err, "no job %d", jobID)
	}
	return errs.E(op, errs.Conflict, "job %d: lease %d lost (job is %s under lease %d)", jobID, token, status, holder)
}

// Complete ends a leased job and moves its run on (see store.Queue).
func (s *DB) Complete(ctx context.Context, jobID, token int64, c store.Completion) error {
	const op = "store.Complete"
	if !store.Terminal(c.Status) {
		return errs.E(op, errs.Invalid, "job cannot complete as %q", c.Status)
	}
	return s.write(ctx, op, func(tx *dbsql.Tx) error {
		var runID int64
		if err := tx.QueryRowContext(ctx, `SELECT run_id FROM jobs WHERE id = $1`, jobID).Scan(&runID); err != nil {
			return notFound(op, err, "no job %d", jobID)
		}
		if err := s.lockRun(ctx, tx, runID); err != nil {
			return err
		}
		t := now()
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET status = $1, outputs = $2, results = $3, error = $4,
			finished = $5, lease_expires = 0 WHERE id = $6 AND lease_token = $7 AND status = 'running'`,
			c.Status, encode(c.Outputs), blob(c.Results), c.Error, us(t), jobID, token)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return err
			}
			return s.lostLease(ctx, tx, op, jobID, token)
		}
		if err := s.meter(ctx, tx, jobID, c.Build, t); err != nil {
			return err
		}
		return s.advanceRun(ctx, tx, runID, t)
	})
}

// lockRun takes a run's row lock (PostgreSQL), so that jobs of one run
// finishing together see each other and the run ends exactly once.
func (s *DB) lockRun(ctx context.Context, tx *dbsql.Tx, runID int64) error {
	if s.dialect != dialectPostgres {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT id FROM runs WHERE id = $1`+s.forUpdate, runID)
	return err
}

// qExpired finds lost leases through the jobs_lease index. It has no ORDER
// BY: that makes SQLite scan every job in id order instead.
const qExpired = `SELECT id, run_id FROM jobs WHERE status = 'running' AND lease_expires < $1 LIMIT 500`

// Expire ends the leases that expired before at: the job is queued again
// while attempts remain, else it ends with StatusError (cancelled if its
// run was being cancelled). Each interrupted attempt is recorded. Jobs that
// completed, even as failures, are never retried.
func (s *DB) Expire(ctx context.Context, at time.Time) ([]store.Expired, error) {
	const op = "store.Expire"
	t := at.UTC().Truncate(time.Microsecond)
	var out []store.Expired
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		out = nil
		type lost struct{ id, run int64 }
		ls, err := queryAll(ctx, tx, func(sc scanner) (lost, error) {
			var l lost
			return l, sc.Scan(&l.id, &l.run)
		}, qExpired, us(t))
		if err != nil {
			return err
		}
		slices.SortFunc(ls, func(a, b lost) int { return cmp.Compare(a.id, b.id) })
		for _, l := range ls {
			if err := s.lockRun(ctx, tx, l.run); err != nil {
				return err
			}
			var attempt, maxAttempts int
			var owner string
			var started int64
			var cancel bool
			// Checked again under the lock: another replica may have
			// expired it, or the worker completed it, meanwhile.
			err := tx.QueryRowContext(ctx, `SELECT attempt, max_attempts, lease_owner, started, cancel_requested
				FROM jobs WHERE id = $1 AND status = 'running' AND lease_expires < $2`+s.forUpdate, l.id, us(t)).
				Scan(&attempt, &maxAttempts, &owner, &started, &cancel)
			if errors.Is(err, dbsql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			reason := fmt.Sprintf("lease expired: the worker was lost (attempt %d)", attempt)
			if strings.HasPrefix(owner, "agent:") {
				reason = fmt.Sprintf("agent lost (%s): lease expired (attempt %d)", owner, attempt)
			}
			e := store.Expired{JobID: l.id, RunID: l.run, Reason: reason}
			if _, err := tx.ExecContext(ctx, `INSERT INTO job_attempts (job_id, attempt, owner, started, finished, reason)
				VALUES ($1, $2, $3, $4, $5, $6)`, l.id, attempt, owner, started, us(t), e.Reason); err != nil {
				return err
			}
			switch {
			case cancel:
				e.Reason = "cancelled: the worker was lost while the run was being cancelled"
				_, err = tx.ExecContext(ctx, `UPDATE jobs SET status = 'cancelled', finished = $1, error = $2,
					lease_expires = 0 WHERE id = $3`, us(t), e.Reason, l.id)
			case attempt < maxAttempts:
				e.Requeue = true
				_, err = tx.ExecContext(ctx, `UPDATE jobs SET status = 'queued', queued = $1, started = 0,
					lease_owner = '', lease_expires = 0 WHERE id = $2`, us(t), l.id)
			default:
				_, err = tx.ExecContext(ctx, `UPDATE jobs SET status = 'error', finished = $1, error = $2,
					lease_expires = 0 WHERE id = $3`, us(t), e.Reason, l.id)
			}
			if err != nil {
				return err
			}
			if !e.Requeue {
				if err := s.advanceRun(ctx, tx, l.run, t); err != nil {
					return err
				}
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Release hands a leased job back (see store.Queue). max_attempts grows by
// one so that the attempt it interrupted does not count against retries.
func (s *DB) Release(ctx context.Context, jobID, token int64, reason string) error {
	const op = "store.Release"
	if reason == "" {
		reason = "released by the worker"
	}
	return s.write(ctx, op, func(tx *dbsql.Tx) error {
		var runID int64
		if err := tx.QueryRowContext(ctx, `SELECT run_id FROM jobs WHERE id = $1`, jobID).Scan(&runID); err != nil {
			return notFound(op, err, "no job %d", jobID)
		}
		if err := s.lockRun(ctx, tx, runID); err != nil {
			return err
		}
		var attempt int
		var owner string
		var started int64
		var cancel bool
		err := tx.QueryRowContext(ctx, `SELECT attempt, lease_owner, started, cancel_requested FROM jobs
			WHERE id = $1 AND lease_token = $2 AND status = 'running'`+s.forUpdate, jobID, token).
			Scan(&attempt, &owner, &started, &cancel)
		if errors.Is(err, dbsql.ErrNoRows) {
			return s.lostLease(ctx, tx, op, jobID, token)
		}
		if err != nil {
			return err
		}
		t := now()
		if _, err := tx.ExecContext(ctx, `INSERT INTO job_attempts (job_id, attempt, owner, started, finished, reason)
			VALUES ($1, $2, $3, $4, $5, $6)`, jobID, attempt, owner, started, us(t), reason); err != nil {
			return err
		}
		if cancel {
			if _, err := tx.ExecContext(ctx, `UPDATE jobs SET status = 'cancelled', finished = $1, error = $2,
				lease_expires = 0 WHERE id = $3`, us(t), "cancelled: released while the run was being cancelled", jobID); err != nil {
				return err
			}
			return s.advanceRun(ctx, tx, runID, t)
		}
		_, err = tx.ExecContext(ctx, `UPDATE jobs SET status = 'queued', queued = $1, started = 0, lease_owner = '',
			lease_expires = 0, max_attempts = max_attempts + 1 WHERE id = $2`, us(t), jobID)
		return err
	})
}
