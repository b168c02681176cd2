package sqlstore

import (
	"context"
	dbsql "database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// Values of jobs.gate.
const (
	gateNone   = 0 // no protection
	gateReview = 1 // waits for a reviewer
	gateTimer  = 2 // reviewed (or needs no review): waits for wait_until
)

const envCols = `org_id, repo_id, name, protection, branch, created, updated`

func scanEnv(sc scanner) (*store.Environment, error) {
	var e store.Environment
	var prot string
	var created, updated int64
	err := sc.Scan(&e.OrgID, &e.RepoID, &e.Name, &prot, &e.Branch, &created, &updated)
	if err == nil && prot != "" {
		err = json.Unmarshal([]byte(prot), &e.Protection)
	}
	e.Created, e.Updated = tm(created), tm(updated)
	return &e, err
}

// repoOfOrg is NotFound unless the repository is the organisation's.
func repoOfOrg(ctx context.Context, q querier, op string, orgID, repoID int64) error {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM repos WHERE id = $1 AND org_id = $2`, repoID, orgID).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return errs.E(op, errs.NotFound, "repository %d", repoID)
	}
	return nil
}

// PutEnvironment creates or replaces an environment.
func (s *DB) PutEnvironment(ctx context.Context, e *store.Environment) error {
	const op = "store.PutEnvironment"
	if e.OrgID == 0 || e.RepoID == 0 || e.Name == "" {
		return errs.E(op, errs.Invalid, "an environment needs an organisation, a repository and a name")
	}
	if e.WaitMinutes < 0 {
		return errs.E(op, errs.Invalid, "wait timer: %d minutes is negative", e.WaitMinutes)
	}
	t := now()
	var out *store.Environment
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		if err := repoOfOrg(ctx, tx, op, e.OrgID, e.RepoID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO environments (org_id, repo_id, name, name_key, protection, branch, created, updated)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
			ON CONFLICT (repo_id, name_key) DO UPDATE SET protection = excluded.protection, updated = excluded.updated`,
			e.OrgID, e.RepoID, e.Name, store.EnvKey(e.Name), encode(e.Protection), e.Branch, us(t))
		if err != nil {
			return err
		}
		out, err = scanEnv(tx.QueryRowContext(ctx, `SELECT `+envCols+` FROM environments WHERE repo_id = $1 AND name_key = $2`,
			e.RepoID, store.EnvKey(e.Name)))
		return err
	})
	if err == nil {
		*e = *out
	}
	return err
}

// EnsureEnvironment returns an environment, made unprotected when new.
func (s *DB) EnsureEnvironment(ctx context.Context, orgID, repoID int64, name, branch string) (*store.Environment, error) {
	const op = "store.EnsureEnvironment"
	if e, err := s.GetEnvironment(ctx, orgID, repoID, name); !errs.Is(err, errs.NotFound) {
		return e, err
	}
	if name == "" {
		return nil, errs.E(op, errs.Invalid, "an environment needs a name")
	}
	var out *store.Environment
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		if err := repoOfOrg(ctx, tx, op, orgID, repoID); err != nil {
			return err
		}
		t := us(now())
		if _, err := tx.ExecContext(ctx, `INSERT INTO environments (org_id, repo_id, name, name_key, protection, branch, created, updated)
			VALUES ($1, $2, $3, $4, '{}', $5, $6, $6) ON CONFLICT (repo_id, name_key) DO NOTHING`,
			orgID, repoID, name, store.EnvKey(name), branch, t); err != nil {
			return err
		}
		var err error
		out, err = scanEnv(tx.QueryRowContext(ctx, `SELECT `+envCols+` FROM environments WHERE repo_id = $1 AND name_key = $2`,
			repoID, store.EnvKey(name)))
		return err
	})
	return out, err
}

// GetEnvironment returns one environment of a repository of the organisation.
func (s *DB) GetEnvironment(ctx context.Context, orgID, repoID int64, name string) (*store.Environment, error) {
	const op = "store.GetEnvironment"
	e, err := scanEnv(s.r.QueryRowContext(ctx, `SELECT `+envCols+` FROM environments
		WHERE org_id = $1 AND repo_id = $2 AND name_key = $3`, orgID, repoID, store.EnvKey(name)))
	if err != nil {
		return nil, notFound(op, err, "environment %q", name)
	}
	return e, nil
}

// ListEnvironments lists a repository's environments by name.
func (s *DB) ListEnvironments(ctx context.Context, orgID, repoID int64) ([]*store.Environment, error) {
	const op = "store.ListEnvironments"
	if err := repoOfOrg(ctx, s.r, op, orgID, repoID); err != nil {
		return nil, mapErr(op, err)
	}
	out, err := queryAll(ctx, s.r, scanEnv, `SELECT `+envCols+` FROM environments
		WHERE org_id = $1 AND repo_id = $2 ORDER BY name_key`, orgID, repoID)
	return out, mapErr(op, err)
}

