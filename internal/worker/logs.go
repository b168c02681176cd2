package worker

import (
	"context"
	"time"

	"github.com/conveyor-ci/conveyor/internal/jobrun"
)

// maxChunk splits log chunks well under an HTTP server's body limit.
const maxChunk = 512 << 10

// chunks writes a job's log through its lease. A chunk whose call failed
// on the way is sent again with backoff, marked as a retry so that it is
// stored once, until it is stored, the lease is lost (which stops the
// run), base ends (plus Config.LogGrace) or the caller's context ends
// (jobrun.Log.PersistFor).
type chunks struct {
	w     *Worker
	lease Lease
	base  context.Context
	stop  context.CancelCauseFunc
	// prev is the seq of the last chunk stored (0: none yet).
	prev int64
}

var _ jobrun.ChunkWriter = (*chunks)(nil)

func (c *chunks) AppendLog(ctx context.Context, _ int64, data []byte) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.base, func() {
		if c.w.cfg.LogGrace <= 0 {
			cancel()
			return
		}
		time.AfterFunc(c.w.cfg.LogGrace, cancel)
	})()
	for len(data) > 0 {
		n := min(len(data), maxChunk)
		if err := c.send(ctx, data[:n]); err != nil {
			if LeaseLost(err) {
				c.stop(err)
			}
			return 0, err
		}
		data = data[n:]
	}
	return c.prev, nil
}

func (c *chunks) send(ctx context.Context, chunk []byte) error {
	retryPrev := int64(-1)
	wait := c.w.cfg.Backoff
	for {
		actx, cancel := context.WithTimeout(ctx, c.w.cfg.Attempt)
		seq, err := c.lease.AppendLog(actx, chunk, retryPrev)
		cancel()
		if err == nil {
			if seq > 0 {
				c.prev = seq
			}
			return nil
		}
		if ctx.Err() != nil || !c.w.cfg.Transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, c.w.maxWait())
		retryPrev = c.prev
	}
}
