package sqlstore

import (
	"context"
	dbsql "database/sql"
	"time"
)

// SQLite in WAL mode appends every commit to the WAL; a checkpoint copies
// the WAL back into the database file. By default the connection whose
// commit takes the WAL past 1,000 pages runs the checkpoint inside that
// commit: with the webhook group commit that is the writer, every few
// hundred events, for tens of milliseconds, while every webhook waits. The
// writer's connection therefore never checkpoints (wal_autocheckpoint(0))
// and a checkpointer of its own does it beside the writer: a PASSIVE
// checkpoint takes no writer lock, so commits go on while it copies.

const (
	// checkpointEvery bounds how often the checkpointer runs: under load a
	// run copies what many commits wrote, and each page (the indexes' hot
	// ones are in every commit) once per run: 100 ms rather than 20 ms cut
	// the group commit's CPU by ~4%.
	checkpointEvery = 100 * time.Millisecond
	// walRestartFrames is the WAL size (in frames) past which the
	// checkpointer waits for the writer (RESTART) instead of copying beside
	// it: a WAL that never gets fully copied (a disk slower than the
	// writes) is reset rather than left to grow.
	walRestartFrames = 64 << 10
	// walSizeLimit is what a reset WAL is truncated to (journal_size_limit).
	walSizeLimit = 64 << 20
)

// checkpointer runs checkpoints on its own connection after commits.
type checkpointer struct {
	db     *dbsql.DB
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

func newCheckpointer(db *dbsql.DB) *checkpointer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{db: db, kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go c.loop(ctx)
	return c
}

// committed tells the checkpointer that the WAL has grown. It never blocks.
func (c *checkpointer) committed() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) loop(ctx context.Context) {
	defer close(c.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		}
		// A failed run is retried at the next commit; until then the WAL
		// only holds more frames, which readers still see.
		if frames, err := c.run(ctx, "PASSIVE"); err == nil && frames >= walRestartFrames {
			c.run(ctx, "RESTART")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(checkpointEvery):
		}
	}
}

// run checkpoints in mode and returns the WAL's size in frames.
func (c *checkpointer) run(ctx context.Context, mode string) (int, error) {
	var busy, frames, copied int
	err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &frames, &copied)
	return frames, err
}

// close stops the checkpointer and closes its connection.
func (c *checkpointer) close() error {
	c.cancel()
	<-c.done
	return c.db.Close()
}