// DeleteEnvironment removes an environment with its secrets and variables.
func (s *DB) DeleteEnvironment(ctx context.Context, orgID, repoID int64, name string) error {
	const op = "store.DeleteEnvironment"
	return s.write(ctx, op, func(tx *dbsql.Tx) error {
		var spelled string
		err := tx.QueryRowContext(ctx, `DELETE FROM environments WHERE org_id = $1 AND repo_id = $2 AND name_key = $3
			RETURNING name`, orgID, repoID, store.EnvKey(name)).Scan(&spelled)
		if err != nil {
			return notFound(op, err, "environment %q", name)
		}
		return deleteEnvValues(ctx, tx, orgID, repoID, spelled)
	})
}

// deleteEnvValues removes an environment's secrets and variables.
func deleteEnvValues(ctx context.Context, tx *dbsql.Tx, orgID, repoID int64, name string) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM secrets WHERE org_id = $1 AND repo_id = $2 AND env = $3`, orgID, repoID, name)
	return err
}

// DeleteBranchEnvironments removes the environments made for a branch.
func (s *DB) DeleteBranchEnvironments(ctx context.Context, orgID, repoID int64, branch string) ([]string, error) {
	const op = "store.DeleteBranchEnvironments"
	var names []string
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		var err error
		names, err = queryAll(ctx, tx, func(sc scanner) (string, error) {
			var n string
			return n, sc.Scan(&n)
		}, `DELETE FROM environments WHERE org_id = $1 AND repo_id = $2 AND branch = $3 AND branch <> '' RETURNING name`,
			orgID, repoID, branch)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := deleteEnvValues(ctx, tx, orgID, repoID, n); err != nil {
				return err
			}
		}
		return nil
	})
	return names, err
}

// gateOf is the jobs.gate value of a new job's deployment.
func gateOf(d *store.Deployment) (gate int, waitMS int64) {
	if !d.Gated() {
		return gateNone, 0
	}
	waitMS = int64(d.WaitMinutes) * int64(time.Minute/time.Millisecond)
	if len(d.Reviewers) > 0 {
		return gateReview, waitMS
	}
	return gateTimer, waitMS
}

// readySQL is the status (and timer) a job takes when it becomes ready,
// its queued time being $1: a gated one awaits approval.
const readySQL = `status = CASE WHEN gate <> 0 THEN 'awaiting_approval' ELSE 'queued' END,
	wait_until = CASE WHEN gate <> 0 THEN $1 + wait_ms * 1000 ELSE 0 END,
	held = CASE WHEN gate <> 0 THEN 0 ELSE ` + heldSQLCase + ` END`

// DecideJob records a reviewer's decision on a job awaiting approval.
func (s *DB) DecideJob(ctx context.Context, orgID, jobID int64, d store.Decision) (*store.Job, error) {
	const op = "store.DecideJob"
	if d.Decision != store.Approved && d.Decision != store.Rejected {
		return nil, errs.E(op, errs.Invalid, "decision %q (approved or rejected)", d.Decision)
	}
	var out *store.Job
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		var runID int64
		if err := tx.QueryRowContext(ctx, `SELECT run_id FROM jobs WHERE id = $1 AND org_id = $2`, jobID, orgID).Scan(&runID); err != nil {
			return notFound(op, err, "job %d", jobID)
		}
		// Lock order: the run before its jobs.
		if _, err := s.getRun(ctx, tx, op, orgID, runID, s.forUpdate); err != nil {
			return err
		}
		j, err := scanJob(tx.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = $1`+s.forUpdate, jobID))
		if err != nil {
			return err
		}
		if j.Status != store.StatusAwaitingApproval || j.Deploy == nil || len(j.Deploy.Reviewers) == 0 {
			return errs.E(op, errs.Conflict, "job %s is %s, not awaiting a review", j.Key, j.Status)
		}
		if already := approvedBy(j.Deploy); already != "" {
			return errs.E(op, errs.Conflict, "job %s was already approved by %s; it waits for its timer", j.Key, already)
		}
		t := now()
		if d.At.IsZero() {
			d.At = t
		}
		j.Deploy.Decisions = append(j.Deploy.Decisions, d)
		if d.Decision == store.Rejected {
			msg := "rejected by " + d.User
			if d.Comment != "" {
				msg += ": " + d.Comment
			}
			if _, err := tx.ExecContext(ctx, `UPDATE jobs SET status = 'failure', finished = $1, error = $2, deploy = $3, gate = 0
				WHERE id = $4`, us(t), msg, encode(j.Deploy), jobID); err != nil {
				return err
			}
			if err := s.advanceRun(ctx, tx, runID, t); err != nil {
				return err
			}
		} else {
			if _, err := tx.ExecContext(ctx, `UPDATE jobs SET gate = $1, deploy = $2 WHERE id = $3`,
				gateTimer, encode(j.Deploy), jobID); err != nil {
				return err
			}
			if !t.Before(j.Deploy.WaitUntil) {
				if err := s.openGate(ctx, tx, j, t); err != nil {
					return err
				}
			}
		}
		out, err = scanJob(tx.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = $1`, jobID))
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func approvedBy(d *store.Deployment) string {
	for _, x := range d.Decisions {
		if x.Decision == store.Approved {
			return x.User
		}
	}
	return ""
}

// openGate queues a job that awaited approval: held back like any queued
// job of a blocked run or of a job-level concurrency group.
func (s *DB) openGate(ctx context.Context, tx *dbsql.Tx, j *store.Job, t time.Time) error {
	held := `CASE (SELECT status FROM runs WHERE id = jobs.run_id) WHEN 'blocked' THEN ` + fmt.Sprint(heldRun) +
		` WHEN 'awaiting_approval' THEN ` + fmt.Sprint(heldRunGate) + ` ELSE ` + heldSQLCase + ` END`
	res, err := tx.ExecContext(ctx, `UPDATE jobs SET status = 'queued', queued = $1, gate = 0, held = `+held+`
		WHERE id = $2 AND status = 'awaiting_approval'`, us(t), j.ID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	return s.settleJobGroups(ctx, tx, j.RunID, t)
}

// OpenGates queues the jobs whose review is done and timer ended.
func (s *DB) OpenGates(ctx context.Context, at time.Time) (int, error) {
	const op = "store.OpenGates"
	ids, err := queryAll(ctx, s.r, func(sc scanner) (int64, error) {
		var id int64
		return id, sc.Scan(&id)
	}, `SELECT id FROM jobs WHERE status = 'awaiting_approval' AND wait_until <= $1 AND gate = $2
		ORDER BY id LIMIT 100`, us(at), gateTimer)
	if err != nil || len(ids) == 0 {
		return 0, mapErr(op, err)
	}
	n := 0
	for _, id := range ids {
		err := s.write(ctx, op, func(tx *dbsql.Tx) error {
			var runID int64
			if err := tx.QueryRowContext(ctx, `SELECT run_id FROM jobs WHERE id = $1`, id).Scan(&runID); err != nil {
				return err
			}
			if err := tx.QueryRowContext(ctx, `SELECT id FROM runs WHERE id = $1`+s.forUpdate, runID).Scan(&runID); err != nil {
				return err
			}
			j, err := scanJob(tx.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = $1`+s.forUpdate, id))
			if err != nil {
				return err
			}
			if j.Status != store.StatusAwaitingApproval || at.Before(j.Deploy.WaitUntil) {
				return nil // decided or cancelled meanwhile
			}
			n++
			return s.openGate(ctx, tx, j, at)
		})
		if err != nil && !errs.Is(err, errs.NotFound) {
			return n, err
		}
	}
	return n, nil
}

