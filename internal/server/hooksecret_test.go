package server

import (
	"net/http"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/api"
)

// TestRotateHookSecret: after POST /api/repos/{id}/hook-secret the old
// secret's signatures are refused at once (the hook cache forgets the
// repository) and the new one's accepted.
func TestRotateHookSecret(t *testing.T) {
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/ci.yml": "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n"}})
	ping := []byte(`{"zen":"hi"}`)
	if code, b := h.hookRaw("ping", ping, "p1", sign(h.repo.Secret, ping)); code != http.StatusOK {
		t.Fatalf("ping with the first secret: %d %s", code, b)
	}
	var out api.RepoCreated
	h.api("POST", "/api/repos/"+itoa(h.repo.ID)+"/hook-secret", nil, http.StatusOK, &out)
	if len(out.Secret) != 40 || out.Secret == h.repo.Secret || out.HookURL == "" || out.Repo.ID != h.repo.ID {
		t.Fatalf("rotated: %+v", out)
	}
	if code, b := h.hookRaw("ping", ping, "p2", sign(h.repo.Secret, ping)); code != http.StatusUnauthorized {
		t.Errorf("ping with the old secret: %d %s", code, b)
	}
	if code, b := h.hookRaw("ping", ping, "p3", sign(out.Secret, ping)); code != http.StatusOK {
		t.Errorf("ping with the new secret: %d %s", code, b)
	}
	var audit api.AuditList
	h.api("GET", "/api/audit", nil, http.StatusOK, &audit)
	if len(audit.Entries) == 0 || audit.Entries[0].Action != "repo.hook_secret" {
		t.Errorf("audit log: %+v", audit.Entries)
	}
}
