package server

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// The cache parses a file once per path and content, keeps at most its
// size, and returns what lint.Bytes returns: problems with the path's
// file:line:col.
func TestWorkflowCacheParsesOncePerPathAndContent(t *testing.T) {
	c := newWorkflowCache(2)
	good := []byte("on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n")
	bad := []byte("on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    stepz: []\n")

	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); c.lint(good, ".github/workflows/ci.yml") }()
	}
	wg.Wait()
	a, probs := c.lint(good, ".github/workflows/ci.yml")
	if len(probs) != 0 || a == nil || len(a.Jobs) != 1 {
		t.Fatalf("workflow %+v, problems %v", a, probs)
	}
	if b, _ := c.lint(append([]byte(nil), good...), ".github/workflows/ci.yml"); b != a {
		t.Error("the same file was parsed again")
	}
	if b, _ := c.lint(good, ".github/workflows/other.yml"); b == a || b.File != ".github/workflows/other.yml" {
		t.Errorf("another path shares the parse: %q", b.File)
	}
	_, probs = c.lint(bad, ".github/workflows/bad.yml")
	if len(probs) == 0 || !strings.Contains(probs.Error(), ".github/workflows/bad.yml:5:5") {
		t.Errorf("problems %q, want them at .github/workflows/bad.yml:5:5", probs.Error())
	}
	if n := c.len(); n != 2 {
		t.Errorf("%d files held, want at most 2", n)
	}
	if b, _ := c.lint(good, ".github/workflows/ci.yml"); b == a {
		t.Error("the least recently used file was not let go")
	}

	var none *workflowCache // servers built in tests without New
	if wf, probs := none.lint(good, "ci.yml"); wf == nil || len(probs) != 0 {
		t.Errorf("nil cache: %v %v", wf, probs)
	}
	big := []byte(fmt.Sprintf("on: push\n# %s\njobs:\n  b:\n    runs-on: x\n    steps:\n      - run: y\n", strings.Repeat("x", maxCachedWorkflow)))
	c.lint(big, "big.yml")
	if w1, _ := c.lint(big, "big.yml"); w1 == nil {
		t.Fatal("big file not parsed")
	}
	if n := c.len(); n != 2 {
		t.Errorf("%d files held after a big one", n)
	}
}