// ApproveRun lets a run awaiting approval start.
func (s *DB) ApproveRun(ctx context.Context, orgID, runID int64) (*store.Run, error) {
	const op = "store.ApproveRun"
	var out *store.Run
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		r, err := s.getRun(ctx, tx, op, orgID, runID, s.forUpdate)
		if err != nil {
			return err
		}
		if r.Status != store.StatusAwaitingApproval {
			return errs.E(op, errs.Conflict, "run %d is %s, not awaiting approval", runID, r.Status)
		}
		t := now()
		status, held := store.StatusQueued, heldSQLCase
		if r.ConcurrencyGroup != "" {
			blocked, err := s.enterGroup(ctx, tx, r, t)
			if err != nil {
				return err
			}
			if blocked {
				status, held = store.StatusBlocked, fmt.Sprint(heldRun)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET status = $1 WHERE id = $2`, status, runID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET held = `+held+`, queued = $1 WHERE run_id = $2 AND status = 'queued'`,
			us(t), runID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET held = 0 WHERE run_id = $1 AND status <> 'queued'`, runID); err != nil {
			return err
		}
		if status == store.StatusQueued {
			if err := s.advanceRun(ctx, tx, runID, t); err != nil {
				return err
			}
		}
		out, err = s.getRun(ctx, tx, op, orgID, runID, "")
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
