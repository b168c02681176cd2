package sqlstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/cache"
	"github.com/conveyor-ci/conveyor/internal/store"
	"github.com/conveyor-ci/conveyor/internal/store/storetest"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

func dirBucket(t *testing.T) storetest.Bucket {
	b, err := cache.NewDir(t.TempDir())
	must(t, err)
	return b
}

func s3Bucket(t *testing.T) storetest.Bucket {
	url, ak, sk := testenv.S3(t)
	b, err := cache.NewS3(context.Background(), cache.S3Config{URL: url, Bucket: "conveyor-test",
		Prefix: fmt.Sprintf("store-%d-%08x/", time.Now().UnixNano(), rand.Uint32()), AccessKey: ak, SecretKey: sk,
		PathStyle: true, Region: "us-east-1"})
	must(t, err)
	return b
}

func TestSQLiteObjectsDir(t *testing.T) {
	storetest.RunObjects(t, func(t *testing.T) (store.Store, storetest.Bucket) {
		b := dirBucket(t)
		s, _ := openTestSQLite(t, Options{Objects: b})
		return s, b
	})
}

func TestSQLiteObjectsS3(t *testing.T) {
	testenv.S3(t) // skips early without a server
	storetest.RunObjects(t, func(t *testing.T) (store.Store, storetest.Bucket) {
		b := s3Bucket(t)
		s, _ := openTestSQLite(t, Options{Objects: b})
		return s, b
	})
}

func TestPostgresObjects(t *testing.T) {
	postgresDSN(t) // skips early without a server
	storetest.RunObjects(t, func(t *testing.T) (store.Store, storetest.Bucket) {
		b := dirBucket(t)
		return openTestPostgres(t, Options{Objects: b}), b
	})
}

// finishedJob is a one-job run of repo, leased, for logs.
func finishedJob(t *testing.T, s *DB, repo *store.Repo) *store.Lease {
	t.Helper()
	ctx := context.Background()
	_, err := s.CreateRuns(ctx, []store.NewRun{{Run: &store.Run{RepoID: repo.ID, OrgID: repo.OrgID, Workflow: "ci.yml",
		Name: "ci", Event: "push", Ref: "refs/heads/main", SHA: "abc", Trigger: "webhook"},
		Jobs: []*store.Job{{Key: "a", Name: "a"}}}})
	must(t, err)
	l, err := s.Lease(ctx, store.LeaseRequest{Owner: "w", TTL: time.Minute})
	must(t, err)
	if l == nil {
		t.Fatal("no job to lease")
	}
	return l
}

// TestHugeLogKeepsDatabaseSmall: with an object store, writing a log of
// 96 MB (incompressible) grows the SQLite file by a few MB: the tail
// moves to segments as it fills. The 1 GB case is the same loop, longer.
func TestHugeLogKeepsDatabaseSmall(t *testing.T) {
	ctx := context.Background()
	s, path := openTestSQLite(t, Options{Objects: dirBucket(t)})
	org, err := s.EnsureOrg(ctx, "default")
	must(t, err)
	repo := &store.Repo{OrgID: org.ID, Name: "acme/app"}
	must(t, s.CreateRepo(ctx, repo))
	l := finishedJob(t, s, repo)
	size := func() int64 {
		fi, err := os.Stat(path)
		must(t, err)
		return fi.Size()
	}
	start := size()
	rng := rand.New(rand.NewPCG(3, 4))
	chunk := make([]byte, 64<<10)
	const total = 96 << 20
	for written := 0; written < total; written += len(chunk) {
		for i := 0; i < len(chunk); i += 8 {
			v := rng.Uint64()
			for j := range 8 {
				chunk[i+j] = byte(v >> (8 * j))
			}
		}
		_, err := s.AppendLog(ctx, l.Job.ID, chunk)
		must(t, err)
	}
	// The WAL is bounded by the checkpointer whatever is written (see
	// checkpoint.go); the database file holds at most two segments' tail.
	grew := size() - start
	t.Logf("a %d MB log grew the database file by %.1f MB", total>>20, float64(grew)/(1<<20))
	// The tail is checked every sealEvery chunks: at most that many
	// chunks (64 KB here) and a segment's worth stay, with B-tree pages.
	if tail := int64(sealEvery*len(chunk) + 2*segmentBytes); grew > tail {
		t.Fatalf("a %d MB log grew the database by %d MB, want a few (the tail)", total>>20, grew>>20)
	}
	var n int
	must(t, s.r.QueryRow(`SELECT COUNT(*) FROM log_chunks WHERE job_id = $1`, l.Job.ID).Scan(&n))
	if n > sealEvery+segmentBytes/len(chunk) {
		t.Errorf("%d chunks left in the database", n)
	}
}

// TestLegacyLogsAndArtifacts: logs and artifacts a store kept in the
// database stay readable once an object store is configured; MoveLogs
// then moves the old logs out too.
func TestLegacyLogsAndArtifacts(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "conveyor.db")
	s, err := Open(ctx, path, Options{})
	must(t, err)
	org, err := s.EnsureOrg(ctx, "default")
	must(t, err)
	repo := &store.Repo{OrgID: org.ID, Name: "acme/app"}
	must(t, s.CreateRepo(ctx, repo))
	l := finishedJob(t, s, repo)
	var want bytes.Buffer
	for i := range 100 {
		line := []byte(fmt.Sprintf("line %d of an old log\n", i))
		want.Write(line)
		_, err := s.AppendLog(ctx, l.Job.ID, line)
		must(t, err)
	}
	art := bytes.Repeat([]byte("old artifact "), 200_000)
	must(t, s.PutArtifact(ctx, &store.Artifact{OrgID: org.ID, RunID: l.Job.RunID, Name: "old", Job: "a"}, false, bytes.NewReader(art)))
	must(t, s.Complete(ctx, l.Job.ID, l.Job.LeaseToken, store.Completion{Status: store.StatusSuccess}))
	must(t, s.Close())

	b := dirBucket(t)
	s, err = Open(ctx, path, Options{Objects: b})
	must(t, err)
	defer s.Close()
	readLog := func() []byte {
		var got bytes.Buffer
		cs, err := s.ReadLog(ctx, org.ID, l.Job.ID, 0, 1000)
		must(t, err)
		for _, c := range cs {
			got.Write(c.Data)
		}
		return got.Bytes()
	}
	if got := readLog(); !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("old log read as %q", got)
	}
	_, rc, err := s.OpenArtifact(ctx, org.ID, l.Job.RunID, "old")
	must(t, err)
	got, err := io.ReadAll(rc)
	rc.Close()
	must(t, err)
	if !bytes.Equal(got, art) {
		t.Fatalf("old artifact: %d bytes, want %d", len(got), len(art))
	}
	if n, err := s.MoveLogs(ctx, time.Now().Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("MoveLogs: %d, %v", n, err)
	}
	if names, _ := b.List(ctx, "logs/"); len(names) != 1 {
		t.Fatalf("objects after the move: %v", names)
	}
	if got := readLog(); !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("moved old log read as %q", got)
	}
	// Once caught up, a pass looks back only moveOverlap, not at the
	// whole history again.
	before := time.Now()
	if n, err := s.MoveLogs(ctx, before); err != nil || n != 0 {
		t.Fatalf("MoveLogs with nothing to move: %d, %v", n, err)
	}
	if s.moves.cursor < us(before)-moveOverlap {
		t.Errorf("the next pass starts %s before its cut-off", time.Duration(us(before)-s.moves.cursor)*time.Microsecond)
	}
}
