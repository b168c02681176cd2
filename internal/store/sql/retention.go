package sqlstore

import (
	"context"
	dbsql "database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// dayUS is a day in the stored time unit (microseconds).
const dayUS = int64(24 * time.Hour / time.Microsecond)

// Sweep batches: each is one short write transaction.
const (
	sweepRuns      = 100  // runs (with their jobs and statuses) per transaction
	sweepChunks    = 500  // log chunks per transaction
	sweepArtChunks = 16   // artifact chunks (up to 1 MiB each) per transaction
	sweepStatuses  = 1000 // done commit status reports per transaction
	sweepPick      = 100  // jobs or artifacts picked per query
)

// SetRetention stores an organisation's (repoID 0) or repository's setting.
func (s *DB) SetRetention(ctx context.Context, orgID, repoID int64, r store.Retention) error {
	const op = "store.SetRetention"
	for _, d := range []*int{r.RunsDays, r.LogsDays, r.ArtifactsDays, r.CachesDays} {
		if d != nil && (*d < 0 || *d > 100*365) {
			return errs.E(op, errs.Invalid, "retention of %d days is not between 0 and 36500", *d)
		}
	}
	if repoID != 0 {
		if _, err := s.GetRepo(ctx, orgID, repoID); err != nil {
			return err
		}
	}
	return s.write(ctx, op, func(tx *dbsql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO retention (org_id, repo_id, runs_days, logs_days, artifacts_days, caches_days)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id, repo_id) DO UPDATE SET runs_days = $3, logs_days = $4,
			artifacts_days = $5, caches_days = $6`, orgID, repoID, nullDays(r.RunsDays), nullDays(r.LogsDays), nullDays(r.ArtifactsDays),
			nullDays(r.CachesDays))
		return err
	})
}

// GetRetention returns a setting; never set: all nil.
func (s *DB) GetRetention(ctx context.Context, orgID, repoID int64) (store.Retention, error) {
	const op = "store.GetRetention"
	if repoID != 0 {
		if _, err := s.GetRepo(ctx, orgID, repoID); err != nil {
			return store.Retention{}, err
		}
	}
	var runs, logs, arts, caches dbsql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT runs_days, logs_days, artifacts_days, caches_days FROM retention
		WHERE org_id = $1 AND repo_id = $2`, orgID, repoID).Scan(&runs, &logs, &arts, &caches)
	if errors.Is(err, dbsql.ErrNoRows) {
		return store.Retention{}, nil
	}
	if err != nil {
		return store.Retention{}, mapErr(op, err)
	}
	return store.Retention{RunsDays: days(runs), LogsDays: days(logs), ArtifactsDays: days(arts), CachesDays: days(caches)}, nil
}

// CacheRetentions lists the repositories whose caches have a retention.
func (s *DB) CacheRetentions(ctx context.Context) ([]store.CacheRetention, error) {
	list, err := queryAll(ctx, s.r, func(sc scanner) (store.CacheRetention, error) {
		var c store.CacheRetention
		return c, sc.Scan(&c.OrgID, &c.Repo, &c.Days)
	}, `SELECT r.org_id, r.name, COALESCE(rr.caches_days, ro.caches_days) FROM repos r
		LEFT JOIN retention rr ON rr.org_id = r.org_id AND rr.repo_id = r.id
		LEFT JOIN retention ro ON ro.org_id = r.org_id AND ro.repo_id = 0
		WHERE COALESCE(rr.caches_days, ro.caches_days) IS NOT NULL ORDER BY r.id`)
	return list, mapErr("store.CacheRetentions", err)
}

func nullDays(d *int) any {
	if d == nil {
		return nil
	}
	return int64(*d)
}

func days(v dbsql.NullInt64) *int {
	if !v.Valid {
		return nil
	}
	d := int(v.Int64)
	return &d
}

// effective is the days of column col for run alias r: the repository's
// setting, else the organisation's (NULL: forever).
func effective(col string) string {
	return fmt.Sprintf("COALESCE(rr.%s, ro.%s)", col, col)
}

// retentionJoin joins each run r to its repository's (rr) and
// organisation's (ro) settings.
const retentionJoin = ` LEFT JOIN retention rr ON rr.org_id = r.org_id AND rr.repo_id = r.repo_id
	LEFT JOIN retention ro ON ro.org_id = r.org_id AND ro.repo_id = 0`

// expired is the condition "run r finished more than the days of one of
// cols before $1", limited to runs finished before $2 (the shortest
// setting anywhere), which reads runs_finished.
func expired(cols ...string) string {
	var or []string
	for _, c := range cols {
		or = append(or, fmt.Sprintf("r.finished < $1 - %s * %d", effective(c), dayUS))
	}
	return "r.finished > 0 AND r.finished < $2 AND (" + strings.Join(or, " OR ") + ")"
}

// Sweep deletes what is past retention (see store.Retainer): logs and
// artifacts first, chunk by chunk, then runs a batch at a time, then the
// sent commit statuses; SQLite then returns the free pages to the file
// system (auto_vacuum is INCREMENTAL, see vacuumMode).
func (s *DB) Sweep(ctx context.Context, now time.Time, outbox time.Duration) (store.Swept, error) {
	const op = "store.Sweep"
	var sw store.Swept
	var shortest dbsql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT MIN(d) FROM (SELECT runs_days AS d FROM retention UNION ALL
		SELECT logs_days FROM retention UNION ALL SELECT artifacts_days FROM retention) AS t`).Scan(&shortest)
	if err != nil {
		return sw, mapErr(op, err)
	}
	if shortest.Valid {
		at, before := us(now), us(now)-shortest.Int64*dayUS
		steps := []func(context.Context, int64, int64, *store.Swept) error{s.sweepLogs, s.sweepArtifacts, s.sweepRuns, s.sweepEvents}
		for _, step := range steps {
			if err := step(ctx, at, before, &sw); err != nil {
				return sw, errs.Wrap(op, errs.KindOf(err), err)
			}
		}
	}
	if err := s.sweepStatuses(ctx, us(now.Add(-outbox)), &sw); err != nil {
		return sw, errs.Wrap(op, errs.KindOf(err), err)
	}
	if err := s.emptyTrash(ctx); err != nil {
		return sw, err
	}
	if sw != (store.Swept{}) {
		if err := s.giveSpaceBack(ctx); err != nil {
			return sw, mapErr(op, err)
		}
	}
	return sw, nil
}

// sweepLogs deletes the log chunks of jobs whose run is past its logs or
// runs retention.
func (s *DB) sweepLogs(ctx context.Context, now, before int64, sw *store.Swept) error {
	q := `SELECT j.id FROM jobs j JOIN runs r ON r.id = j.run_id` + retentionJoin + ` WHERE ` + expired("logs_days", "runs_days") +
		` AND (EXISTS (SELECT 1 FROM log_chunks c WHERE c.job_id = j.id) OR EXISTS (SELECT 1 FROM log_segments g
		WHERE g.job_id = j.id)) LIMIT ` + fmt.Sprint(sweepPick)
	for {
		ids, err := queryAll(ctx, s.r, scanID, q, now, before)
		if err != nil || len(ids) == 0 {
			return err
		}
		for _, id := range ids {
			n, err := s.deleteBatches(ctx, `DELETE FROM log_chunks WHERE job_id = $1 AND seq IN
				(SELECT seq FROM log_chunks WHERE job_id = $1 ORDER BY seq LIMIT `+fmt.Sprint(sweepChunks)+`)`, id)
			sw.LogChunks += n
			if err != nil {
				return err
			}
			if err := s.write(ctx, "store.Sweep", func(tx *dbsql.Tx) error {
				return deleteSegments(ctx, tx, `= $1`, id)
			}); err != nil {
				return err
			}
		}
	}
}

// deleteSegments removes the log segments of the jobs whose id matches
// cond, their objects to the trash.
func deleteSegments(ctx context.Context, tx *dbsql.Tx, cond string, args ...any) error {
	if err := trash(ctx, tx, `SELECT object_key FROM log_segments WHERE job_id `+cond, args...); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM log_segments WHERE job_id `+cond, args...)
	return err
}

