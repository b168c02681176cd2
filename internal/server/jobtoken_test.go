package server

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/store"
)

const tokenFlow = `name: Token
on: push
jobs:
  read:
    runs-on: self-hosted
    steps:
      - run: |
          echo "token=${{ github.token }}"
          printf '%%s' "${{ github.token }}" > %q
          curl -sS -o run.json -w "run:%%{http_code}\n" -H "Authorization: Bearer ${{ secrets.GITHUB_TOKEN }}" "${{ github.server_url }}/api/runs/${{ github.run_id }}"
          grep -q '"name": *"Token"' run.json && echo "read the run"
          curl -sS -o /dev/null -w "repos:%%{http_code}\n" -H "Authorization: Bearer ${{ github.token }}" "${{ github.server_url }}/api/repos"
          curl -sS -o /dev/null -w "other:%%{http_code}\n" -H "Authorization: Bearer ${{ github.token }}" "${{ github.server_url }}/api/runs/999999"
          curl -sS -o /dev/null -w "cancel:%%{http_code}\n" -X POST -H "Authorization: Bearer ${{ github.token }}" "${{ github.server_url }}/api/runs/${{ github.run_id }}/cancel"
  none:
    runs-on: self-hosted
    permissions: {}
    steps:
      - run: |
          curl -sS -o /dev/null -w "none:%%{http_code}\n" -H "Authorization: Bearer ${{ github.token }}" "${{ github.server_url }}/api/runs/${{ github.run_id }}"
`

// A job's GITHUB_TOKEN reads its own run while the job runs, nothing
// else, as its permissions allow; it is masked, and dead once the job ends.
func TestJobToken(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/token.yml": fmt.Sprintf(tokenFlow, tokenFile)}})
	if code, body := h.hook("push", h.push("main"), "d-token"); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	runs := h.waitRuns(1, 60*time.Second)
	if runs[0].Status != store.StatusSuccess {
		t.Fatalf("run: %s%s", runs[0].Status, describeRuns(runs))
	}
	read, none := h.jobLog(runs[0].ID, "read"), h.jobLog(runs[0].ID, "none")
	for _, want := range []string{"token=***", "run:200", "read the run", "repos:403", "other:404", "cancel:403"} {
		if !strings.Contains(read, want) {
			t.Errorf("read job's log lacks %q:\n%s", want, read)
		}
	}
	if !strings.Contains(none, "none:403") {
		t.Errorf("a job with permissions: {} reads the run:\n%s", none)
	}
	if strings.Contains(read+none, "cvj_") {
		t.Error("a job token is in a stored log")
	}
	tok, err := os.ReadFile(tokenFile)
	if err != nil || !strings.HasPrefix(string(tok), "cvj_") {
		t.Fatalf("token file: %q %v", tok, err)
	}
	// The job ended: its token is dead.
	code, b, _ := h.agentCall("GET", "/api/runs/"+itoa(runs[0].ID), string(tok), nil)
	if code != http.StatusUnauthorized {
		t.Errorf("the token after its job: %d %s", code, b)
	}
}
