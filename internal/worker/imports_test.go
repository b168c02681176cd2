package worker

import (
	"os/exec"
	"strings"
	"testing"
)

// The job contract, the job runner and the worker are the execution
// core's: they reach nothing of the server side, even indirectly.
func TestImportsNoServerSide(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".", "../jobrun", "../jobspec").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		for _, bad := range []string{"/internal/store", "/internal/api", "/internal/server", "/internal/client"} {
			if strings.HasSuffix(p, bad) || strings.Contains(p, bad+"/") {
				t.Errorf("imports %s", p)
			}
		}
	}
}