// sweepArtifacts deletes artifacts whose run is past its artifacts or runs
// retention, and those past their own retention-days.
func (s *DB) sweepArtifacts(ctx context.Context, now, before int64, sw *store.Swept) error {
	q := `SELECT a.id FROM artifacts a JOIN runs r ON r.id = a.run_id` + retentionJoin + ` WHERE (` +
		expired("artifacts_days", "runs_days") + fmt.Sprintf(`) OR (a.retention_days > 0 AND a.complete = 1
		AND a.created < $1 - a.retention_days * %d) LIMIT %d`, dayUS, sweepPick)
	for {
		ids, err := queryAll(ctx, s.r, scanID, q, now, before)
		if err != nil || len(ids) == 0 {
			return err
		}
		for _, id := range ids {
			if _, err := s.deleteBatches(ctx, `DELETE FROM artifact_chunks WHERE artifact_id = $1 AND seq IN
				(SELECT seq FROM artifact_chunks WHERE artifact_id = $1 ORDER BY seq LIMIT `+fmt.Sprint(sweepArtChunks)+`)`, id); err != nil {
				return err
			}
			if err := s.write(ctx, "store.Sweep", func(tx *dbsql.Tx) error {
				return deleteArtifacts(ctx, tx, `id = $1`, id)
			}); err != nil {
				return err
			}
			sw.Artifacts++
		}
	}
}

