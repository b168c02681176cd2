package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// A pushed workflow whose matrix makes more than 256 jobs gets a failed
// run saying so, at the matrix, and starts no job.
func TestMatrixOverTheLimitFailsItsRun(t *testing.T) {
	big := "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    strategy:\n      matrix:\n" +
		"        a: [0,1,2,3,4,5,6,7,8,9]\n        b: [0,1,2,3,4,5,6,7,8,9]\n        c: [0,1,2,3,4,5,6,7,8,9]\n" +
		"        d: [0,1,2,3,4,5,6,7,8,9]\n        e: [0,1,2,3,4,5,6,7,8,9]\n    steps:\n      - run: 'true'\n"
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/big.yml": big}})
	h.hook("push", h.push("main"), "matrix-1")
	runs := h.waitRuns(1, 30*time.Second)
	r := runs[0]
	jobs, err := h.st.Jobs(context.Background(), r.OrgID, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := ".github/workflows/big.yml:7:9: The matrix makes 100000 jobs; a matrix may make at most 256"
	if r.Status != store.StatusFailure || !strings.Contains(r.Error, want) || len(jobs) != 0 {
		t.Errorf("run: %s %q, %d jobs; want a failure with %q and no job", r.Status, r.Error, len(jobs), want)
	}
}
