package sqlstore

import (
	"context"
	"strconv"
)

// vacuumPages is how many free pages one incremental_vacuum step returns
// (8 MiB of 4 KiB pages): a step holds the writer briefly.
const vacuumPages = 2048

// vacuumMode switches a SQLite database to auto_vacuum=INCREMENTAL, so
// pages freed by deletes can be given back to the file system. A database
// created before needs one VACUUM to switch: it rewrites the whole file,
// once, at the first Open by a release with retention.
func (s *DB) vacuumMode(ctx context.Context) error {
	if s.dialect != dialectSQLite {
		return nil
	}
	var mode int
	if err := s.w.QueryRowContext(ctx, `PRAGMA auto_vacuum`).Scan(&mode); err != nil {
		return err
	}
	if mode == 2 {
		return nil
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA auto_vacuum = INCREMENTAL`); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, `VACUUM`)
	return err
}

// giveSpaceBack returns SQLite's free pages to the file system a step at
// a time (PostgreSQL's autovacuum makes them reusable by itself).
func (s *DB) giveSpaceBack(ctx context.Context) error {
	if s.dialect != dialectSQLite {
		return nil
	}
	for {
		var free int64
		if err := s.w.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&free); err != nil || free == 0 {
			return err
		}
		rows, err := s.w.QueryContext(ctx, `PRAGMA incremental_vacuum(`+strconv.Itoa(vacuumPages)+`)`)
		if err != nil {
			return err
		}
		for rows.Next() {
		}
		if err := rows.Close(); err != nil {
			return err
		}
		var after int64
		if err := s.w.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&after); err != nil || after >= free {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}
