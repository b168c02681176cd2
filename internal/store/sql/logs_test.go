package sqlstore

import (
	"bytes"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// TestLogsCompressed: chunks are stored zstd-compressed when that makes
// them smaller; a chunk written before schema version 10 stays readable;
// RetryLog sees through the compression; a corrupt chunk is an error.
func TestLogsCompressed(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		old, err := Open(ctx, dsn, Options{MaxMigration: 9})
		must(t, err)
		repo := createTestRepo(t, old)
		runs, err := old.CreateRuns(ctx, []store.NewRun{{Run: &store.Run{RepoID: repo.ID, Workflow: "ci.yml", Trigger: "webhook"},
			Jobs: []*store.Job{{Key: "a", Status: store.StatusQueued, MaxAttempts: 1}}}})
		must(t, err)
		jobs, err := old.Jobs(ctx, repo.OrgID, runs[0].ID)
		must(t, err)
		jobID := jobs[0].ID
		first := []byte(strings.Repeat("written by the release before\n", 100))
		_, err = old.w.ExecContext(ctx, `INSERT INTO log_chunks (job_id, seq, data, at) VALUES ($1, 1, $2, 1)`, jobID, first)
		must(t, err)
		must(t, old.Close())

		s, err := Open(ctx, dsn, Options{})
		must(t, err)
		defer s.Close()
		var big bytes.Buffer
		for i := range 5000 {
			big.WriteString("compiling module " + strings.Repeat("x", i%40) + " ok\n")
		}
		small := []byte("done\n")
		for _, d := range [][]byte{big.Bytes(), small} {
			_, err := s.AppendLog(ctx, jobID, d)
			must(t, err)
		}
		want := [][]byte{first, big.Bytes(), small}
		wantZ := []int64{0, 1, 0}
		for i := range want {
			var n, z int64
			must(t, s.r.QueryRowContext(ctx, `SELECT LENGTH(data), compressed FROM log_chunks WHERE job_id = $1 AND seq = $2`,
				jobID, i+1).Scan(&n, &z))
			if z != wantZ[i] || (z == 1 && n > int64(len(want[i])/5)) || (z == 0 && n != int64(len(want[i]))) {
				t.Errorf("chunk %d: stored %d bytes (compressed %d) for %d", i+1, n, z, len(want[i]))
			}
		}
		cs, err := s.ReadLog(ctx, repo.OrgID, jobID, 0, 10)
		must(t, err)
		if len(cs) != 3 {
			t.Fatalf("%d chunks, want 3", len(cs))
		}
		for i, c := range cs {
			if !bytes.Equal(c.Data, want[i]) {
				t.Errorf("chunk %d: %d bytes back, want %d, or not the same", c.Seq, len(c.Data), len(want[i]))
			}
		}
		// The last chunk compressed: a retry of it is recognised.
		_, err = s.AppendLog(ctx, jobID, big.Bytes())
		must(t, err)
		if seq, dup, err := s.RetryLog(ctx, jobID, 3, big.Bytes()); err != nil || !dup || seq != 4 {
			t.Errorf("RetryLog of the compressed last chunk = %d, %v, %v; want 4, a duplicate", seq, dup, err)
		}
		_, err = s.w.ExecContext(ctx, `UPDATE log_chunks SET data = $1 WHERE job_id = $2 AND seq = 2`, []byte("not zstd at all"), jobID)
		must(t, err)
		_, err = s.ReadLog(ctx, repo.OrgID, jobID, 1, 10)
		if errs.KindOf(err) != errs.Other || err == nil || !strings.Contains(err.Error(), "log chunk 2") {
			t.Errorf("ReadLog of a corrupt chunk: %v", err)
		}
	})
}
