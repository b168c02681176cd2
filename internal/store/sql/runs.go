package sqlstore

import (
	"context"
	dbsql "database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

const qNextRunNumber = `SELECT COALESCE(MAX(number), 0) + 1 FROM runs WHERE repo_id = $1`

// CreateRuns writes runs with their jobs in one transaction, subject to
// concurrency groups (see store.Runs).
func (s *DB) CreateRuns(ctx context.Context, runs []store.NewRun) ([]*store.Run, error) {
	var out []*store.Run
	err := s.write(ctx, "store.CreateRuns", func(tx *dbsql.Tx) error {
		var err error
		out, err = s.createRuns(ctx, tx, runs)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// The statements of the event processor's runs, prepared once on SQLite's
// writer (see writerQueries): parsing them again for every run was a
// third of the processor's store time.
const (
	qInsertRun = `INSERT INTO runs (org_id, repo_id, event_id, number, workflow, name,
		event, ref, sha, trigger_source, status, inputs, event_json, workflow_yaml, concurrency_group,
		cancel_in_progress, attempt, rerun_of, created, error)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
		RETURNING id`
	qRunByID   = `SELECT ` + runCols + ` FROM runs WHERE id = $1`
	qInsertJob = `INSERT INTO jobs (run_id, org_id, repo_id, job_key, name, needs, status,
		priority, labels, label_key, backend, max_attempts, outputs, results, error, reused_from, created, queued, finished, held,
		concurrency_group, cancel_in_progress, deploy, gate, wait_ms, wait_until, spec)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
		$23, $24, $25, $26, $27) RETURNING id`
	qRunJobStates = `SELECT id, job_key, status, needs FROM jobs WHERE run_id = $1`
	qRunJobGroups = `SELECT DISTINCT repo_id, concurrency_group FROM jobs WHERE run_id = $1 AND concurrency_group <> ''`
	qRunJobStatus = `SELECT status FROM jobs WHERE run_id = $1`
	qQueueJob     = `UPDATE jobs SET queued = $1, ` + readySQL + ` WHERE id = $2`
	qSupersede    = `UPDATE statuses SET done = 1, last_error = 'superseded by a newer status' WHERE run_id = $1 AND context = $2 AND done = 0`
	qInsertStatus = `INSERT INTO statuses (run_id, repo_id, sha, context, state, description, target_url, next_attempt) VALUES ($1, $2, $3, $4, $5, $6, '', $7)`
	qFinishRun    = `UPDATE runs SET status = $1, finished = $2 WHERE id = $3 AND status IN ('blocked', 'queued', 'running', 'awaiting_approval')`
)

// runQueries are the statements above, for writerQueries.
var runQueries = []string{qInsertRun, qRunByID, qInsertJob, qRunJobStates, qRunJobGroups, qRunJobStatus, qQueueJob,
	qSupersede, qInsertStatus, qFinishRun, qNextRunNumber}

// createRuns inserts runs and their jobs. Each run gets the next Number of
// its repository and a pending commit status. Jobs get their IDs; a job
// without a Status is queued, or waiting when it has needs. Each
// NewRun's Run is overwritten with the run as stored.
func (s *DB) createRuns(ctx context.Context, tx *dbsql.Tx, runs []store.NewRun) ([]*store.Run, error) {
	t := now()
	out := make([]*store.Run, 0, len(runs))
	for _, nr := range runs {
		got, err := s.createRun(ctx, tx, nr, t)
		if err != nil {
			return nil, err
		}
		*nr.Run = *got
		out = append(out, got)
	}
	return out, nil
}

// createRun inserts one run with its jobs and its commit status, settles
// a run that failed before it could start or has nothing left to wait for,
// and returns the run as stored.
func (s *DB) createRun(ctx context.Context, tx *dbsql.Tx, nr store.NewRun, t time.Time) (*store.Run, error) {
	const op = "store.CreateRuns"
	r := nr.Run
	if r == nil || r.RepoID == 0 {
		return nil, errs.E(op, errs.Invalid, "a run needs a repository")
	}
	org, err := s.lockRunRepo(ctx, tx, r)
	if err != nil {
		return nil, err
	}
	// A run that failed before it could start (an invalid workflow file)
	// comes without jobs and is recorded as failed.
	failedAtStart := r.Status == store.StatusFailure && len(nr.Jobs) == 0
	gated := r.Status == store.StatusAwaitingApproval && len(nr.Jobs) > 0
	row := *r
	row.OrgID, row.Created, row.Started, row.Finished = org, t, time.Time{}, time.Time{}
	row.Status = store.StatusQueued
	if row.Attempt == 0 {
		row.Attempt = 1
	}
	if err := s.insertRun(ctx, tx, &row, gated, t); err != nil {
		return nil, err
	}
	if err := s.insertJobs(ctx, tx, &row, nr.Jobs, t); err != nil {
		return nil, err
	}
	if err := s.addStatus(ctx, tx, &row, "pending", pendingDescription(&row, gated), t); err != nil {
		return nil, err
	}
	switch {
	case failedAtStart:
		if err := s.failAtStart(ctx, tx, &row, t); err != nil {
			return nil, err
		}
	case row.Status != store.StatusBlocked && !gated:
		// Re-runs may reuse every job; a run without jobs is done.
		if err := s.advanceRun(ctx, tx, row.ID, t); err != nil {
			return nil, err
		}
	}
	got, err := scanRun(s.wq(tx).QueryRowContext(ctx, qRunByID, row.ID))
	if err != nil {
		return nil, err
	}
	return got, nil
}

// lockRunRepo locks the repository of r (PostgreSQL: its row lock
// serialises numbering and concurrency-group decisions per repository) and
// returns its organisation, which r must not contradict.
func (s *DB) lockRunRepo(ctx context.Context, tx *dbsql.Tx, r *store.Run) (int64, error) {
	const op = "store.CreateRuns"
	var org int64
	if err := s.wq(tx).QueryRowContext(ctx, qRepoOrg+s.forUpdate, r.RepoID).Scan(&org); err != nil {
		return 0, notFound(op, err, "no repository %d", r.RepoID)
	}
	if r.OrgID != 0 && r.OrgID != org {
		return 0, errs.E(op, errs.Invalid, "run of repository %d names another organisation", r.RepoID)
	}
	return org, nil
}

// insertRun numbers row, puts it in its concurrency group (a gated run
// enters once approved), and inserts it, setting row.ID.
func (s *DB) insertRun(ctx context.Context, tx *dbsql.Tx, row *store.Run, gated bool, t time.Time) error {
	q := s.wq(tx)
	if err := q.QueryRowContext(ctx, qNextRunNumber, row.RepoID).Scan(&row.Number); err != nil {
		return err
	}
	if gated {
		row.Status = store.StatusAwaitingApproval
	} else if row.ConcurrencyGroup != "" {
		blocked, err := s.enterGroup(ctx, tx, row, t)
		if err != nil {
			return err
		}
		if blocked {
			row.Status = store.StatusBlocked
		}
	}
	return q.QueryRowContext(ctx, qInsertRun,
		row.OrgID, row.RepoID, row.EventID, row.Number, row.Workflow, row.Name, row.Event, row.Ref, row.SHA,
		row.Trigger, row.Status, encode(row.Inputs), blob(row.EventJSON), blob(row.WorkflowYAML),
		row.ConcurrencyGroup, b2i(row.CancelInProgress), row.Attempt, row.RerunOf, us(t), row.Error).Scan(&row.ID)
}

// pendingDescription is the text of a new run's pending commit status.
func pendingDescription(row *store.Run, gated bool) string {
	switch {
	case row.Status == store.StatusBlocked:
		return fmt.Sprintf("run #%d waits for concurrency group %s", row.Number, row.ConcurrencyGroup)
	case gated:
		return fmt.Sprintf("run #%d waits for a maintainer's approval", row.Number)
	default:
		return fmt.Sprintf("run #%d is queued", row.Number)
	}
}

// failAtStart records row, which came without jobs, as failed, with its
// final commit status.
func (s *DB) failAtStart(ctx context.Context, tx *dbsql.Tx, row *store.Run, t time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE runs SET status = $1, finished = $2 WHERE id = $3`,
		store.StatusFailure, us(t), row.ID); err != nil {
		return err
	}
	row.Status = store.StatusFailure
	state, desc := commitState(row)
	return s.addStatus(ctx, tx, row, state, desc, t)
}

// enterGroup applies r's concurrency group before r is inserted and
// reports whether r must wait. With cancel-in-progress every unfinished
// run of the group is cancelled; otherwise an older waiting run is
// cancelled (only the newest waits) and r waits while another is active.
func (s *DB) enterGroup(ctx context.Context, tx *dbsql.Tx, r *store.Run, t time.Time) (bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, status FROM runs WHERE repo_id = $1 AND concurrency_group = $2 AND concurrency_group <> ''
		AND status IN ('blocked', 'queued', 'running') ORDER BY id`, r.RepoID, r.ConcurrencyGroup)
	if err != nil {
		return false, err
	}
	type member struct {
		id     int64
		status string
	}
	var members []member
	for rows.Next() {
		var m member
		if err := rows.Scan(&m.id, &m.status); err != nil {
			rows.Close()
			return false, err
		}
		members = append(members, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, err
	}
	active := false
	for _, m := range members {
		switch {
		case r.CancelInProgress:
			err = s.cancelRun(ctx, tx, m.id, "cancelled: a newer run entered concurrency group "+r.ConcurrencyGroup, t, false)
		case m.status == store.StatusBlocked:
			err = s.cancelRun(ctx, tx, m.id, "cancelled: superseded by a newer run of concurrency group "+r.ConcurrencyGroup, t, false)
		default:
			active = true
		}
		if err != nil {
			return false, err
		}
	}
	return active, nil
}

// insertJobs writes a new run's jobs and sets their IDs and run fields.
func (s *DB) insertJobs(ctx context.Context, tx *dbsql.Tx, r *store.Run, jobs []*store.Job, t time.Time) error {
	const op = "store.CreateRuns"
	stmt, err := s.txStmt(ctx, tx, qInsertJob)
	if err != nil {
		return err
	}
	defer stmt.Close()
	keys := map[string]bool{}
	for _, j := range jobs {
		if j == nil || j.Key == "" || keys[j.Key] {
			return errs.E(op, errs.Invalid, "every job of a run needs a distinct key")
		}
		keys[j.Key] = true
		status := j.Status
		switch {
		case status == "" && len(j.Needs) == 0:
			status = store.StatusQueued
		case status == "":
			status = store.StatusWaiting
		case status != store.StatusQueued && status != store.StatusWaiting && !store.Terminal(status):
			return errs.E(op, errs.Invalid, "job %s cannot start as %s", j.Key, status)
		}
		maxAttempts := j.MaxAttempts
		if maxAttempts <= 0 {
			maxAttempts = 2
		}
		gate, waitMS := gateOf(j.Deploy)
		deploy := ""
		if j.Deploy != nil {
			deploy = encode(j.Deploy)
		}
		var queued, finished, waitUntil time.Time
		if status == store.StatusQueued {
			queued = t
		}
		if status == store.StatusQueued && gate != gateNone {
			status, waitUntil = store.StatusAwaitingApproval, t.Add(time.Duration(waitMS)*time.Millisecond)
		}
		if store.Terminal(status) {
			finished = t
		}
		held := heldNone
		switch {
		case r.Status == store.StatusAwaitingApproval:
			held = heldRunGate
		case r.Status == store.StatusBlocked:
			held = heldRun
		case status == store.StatusQueued && j.ConcurrencyGroup != "" && gate == gateNone:
			held = heldAdmit
		}
		var id int64
		err := stmt.QueryRowContext(ctx, r.ID, r.OrgID, r.RepoID, j.Key, j.Name, encode(nonNil(j.Needs)), status,
			j.Priority, encode(nonNil(j.Labels)), labelKey(j.Labels), j.Backend, maxAttempts, encode(j.Outputs), blob(j.Results),
			j.Error, j.ReusedFrom, us(t), us(queued), us(finished), held, j.ConcurrencyGroup, b2i(j.CancelInProgress),
			deploy, gate, waitMS, us(waitUntil), j.Spec).Scan(&id)
		if err != nil {
			return err
		}
		j.ID, j.RunID, j.OrgID, j.RepoID, j.Status, j.MaxAttempts = id, r.ID, r.OrgID, r.RepoID, status, maxAttempts
		j.Attempt, j.Created, j.Queued, j.Finished = 0, t, queued, finished
		if j.Deploy != nil {
			j.Deploy.WaitUntil = waitUntil
		}
	}
	return nil
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// GetRun returns a run of the organisation.
func (s *DB) GetRun(ctx context.Context, orgID, id int64) (*store.Run, error) {
	return s.getRun(ctx, s.r, "store.GetRun", orgID, id, "")
}

func (s *DB) getRun(ctx context.Context, q querier, op string, orgID, id int64, lock string) (*store.Run, error) {
	r, err := scanRun(q.QueryRowContext(ctx, `SELECT `+runCols+` FROM runs WHERE id = $1 AND org_id = $2`+lock, id, orgID))
	if err != nil {
		return nil, notFound(op, err, "no run %d", id)
	}
	return r, nil
}

// ListRuns lists the organisation's runs, newest first.
func (s *DB) ListRuns(ctx context.Context, orgID int64, f store.RunFilter) ([]*store.Run, error) {
	q, args := listRunsQuery(orgID, f)
	rs, err := queryAll(ctx, s.r, scanRun, q, args...)
	return rs, mapErr("store.ListRuns", err)
}

// LatestRuns returns the latest run of each of the organisation's
// repositories (none for a repository without runs), newest first, in one
// statement: a correlated MAX per repository, which the runs_repo index
// (repo_id, id) answers with one seek each, whatever the history.
func (s *DB) LatestRuns(ctx context.Context, orgID int64) ([]*store.Run, error) {
	rs, err := queryAll(ctx, s.r, scanRun, `SELECT `+runCols+` FROM runs WHERE org_id = $1 AND id IN (
		SELECT (SELECT MAX(r.id) FROM runs r WHERE r.repo_id = repos.id) FROM repos WHERE repos.org_id = $1)
		ORDER BY id DESC`, orgID)
	return rs, mapErr("store.LatestRuns", err)
}

// listRunsQuery is ListRuns' query; an index serves each filter (runs_org,
// runs_repo, runs_org_status), so a page costs the same at any history.
func listRunsQuery(orgID int64, f store.RunFilter) (string, []any) {
	q := `SELECT ` + runCols + ` FROM runs WHERE org_id = $1`
	args := []any{orgID}
	if f.RepoID != 0 {
		args = append(args, f.RepoID)
		q += fmt.Sprintf(" AND repo_id = $%d", len(args))
	}
	if f.Status != "" {
		args = append(args, f.Status)
		q += fmt.Sprintf(" AND status = $%d", len(args))
	}
	if len(f.Refs) > 0 {
		var ph []string
		for _, r := range f.Refs {
			args = append(args, r)
			ph = append(ph, fmt.Sprintf("$%d", len(args)))
		}
		q += " AND ref IN (" + strings.Join(ph, ", ") + ")"
	}
	if f.Workflow != "" {
		args = append(args, f.Workflow)
		q += fmt.Sprintf(" AND workflow = $%d", len(args))
	}
	if f.Event != "" {
		args = append(args, f.Event)
		q += fmt.Sprintf(" AND event = $%d", len(args))
	}
	if f.Before != 0 {
		args = append(args, f.Before)
		q += fmt.Sprintf(" AND id < $%d", len(args))
	}
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	args = append(args, limit)
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))
	return q, args
}

// Jobs returns the jobs of a run of the organisation, in creation order.
func (s *DB) Jobs(ctx context.Context, orgID, runID int64) ([]*store.Job, error) {
	const op = "store.Jobs"
	if _, err := s.getRun(ctx, s.r, op, orgID, runID, ""); err != nil {
		return nil, err
	}
	js, err := queryAll(ctx, s.r, scanJob, `SELECT `+jobCols+` FROM jobs WHERE run_id = $1 ORDER BY id`, runID)
	if err == nil {
		err = s.markQuotaWait(ctx, runID, 0, js)
	}
	return js, mapErr(op, err)
}

// GetJob returns a job of the organisation.
func (s *DB) GetJob(ctx context.Context, orgID, jobID int64) (*store.Job, error) {
	j, err := scanJob(s.r.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = $1 AND org_id = $2`, jobID, orgID))
	if err != nil {
		return nil, notFound("store.GetJob", err, "no job %d", jobID)
	}
	if err := s.markQuotaWait(ctx, 0, jobID, []*store.Job{j}); err != nil {
		return nil, mapErr("store.GetJob", err)
	}
	return j, nil
}

// Attempts returns the interrupted attempts of a job of the organisation.
func (s *DB) Attempts(ctx context.Context, orgID, jobID int64) ([]*store.Attempt, error) {
	const op = "store.Attempts"
	if _, err := s.GetJob(ctx, orgID, jobID); err != nil {
		return nil, err
	}
	as, err := queryAll(ctx, s.r, func(sc scanner) (*store.Attempt, error) {
		var a store.Attempt
		var started, finished int64
		err := sc.Scan(&a.JobID, &a.Attempt, &a.Owner, &started, &finished, &a.Reason)
		a.Started, a.Finished = tm(started), tm(finished)
		return &a, err
	}, `SELECT job_id, attempt, owner, started, finished, reason FROM job_attempts WHERE job_id = $1 ORDER BY attempt`, jobID)
	return as, mapErr(op, err)
}

// CancelRun cancels the jobs of a run that have not started and flags the
// running ones; the run ends now when none runs, else when they report.
func (s *DB) CancelRun(ctx context.Context, orgID, runID int64, reason string) (*store.Run, error) {
	const op = "store.CancelRun"
	var out *store.Run
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		r, err := s.getRun(ctx, tx, op, orgID, runID, s.forUpdate)
		if err != nil {
			return err
		}
		if store.Terminal(r.Status) {
			return errs.E(op, errs.Conflict, "run %d already ended (%s)", runID, r.Status)
		}
		if reason == "" {
			reason = "cancelled"
		}
		if err := s.cancelRun(ctx, tx, runID, reason, now(), true); err != nil {
			return err
		}
		out, err = s.getRun(ctx, tx, op, orgID, runID, "")
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// cancelRun cancels a run inside tx (see CancelRun). unblock says whether
// its ending may release the next waiting run of its group; CreateRuns
// says no, as the new run decides that itself.
func (s *DB) cancelRun(ctx context.Context, tx *dbsql.Tx, runID int64, reason string, t time.Time, unblock bool) error {
	if _, err := tx.ExecContext(ctx, `UPDATE jobs SET status = $1, finished = $2, error = $3, held = 0
		WHERE run_id = $4 AND status IN ('queued', 'waiting', 'awaiting_approval')`, store.StatusCancelled, us(t), reason, runID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE jobs SET cancel_requested = 1 WHERE run_id = $1 AND status = 'running'`, runID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE runs SET error = $1 WHERE id = $2`, reason, runID); err != nil {
		return err
	}
	if err := s.settleJobGroups(ctx, tx, runID, t); err != nil {
		return err
	}
	return s.finishRun(ctx, tx, runID, t, unblock)
}

// Stats counts jobs by status.
// qLiveJobs counts the live jobs by status from jobs_live, an index of
// them only: a scrape reads as many entries as jobs are live, however
// long the history.
const qLiveJobs = `SELECT status, COUNT(*) FROM jobs WHERE status IN ('waiting', 'awaiting_approval', 'queued', 'running') GROUP BY status`

func (s *DB) Stats(ctx context.Context) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, qLiveJobs)
	if err != nil {
		return nil, mapErr("store.Stats", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			return nil, mapErr("store.Stats", err)
		}
		out[status] = n
	}
	return out, mapErr("store.Stats", rows.Err())
}
