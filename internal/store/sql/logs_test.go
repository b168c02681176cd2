package sqlstore

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// beforeHistory is the schema version before the history migration
// (compressed logs, retention): renumber with it.
const beforeHistory = 12

// TestLogsCompressed: chunks are stored zstd-compressed when that makes
// them smaller; a chunk written before schema version 10 stays readable;
// RetryLog sees through the compression; a corrupt chunk is an error.
func TestLogsCompressed(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		old, err := Open(ctx, dsn, Options{MaxMigration: beforeHistory})
		must(t, err)
		must(t, old.Close())
		// The run is written by this release (its jobs have columns the
		// old schema lacks); the first chunk as the release before wrote
		// it: without the compressed column.
		s, err := Open(ctx, dsn, Options{})
		must(t, err)
		defer s.Close()
		repo := createTestRepo(t, s)
		runs, err := s.CreateRuns(ctx, []store.NewRun{{Run: &store.Run{RepoID: repo.ID, Workflow: "ci.yml", Trigger: "webhook"},
			Jobs: []*store.Job{{Key: "a", Status: store.StatusQueued, MaxAttempts: 1}}}})
		must(t, err)
		jobs, err := s.Jobs(ctx, repo.OrgID, runs[0].ID)
		must(t, err)
		jobID := jobs[0].ID
		first := []byte(strings.Repeat("written by the release before\n", 100))
		_, err = s.w.ExecContext(ctx, `INSERT INTO log_chunks (job_id, seq, data, at) VALUES ($1, 1, $2, 1)`, jobID, first)
		must(t, err)
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

// TestSweepGivesSpaceBack: a database of the release before is switched to
// auto_vacuum=INCREMENTAL at Open, and a sweep that deletes a large log
// shrinks the file.
func TestSweepGivesSpaceBack(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "conveyor.db")
	old, err := Open(ctx, path, Options{MaxMigration: beforeHistory})
	must(t, err)
	var mode int
	must(t, old.w.QueryRowContext(ctx, `PRAGMA auto_vacuum`).Scan(&mode))
	must(t, old.Close())
	if mode != 0 {
		t.Fatalf("auto_vacuum of the release before = %d, want 0 (NONE)", mode)
	}
	s, err := Open(ctx, path, Options{})
	must(t, err)
	defer s.Close()
	must(t, s.w.QueryRowContext(ctx, `PRAGMA auto_vacuum`).Scan(&mode))
	if mode != 2 {
		t.Fatalf("auto_vacuum after Open = %d, want 2 (INCREMENTAL)", mode)
	}
	repo := createTestRepo(t, s)
	runs, err := s.CreateRuns(ctx, []store.NewRun{{Run: &store.Run{RepoID: repo.ID, Workflow: "ci.yml", Trigger: "webhook"},
		Jobs: []*store.Job{{Key: "a", Status: store.StatusQueued, MaxAttempts: 1}}}})
	must(t, err)
	l, err := s.Lease(ctx, store.LeaseRequest{Owner: "w", TTL: time.Minute})
	must(t, err)
	noise := make([]byte, 256<<10) // incompressible: stored as it is
	for range 80 {
		_, _ = rand.Read(noise)
		_, err := s.AppendLog(ctx, l.Job.ID, noise)
		must(t, err)
	}
	must(t, s.Complete(ctx, l.Job.ID, l.Job.LeaseToken, store.Completion{Status: store.StatusSuccess}))
	size := func() int64 {
		_, err := s.ckpt.run(ctx, "TRUNCATE")
		must(t, err)
		fi, err := os.Stat(path)
		must(t, err)
		return fi.Size()
	}
	before := size()
	d := 1
	must(t, s.SetRetention(ctx, repo.OrgID, 0, store.Retention{LogsDays: &d}))
	sw, err := s.Sweep(ctx, time.Now().Add(48*time.Hour), time.Hour)
	must(t, err)
	after := size()
	if sw.LogChunks != 80 || after > before-15<<20 {
		t.Errorf("swept %+v; the file went from %d to %d bytes, want 20 MB less", sw, before, after)
	}
	if _, err := s.GetRun(ctx, repo.OrgID, runs[0].ID); err != nil {
		t.Errorf("the run went with its logs: %v", err)
	}
}
