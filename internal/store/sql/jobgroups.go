package sqlstore

import (
	"context"
	dbsql "database/sql"
	"time"
)

// Values of jobs.held: a job is leased only when held is 0.
const (
	heldNone    = 0 // in the queue
	heldRun     = 1 // its run waits for its (workflow-level) concurrency group
	heldGroup   = 2 // waits for its job-level concurrency group
	heldAdmit   = 3 // just queued into a job group, not yet admitted
	heldRunGate = 4 // its run awaits approval (a fork's pull request)
	heldSQLCase = `CASE WHEN concurrency_group <> '' THEN 3 ELSE 0 END`
)

// settleJobGroups applies job-level concurrency groups after the jobs of a
// run changed state: jobs that just entered a group (held 3) are admitted,
// cancelling what their group says they replace, and a group left without
// an active job lets its waiting job go. Runs without grouped jobs cost one
// indexed query.
func (s *DB) settleJobGroups(ctx context.Context, tx *dbsql.Tx, runID int64, t time.Time) error {
	type group struct {
		repo int64
		name string
	}
	groups, err := queryAll(ctx, s.wq(tx), func(sc scanner) (group, error) {
		var g group
		return g, sc.Scan(&g.repo, &g.name)
	}, qRunJobGroups, runID)
	if err != nil || len(groups) == 0 {
		return err
	}
	// The repository row lock (PostgreSQL) serialises group decisions, as
	// it does for workflow-level groups in CreateRuns.
	if _, err := tx.ExecContext(ctx, `SELECT id FROM repos WHERE id = $1`+s.forUpdate, groups[0].repo); err != nil {
		return err
	}
	for _, g := range groups {
		if err := s.settleJobGroup(ctx, tx, g.repo, g.name, t); err != nil {
			return err
		}
	}
	return nil
}

// groupMember is a job of a job-level concurrency group that has not ended.
type groupMember struct {
	id, run  int64
	status   string
	held     int
	cancelIP bool
}

// settleJobGroup admits a group's new jobs in order (see settleJobGroups).
// The rule is GitHub's: at most one job of a group runs and one waits; a
// newer job cancels the older waiting one, or with cancel-in-progress every
// older one, running or not.
func (s *DB) settleJobGroup(ctx context.Context, tx *dbsql.Tx, repo int64, name string, t time.Time) error {
	members, err := queryAll(ctx, tx, func(sc scanner) (groupMember, error) {
		var m groupMember
		return m, sc.Scan(&m.id, &m.run, &m.status, &m.held, &m.cancelIP)
	}, `SELECT id, run_id, status, held, cancel_in_progress FROM jobs
		WHERE repo_id = $1 AND concurrency_group = $2 AND concurrency_group <> '' AND status IN ('queued', 'running')
		AND held <> 1 ORDER BY id`, repo, name)
	if err != nil {
		return err
	}
	cancelled := map[int64]bool{}
	var touched []int64 // runs whose jobs were cancelled here
	for i, n := range members {
		if n.held != heldAdmit {
			continue
		}
		for _, m := range members[:i] {
			if cancelled[m.id] {
				continue
			}
			var reason string
			switch {
			case n.cancelIP:
				reason = "cancelled: a newer job entered concurrency group " + name
			case m.held == heldGroup:
				reason = "cancelled: superseded by a newer job of concurrency group " + name
			default:
				continue
			}
			if m.status == "running" {
				if _, err := tx.ExecContext(ctx, `UPDATE jobs SET cancel_requested = 1 WHERE id = $1`, m.id); err != nil {
					return err
				}
				continue // it stays the group's active job until it ends
			}
			if _, err := tx.ExecContext(ctx, `UPDATE jobs SET status = 'cancelled', finished = $1, error = $2, held = 0
				WHERE id = $3`, us(t), reason, m.id); err != nil {
				return err
			}
			cancelled[m.id] = true
			touched = append(touched, m.run)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET held = $1 WHERE id = $2`, heldGroup, n.id); err != nil {
			return err
		}
		members[i].held = heldGroup
	}
	// The group's active job is one in the queue or running; when there is
	// none, the newest waiting job goes.
	active, next := false, int64(0)
	for _, m := range members {
		switch {
		case cancelled[m.id]:
		case m.status == "running" || m.held == heldNone:
			active = true
		case m.held == heldGroup:
			next = m.id
		}
	}
	if !active && next != 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET held = 0, queued = $1 WHERE id = $2`, us(t), next); err != nil {
			return err
		}
	}
	for _, run := range touched {
		if err := s.advanceRun(ctx, tx, run, t); err != nil {
			return err
		}
	}
	return nil
}
