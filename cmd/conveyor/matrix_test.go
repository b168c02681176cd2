package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// bigMatrix is a workflow whose matrix makes 100,000 jobs (GitHub allows 256).
const bigMatrix = `on: push
jobs:
  a:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        a: [0,1,2,3,4,5,6,7,8,9]
        b: [0,1,2,3,4,5,6,7,8,9]
        c: [0,1,2,3,4,5,6,7,8,9]
        d: [0,1,2,3,4,5,6,7,8,9]
        e: [0,1,2,3,4,5,6,7,8,9]
    steps:
      - run: 'true'
`

func TestRunRefusesAMatrixOverTheLimit(t *testing.T) {
	dir := writeWorkflow(t, bigMatrix)
	var out, errOut bytes.Buffer
	// An invalid workflow file is a failed run (exit 1), as for other lint errors.
	if code := runMain(context.Background(), []string{"-C", dir, "--backend", "host"}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out.String(), errOut.String())
	}
	if want := "ci.yml:7:9: The matrix makes 100000 jobs; a matrix may make at most 256"; !strings.Contains(errOut.String(), want) {
		t.Errorf("stderr %q lacks %q", errOut.String(), want)
	}
	if strings.Contains(out.String()+errOut.String(), "a (0, 0, 0, 0, 0)") {
		t.Errorf("a leg ran:\n%s", out.String())
	}
}
