package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// Gitea's "Test delivery" button sends a push whose before and after are
// the same commit. It is answered as a ping (nothing stored, no run) unless
// the repository opts in with run_test_deliveries; real pushes run.
func TestGiteaTestDeliveryIsAPing(t *testing.T) {
	flow := "on: push\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo deploying\n"
	h := newHarness(t, harnessOpts{forge: "gitea", files: map[string]string{".github/workflows/deploy.yml": flow}})
	post := func(repoID int64, secret string, payload map[string]any, delivery string) (int, string) {
		t.Helper()
		body, _ := json.Marshal(payload)
		req, _ := http.NewRequest("POST", h.url+"/hooks/"+itoa(repoID), bytes.NewReader(body))
		req.Header.Set("X-Gitea-Event", "push")
		req.Header.Set("X-Gitea-Delivery", delivery)
		req.Header.Set("X-Gitea-Signature", strings.TrimPrefix(sign(secret, body), "sha256="))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	test := h.push("main")
	test["before"] = test["after"]
	if code, b := post(h.repo.ID, h.repo.Secret, test, "test-1"); code != http.StatusOK || !strings.Contains(b, `"test_delivery":true`) {
		t.Fatalf("test delivery: %d %s, want 200 as a ping", code, b)
	}
	if ev, err := h.st.ClaimEvents(context.Background(), "probe", 10, time.Millisecond); err != nil || len(ev) != 0 {
		t.Fatalf("the test delivery was stored: %v %v", ev, err)
	}

	// A repository that opts in runs them.
	var out api.RepoCreated
	h.api("POST", "/api/repos", api.RepoInput{URL: "file://" + h.git.dir, Forge: "gitea", Name: "octo/opted", Secret: "opt-in",
		RunTestDeliveries: true}, http.StatusCreated, &out)
	if !out.Repo.RunTestDeliveries {
		t.Fatalf("created repository: %+v", out.Repo)
	}
	if code, b := post(out.Repo.ID, "opt-in", test, "test-2"); code != http.StatusAccepted {
		t.Fatalf("test delivery to the opted-in repository: %d %s", code, b)
	}
	runs := h.waitRuns(1, 30*time.Second)
	if len(runs) != 1 || runs[0].RepoID != out.Repo.ID || runs[0].Status != store.StatusSuccess {
		t.Fatalf("runs: %s", describeRuns(runs))
	}
	// A real push to the first repository runs.
	if code, b := post(h.repo.ID, h.repo.Secret, h.push("main"), "real-1"); code != http.StatusAccepted {
		t.Fatalf("real push: %d %s", code, b)
	}
	if runs := h.waitRuns(2, 30*time.Second); len(runs) != 2 {
		t.Fatalf("runs: %s", describeRuns(runs))
	}
	// The first repository opts in later (PATCH): its next test delivery runs at once.
	on := true
	var changed api.Repo
	h.api("PATCH", "/api/repos/"+itoa(h.repo.ID), api.RepoUpdate{RunTestDeliveries: &on}, http.StatusOK, &changed)
	if !changed.RunTestDeliveries {
		t.Fatalf("PATCH: %+v", changed)
	}
	var audit json.RawMessage
	h.api("GET", "/api/audit", nil, http.StatusOK, &audit)
	if !strings.Contains(string(audit), "repo.settings") || !strings.Contains(string(audit), "run_test_deliveries=true") {
		t.Errorf("the change is not in the audit log: %s", audit)
	}
	if code, b := post(h.repo.ID, h.repo.Secret, test, "test-3"); code != http.StatusAccepted {
		t.Fatalf("test delivery after opting in: %d %s", code, b)
	}
	if runs := h.waitRuns(3, 30*time.Second); len(runs) != 3 {
		t.Fatalf("runs: %s", describeRuns(runs))
	}
}
