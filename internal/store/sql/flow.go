package sqlstore

import (
	"context"
	dbsql "database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// advanceRun moves a run on after one of its jobs ended: waiting jobs
// whose needs have all ended are queued (the executor evaluates their if:),
// and the run ends when every job has.
func (s *DB) advanceRun(ctx context.Context, tx *dbsql.Tx, runID int64, t time.Time) error {
	type jobState struct {
		id     int64
		key    string
		status string
		needs  []string
	}
	js, err := queryAll(ctx, s.wq(tx), func(sc scanner) (jobState, error) {
		var j jobState
		var needs string
		err := sc.Scan(&j.id, &j.key, &j.status, &needs)
		j.needs = decodeList(needs)
		return j, err
	}, qRunJobStates, runID)
	if err != nil {
		return err
	}
	status := make(map[string]string, len(js))
	for _, j := range js {
		status[j.key] = j.status
	}
	for _, j := range js {
		if j.status != store.StatusWaiting {
			continue
		}
		ready := true
		for _, n := range j.needs {
			// A need naming no job of the run cannot hold it forever.
			if st, ok := status[n]; ok && !store.Terminal(st) {
				ready = false
				break
			}
		}
		if !ready {
			continue
		}
		if _, err := s.wq(tx).ExecContext(ctx, qQueueJob, us(t), j.id); err != nil {
			return err
		}
	}
	if err := s.settleJobGroups(ctx, tx, runID, t); err != nil {
		return err
	}
	return s.finishRun(ctx, tx, runID, t, true)
}

// finishRun ends a run whose jobs have all ended: failure if one failed or
// errored, else cancelled if one was cancelled, else success (skipped jobs
// fail nothing). It writes the final commit status and, when unblock is
// set, releases the next waiting run of its concurrency group.
func (s *DB) finishRun(ctx context.Context, tx *dbsql.Tx, runID int64, t time.Time, unblock bool) error {
	rows, err := s.wq(tx).QueryContext(ctx, qRunJobStatus, runID)
	if err != nil {
		return err
	}
	failed, cancelled, open := false, false, false
	for rows.Next() {
		var st string
		if err := rows.Scan(&st); err != nil {
			rows.Close()
			return err
		}
		switch {
		case st == store.StatusFailure || st == store.StatusError:
			failed = true
		case st == store.StatusCancelled:
			cancelled = true
		case !store.Terminal(st):
			open = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil || open {
		return err
	}
	conclusion := store.StatusSuccess
	switch {
	case failed:
		conclusion = store.StatusFailure
	case cancelled:
		conclusion = store.StatusCancelled
	}
	res, err := s.wq(tx).ExecContext(ctx, qFinishRun, conclusion, us(t), runID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err // already ended
	}
	r, err := scanRun(s.wq(tx).QueryRowContext(ctx, qRunByID, runID))
	if err != nil {
		return err
	}
	state, desc := commitState(r)
	if err := s.addStatus(ctx, tx, r, state, desc, t); err != nil {
		return err
	}
	if !unblock || r.ConcurrencyGroup == "" {
		return nil
	}
	return s.unblockNext(ctx, tx, r.RepoID, r.ConcurrencyGroup, t)
}

// commitState maps a run's conclusion to a forge commit status, which
// knows only pending, success, failure and error.
func commitState(r *store.Run) (state, desc string) {
	switch r.Status {
	case store.StatusSuccess:
		return "success", fmt.Sprintf("run #%d succeeded", r.Number)
	case store.StatusFailure:
		return "failure", fmt.Sprintf("run #%d failed", r.Number)
	case store.StatusCancelled:
		return "error", fmt.Sprintf("run #%d was cancelled", r.Number)
	}
	return "error", fmt.Sprintf("run #%d ended with %s", r.Number, r.Status)
}

// qBlockedRun finds a group's waiting run; the condition that the group is
// not empty repeats the partial index's, so that SQLite uses runs_group.
const qBlockedRun = `SELECT id FROM runs WHERE repo_id = $1 AND concurrency_group = $2 AND concurrency_group <> ''
	AND status = 'blocked' ORDER BY id DESC LIMIT 1`

// unblockNext queues the waiting run of a concurrency group once no run of
// the group is active.
func (s *DB) unblockNext(ctx context.Context, tx *dbsql.Tx, repoID int64, group string, t time.Time) error {
	var active int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs WHERE repo_id = $1 AND concurrency_group = $2 AND concurrency_group <> ''
		AND status IN ('queued', 'running')`, repoID, group).Scan(&active); err != nil || active > 0 {
		return err
	}
	var next int64
	err := tx.QueryRowContext(ctx, qBlockedRun+s.forUpdate, repoID, group).Scan(&next)
	if errors.Is(err, dbsql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE runs SET status = 'queued' WHERE id = $1`, next); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE jobs SET held = `+heldSQLCase+`, queued = $1 WHERE run_id = $2 AND status = 'queued'`,
		us(t), next); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE jobs SET held = 0 WHERE run_id = $1 AND status <> 'queued'`, next); err != nil {
		return err
	}
	return s.advanceRun(ctx, tx, next, t)
}

// addStatus writes a commit-status outbox entry for a run, due now. Older
// unsent entries of the same run and context are superseded: a retry of
// "pending" must never land after the run's result and hide it.
func (s *DB) addStatus(ctx context.Context, tx *dbsql.Tx, r *store.Run, state, desc string, t time.Time) error {
	q := s.wq(tx)
	if _, err := q.ExecContext(ctx, qSupersede, r.ID, "conveyor/"+r.Name); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, qInsertStatus, r.ID, r.RepoID, r.SHA, "conveyor/"+r.Name, state, desc, us(t))
	return err
}