// sweepRuns deletes runs past their runs retention with their jobs,
// attempts and commit statuses (their logs and artifacts went before), a
// batch per transaction.
func (s *DB) sweepRuns(ctx context.Context, now, before int64, sw *store.Swept) error {
	q := `SELECT r.id FROM runs r` + retentionJoin + ` WHERE ` + expired("runs_days") +
		` ORDER BY r.finished LIMIT ` + fmt.Sprint(sweepRuns)
	for {
		ids, err := queryAll(ctx, s.r, scanID, q, now, before)
		if err != nil || len(ids) == 0 {
			return err
		}
		in, args := inList(ids)
		jobs := `SELECT id FROM jobs WHERE run_id IN ` + in
		err = s.write(ctx, "store.Sweep", func(tx *dbsql.Tx) error {
			if err := deleteSegments(ctx, tx, `IN (`+jobs+`)`, args...); err != nil {
				return err
			}
			if err := trash(ctx, tx, `SELECT object_key FROM artifacts WHERE run_id IN `+in, args...); err != nil {
				return err
			}
			for _, q := range []string{
				`DELETE FROM log_chunks WHERE job_id IN (` + jobs + `)`,
				`DELETE FROM job_attempts WHERE job_id IN (` + jobs + `)`,
				`DELETE FROM artifact_chunks WHERE artifact_id IN (SELECT id FROM artifacts WHERE run_id IN ` + in + `)`,
				`DELETE FROM artifacts WHERE run_id IN ` + in,
				`DELETE FROM statuses WHERE run_id IN ` + in,
				`DELETE FROM jobs WHERE run_id IN ` + in,
				`DELETE FROM runs WHERE id IN ` + in,
			} {
				if _, err := tx.ExecContext(ctx, q, args...); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		sw.Runs += int64(len(ids))
	}
}

// sweepEvents deletes processed webhook and API events (with their
// payloads) received more than the runs retention ago whose runs are all
// gone. A redelivery of a deleted event's delivery id is then accepted
// again.
func (s *DB) sweepEvents(ctx context.Context, now, before int64, sw *store.Swept) error {
	q := fmt.Sprintf(`SELECT e.id FROM events e LEFT JOIN retention rr ON rr.org_id = e.org_id AND rr.repo_id = e.repo_id
		LEFT JOIN retention ro ON ro.org_id = e.org_id AND ro.repo_id = 0
		WHERE e.received < $2 AND e.received < $1 - %s * %d AND e.state IN ('done', 'failed')
		AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.event_id = e.id) ORDER BY e.received LIMIT %d`,
		effective("runs_days"), dayUS, sweepStatuses)
	for {
		ids, err := queryAll(ctx, s.r, scanID, q, now, before)
		if err != nil || len(ids) == 0 {
			return err
		}
		in, args := inList(ids)
		err = s.write(ctx, "store.Sweep", func(tx *dbsql.Tx) error {
			if _, err := tx.ExecContext(ctx, `DELETE FROM event_payloads WHERE event_id IN `+in, args...); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `DELETE FROM events WHERE id IN `+in, args...)
			return err
		})
		if err != nil {
			return err
		}
		sw.Events += int64(len(ids))
	}
}

// sweepStatuses deletes commit status reports done (sent or given up)
// whose last attempt was claimed before before (next_attempt is then the
// claim's time plus its lease).
func (s *DB) sweepStatuses(ctx context.Context, before int64, sw *store.Swept) error {
	n, err := s.deleteBatches(ctx, `DELETE FROM statuses WHERE id IN (SELECT id FROM statuses
		WHERE done = 1 AND next_attempt < $1 ORDER BY next_attempt LIMIT `+fmt.Sprint(sweepStatuses)+`)`, before)
	sw.Statuses += n
	return err
}

// deleteBatches runs a batch DELETE, one transaction each, until it
// deletes nothing, and returns the rows deleted.
func (s *DB) deleteBatches(ctx context.Context, q string, args ...any) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.write(ctx, "store.Sweep", func(tx *dbsql.Tx) error {
			res, err := tx.ExecContext(ctx, q, args...)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// inList is "($1, $2, ...)" for ids and the arguments.
func inList(ids []int64) (string, []any) {
	ph := make([]string, len(ids))
	args := make([]any, len(ids))
	for i, id := range ids {
		ph[i] = fmt.Sprintf("$%d", i+1)
		args[i] = id
	}
	return "(" + strings.Join(ph, ", ") + ")", args
}

func scanID(sc scanner) (int64, error) {
	var id int64
	err := sc.Scan(&id)
	return id, err
}
