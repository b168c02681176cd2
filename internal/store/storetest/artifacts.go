package storetest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

var artifactTests = []test{
	{"Artifacts", testArtifacts},
	{"ArtifactOverwrite", testArtifactOverwrite},
	{"ArtifactTenantIsolation", testArtifactTenantIsolation},
	{"ArtifactFailedUpload", testArtifactFailedUpload},
	{"ArtifactConcurrentSameName", testArtifactConcurrentSameName},
}

func (e *env) readArtifact(orgID, runID int64, name string) (*store.Artifact, []byte) {
	e.t.Helper()
	a, rc, err := e.s.OpenArtifact(e.ctx, orgID, runID, name)
	e.must(err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	e.must(err)
	return a, b
}

// testArtifacts: content over several chunks and an empty one round-trip;
// the list is by name with sizes; each run has its own names.
func testArtifacts(t *testing.T, e *env) {
	run := e.newRun(e.repo, nil, job("build"))
	other := e.newRun(e.repo, nil, job("build"))
	big := make([]byte, 2<<20+123) // three chunks
	rand.Read(big)
	a := &store.Artifact{OrgID: e.org.ID, RunID: run.ID, Name: "dist", Job: "build", RetentionDays: 5}
	e.must(e.s.PutArtifact(e.ctx, a, false, bytes.NewReader(big)))
	if a.ID == 0 || a.Size != int64(len(big)) || a.Created.IsZero() {
		t.Fatalf("PutArtifact set %+v", a)
	}
	e.must(e.s.PutArtifact(e.ctx, &store.Artifact{OrgID: e.org.ID, RunID: run.ID, Name: "empty", Job: "test"}, false, strings.NewReader("")))
	e.must(e.s.PutArtifact(e.ctx, &store.Artifact{OrgID: e.org.ID, RunID: other.ID, Name: "dist"}, false, strings.NewReader("x")))
	got, data := e.readArtifact(e.org.ID, run.ID, "dist")
	if !bytes.Equal(data, big) || got.Job != "build" || got.RetentionDays != 5 || got.Size != int64(len(big)) {
		t.Errorf("read back %+v, %d bytes (equal %v)", got, len(data), bytes.Equal(data, big))
	}
	if _, data := e.readArtifact(e.org.ID, run.ID, "empty"); len(data) != 0 {
		t.Errorf("empty artifact read %d bytes", len(data))
	}
	list, err := e.s.ListArtifacts(e.ctx, e.org.ID, run.ID)
	e.must(err)
	if len(list) != 2 || list[0].Name != "dist" || list[1].Name != "empty" || list[0].Size != int64(len(big)) {
		t.Errorf("ListArtifacts = %+v", list)
	}
	_, _, err = e.s.OpenArtifact(e.ctx, e.org.ID, run.ID, "nope")
	wantKind(t, err, errs.NotFound, "OpenArtifact of a missing name")
	_, err = e.s.ListArtifacts(e.ctx, e.org.ID, 999999)
	wantKind(t, err, errs.NotFound, "ListArtifacts of a missing run")
	err = e.s.PutArtifact(e.ctx, &store.Artifact{OrgID: e.org.ID, RunID: 999999, Name: "x"}, false, strings.NewReader("x"))
	wantKind(t, err, errs.NotFound, "PutArtifact to a missing run")
}

func testArtifactOverwrite(t *testing.T, e *env) {
	run := e.newRun(e.repo, nil, job("build"))
	put := func(content string, overwrite bool) error {
		return e.s.PutArtifact(e.ctx, &store.Artifact{OrgID: e.org.ID, RunID: run.ID, Name: "a"}, overwrite, strings.NewReader(content))
	}
	e.must(put("one", false))
	wantKind(t, put("two", false), errs.Conflict, "a second artifact of the same name")
	if _, data := e.readArtifact(e.org.ID, run.ID, "a"); string(data) != "one" {
		t.Errorf("after the refused upload: %q", data)
	}
	e.must(put("three", true))
	if _, data := e.readArtifact(e.org.ID, run.ID, "a"); string(data) != "three" {
		t.Errorf("after overwrite: %q", data)
	}
	list, err := e.s.ListArtifacts(e.ctx, e.org.ID, run.ID)
	e.must(err)
	if len(list) != 1 {
		t.Errorf("ListArtifacts after overwrite = %d artifacts, want 1", len(list))
	}
}

// testArtifactTenantIsolation: another organisation can neither list,
// read nor upload to a run it does not own.
func testArtifactTenantIsolation(t *testing.T, e *env) {
	other := e.newOrg("other")
	run := e.newRun(e.repo, nil, job("build"))
	e.must(e.s.PutArtifact(e.ctx, &store.Artifact{OrgID: e.org.ID, RunID: run.ID, Name: "a"}, false, strings.NewReader("x")))
	_, err := e.s.ListArtifacts(e.ctx, other.ID, run.ID)
	wantKind(t, err, errs.NotFound, "ListArtifacts from another organisation")
	_, _, err = e.s.OpenArtifact(e.ctx, other.ID, run.ID, "a")
	wantKind(t, err, errs.NotFound, "OpenArtifact from another organisation")
	err = e.s.PutArtifact(e.ctx, &store.Artifact{OrgID: other.ID, RunID: run.ID, Name: "b"}, false, strings.NewReader("x"))
	wantKind(t, err, errs.NotFound, "PutArtifact from another organisation")
}

// failingReader gives n bytes then fails with err.
type failingReader struct {
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	k := min(len(p), f.n)
	f.n -= k
	return k, nil
}

// testArtifactFailedUpload: a reader error (over a size limit) is
// returned with its kind and leaves nothing behind, not even the name.
func testArtifactFailedUpload(t *testing.T, e *env) {
	run := e.newRun(e.repo, nil, job("build"))
	tooLarge := errs.E("limit", errs.TooLarge, "over the limit")
	err := e.s.PutArtifact(e.ctx, &store.Artifact{OrgID: e.org.ID, RunID: run.ID, Name: "a"}, false, &failingReader{n: 1<<20 + 10, err: tooLarge})
	if !errors.Is(err, tooLarge) {
		t.Fatalf("PutArtifact = %v, want the reader's error", err)
	}
	list, err := e.s.ListArtifacts(e.ctx, e.org.ID, run.ID)
	e.must(err)
	if len(list) != 0 {
		t.Errorf("a failed upload is listed: %+v", list)
	}
	e.must(e.s.PutArtifact(e.ctx, &store.Artifact{OrgID: e.org.ID, RunID: run.ID, Name: "a"}, false, strings.NewReader("ok")))
}

// testArtifactConcurrentSameName: of uploads racing for one name without
// overwrite, exactly one wins; the others get Conflict.
func testArtifactConcurrentSameName(t *testing.T, e *env) {
	run := e.newRun(e.repo, nil, job("build"))
	const n = 4
	var wg sync.WaitGroup
	results := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.s.PutArtifact(e.ctx, &store.Artifact{OrgID: e.org.ID, RunID: run.ID, Name: "same"}, false, strings.NewReader("data"))
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range results {
		switch {
		case err == nil:
			won++
		case !errs.Is(err, errs.Conflict):
			t.Errorf("a losing upload: %v (kind %v), want Conflict", err, errs.KindOf(err))
		}
	}
	if won != 1 {
		t.Errorf("%d uploads of one name won, want 1", won)
	}
}
