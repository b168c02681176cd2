package server

import (
	"context"

	"github.com/conveyor-ci/conveyor/internal/logs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// hubLogs stores a job's log chunks and wakes this replica's followers of
// the job (jobrun.ChunkWriter for local jobs and for agents' chunks).
type hubLogs struct {
	st  store.Logs
	hub *logs.Hub
}

func (h hubLogs) AppendLog(ctx context.Context, jobID int64, data []byte) (int64, error) {
	seq, err := h.st.AppendLog(ctx, jobID, data)
	if err == nil {
		h.hub.Notify(jobID)
	}
	return seq, err
}
