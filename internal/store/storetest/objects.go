package storetest

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// Bucket is the object store a store under test keeps logs and
// artifacts in, listed by the tests (cache.Dir and cache.S3 are Buckets).
type Bucket interface {
	store.Objects
	List(ctx context.Context, prefix string) ([]string, error)
}

// RunObjects runs the tests of logs and artifacts kept in an object
// store. open returns a new, empty store keeping them in the bucket it
// also returns (empty, or under a prefix of its own).
func RunObjects(t *testing.T, open func(t *testing.T) (store.Store, Bucket)) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, e *env, b Bucket)
	}{
		{"LogsMoveToObjects", testLogsMoveToObjects},
		{"ArtifactsInObjects", testArtifactsInObjects},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b Bucket
			e := setup(t, func(t *testing.T) store.Store {
				var s store.Store
				s, b = open(t)
				return s
			})
			tc.fn(t, e, b)
		})
	}
}

func (e *env) objects(b Bucket, prefix string) []string {
	e.t.Helper()
	names, err := b.List(e.ctx, prefix)
	e.must(err)
	return names
}

// follower reads a job's log page by page as `conveyor logs -f` does.
type follower struct {
	e     *env
	orgID int64
	jobID int64
	after int64
	got   bytes.Buffer
}

// read reads pages of at most limit chunks until the end of the log for
// now, checking that seqs follow each other.
func (f *follower) read(limit int) {
	f.e.t.Helper()
	for {
		page, err := f.e.s.ReadLog(f.e.ctx, f.orgID, f.jobID, f.after, limit)
		f.e.must(err)
		for _, c := range page {
			if c.Seq != f.after+1 {
				f.e.t.Fatalf("chunk %d after %d", c.Seq, f.after)
			}
			f.after = c.Seq
			f.got.Write(c.Data)
		}
		if store.LogPageEnd(page, limit) {
			return
		}
	}
}

// testLogsMoveToObjects: a running job's log moves to the object store as
// it fills (the last chunk stays), the rest once its run has finished; a
// follower reading across both moves gets every chunk once; a chunk
// appended after the move follows the last seq; retention deletes the
// segments' objects.
func testLogsMoveToObjects(t *testing.T, e *env, b Bucket) {
	run := e.newRun(e.repo, nil, job("a"))
	l := e.leaseKey("a")
	rng := rand.New(rand.NewPCG(1, 2))
	var want bytes.Buffer
	appendN := func(n int, size int) {
		for range n {
			chunk := make([]byte, size)
			for i := range chunk {
				chunk[i] = byte(rng.IntN(256)) // incompressible: stored as written
			}
			want.Write(chunk)
			_, err := e.s.AppendLog(e.ctx, l.Job.ID, chunk)
			e.must(err)
		}
	}
	f := &follower{e: e, orgID: e.org.ID, jobID: l.Job.ID}
	appendN(10, 1000)
	f.read(4) // from the database
	appendN(200, 64<<10)
	if n := len(e.objects(b, "logs/")); n < 2 {
		t.Fatalf("a running job's 13 MB log: %d segment objects, want at least 2", n)
	}
	f.read(7) // across the segments and the tail
	e.complete(l, store.StatusSuccess)
	if r := e.getRun(run.ID); r.Finished.IsZero() {
		t.Fatal("the run did not finish")
	}
	before := len(e.objects(b, "logs/"))
	moved, err := e.s.MoveLogs(e.ctx, time.Now().Add(time.Minute))
	e.must(err)
	if moved != 1 || len(e.objects(b, "logs/")) <= before {
		t.Fatalf("MoveLogs moved %d jobs, objects %d -> %d; want 1 job, more objects", moved, before, len(e.objects(b, "logs/")))
	}
	appendN(1, 100) // a late chunk follows the moved ones
	f.read(64)
	if !bytes.Equal(f.got.Bytes(), want.Bytes()) {
		t.Fatalf("the follower read %d bytes, want %d (the same)", f.got.Len(), want.Len())
	}
	whole := &follower{e: e, orgID: e.org.ID, jobID: l.Job.ID}
	whole.read(10000)
	if !bytes.Equal(whole.got.Bytes(), want.Bytes()) || whole.after != 211 {
		t.Fatalf("a new reader read %d bytes up to chunk %d, want %d up to 211", whole.got.Len(), whole.after, want.Len())
	}
	if moved, err := e.s.MoveLogs(e.ctx, time.Now().Add(time.Minute)); err != nil || moved != 1 {
		t.Fatalf("the late chunk: moved %d, %v", moved, err)
	}
	// Another organisation cannot read it.
	other := e.newOrg("other")
	if _, err := e.s.ReadLog(e.ctx, other.ID, l.Job.ID, 0, 10); err == nil {
		t.Error("another organisation read the log")
	}
	e.must(e.s.SetRetention(e.ctx, e.org.ID, 0, store.Retention{LogsDays: days(1)}))
	_, err = e.s.Sweep(e.ctx, time.Now().Add(48*time.Hour), time.Hour)
	e.must(err)
	if n := e.objects(b, "logs/"); len(n) != 0 {
		t.Errorf("after the log's retention %d objects are left: %v", len(n), n)
	}
	if cs, err := e.s.ReadLog(e.ctx, e.org.ID, l.Job.ID, 0, 100); err != nil || len(cs) != 0 {
		t.Errorf("after retention: %d chunks, %v", len(cs), err)
	}
}

// testArtifactsInObjects: an artifact's content is one object, read back
// checked; overwriting and retention delete objects; a changed object
// fails its read.
func testArtifactsInObjects(t *testing.T, e *env, b Bucket) {
	run := e.newRun(e.repo, nil, job("a"))
	content := bytes.Repeat([]byte("artifact "), 400_000) // 3.6 MB
	put := func(overwrite bool, data []byte) {
		e.t.Helper()
		e.must(e.s.PutArtifact(e.ctx, &store.Artifact{OrgID: e.org.ID, RunID: run.ID, Name: "dist", Job: "a"},
			overwrite, bytes.NewReader(data)))
	}
	put(false, content)
	names := e.objects(b, "artifacts/")
	if len(names) != 1 {
		t.Fatalf("objects %v, want one", names)
	}
	if a, got := e.readArtifact(e.org.ID, run.ID, "dist"); !bytes.Equal(got, content) || a.Size != int64(len(content)) {
		t.Fatalf("read %d bytes (size %d), want %d", len(got), a.Size, len(content))
	}
	put(true, content[:1000])
	if n := e.objects(b, "artifacts/"); len(n) != 1 || n[0] == names[0] {
		t.Fatalf("after overwrite: objects %v (before %v), want one new", n, names)
	}
	names = e.objects(b, "artifacts/")
	e.must(b.Put(e.ctx, names[0], strings.NewReader(strings.Repeat("x", 1000)), 1000))
	_, rc, err := e.s.OpenArtifact(e.ctx, e.org.ID, run.ID, "dist")
	e.must(err)
	if _, err := io.ReadAll(rc); err == nil {
		t.Error("a changed object was read without an error")
	}
	rc.Close()
	e.must(e.s.SetRetention(e.ctx, e.org.ID, 0, store.Retention{ArtifactsDays: days(1)}))
	l := e.leaseKey("a")
	e.complete(l, store.StatusSuccess)
	_, err = e.s.Sweep(e.ctx, time.Now().Add(48*time.Hour), time.Hour)
	e.must(err)
	if n := e.objects(b, "artifacts/"); len(n) != 0 {
		t.Errorf("after the artifact's retention: objects %v", n)
	}
}
