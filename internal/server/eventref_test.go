package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Events without a commit run on the default branch's head, as on GitHub;
// a pull request run has github.ref refs/pull/N/merge; a re-run counts in
// github.run_attempt.
func TestEventRefsAndRunAttempt(t *testing.T) {
	const wf = "on: [issues, issue_comment, release, pull_request]\njobs:\n  show:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo \"at ${{ github.sha }} ref=${{ github.ref }} name=${{ github.ref_name }} attempt=${{ github.run_attempt }}\"\n"
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/ev.yml": wf}})
	sha, _ := h.git.head()
	h.git.git("tag", "v1.0.0")
	repo := map[string]any{"full_name": "octo/repo", "clone_url": "file://" + h.git.dir, "default_branch": "main"}
	sender := map[string]any{"login": "octocat"}
	hooks := []struct {
		event   string
		payload map[string]any
		want    string
	}{
		{"issues", map[string]any{"action": "opened", "issue": map[string]any{"number": 3}, "repository": repo, "sender": sender}, "ref=refs/heads/main name=main attempt=1"},
		{"issue_comment", map[string]any{"action": "created", "issue": map[string]any{"number": 3}, "comment": map[string]any{"body": "hi"}, "repository": repo, "sender": sender}, "ref=refs/heads/main name=main attempt=1"},
		{"release", map[string]any{"action": "published", "release": map[string]any{"tag_name": "v1.0.0"}, "repository": repo, "sender": sender}, "ref=refs/tags/v1.0.0 name=v1.0.0 attempt=1"},
		{"pull_request", map[string]any{"action": "opened", "number": 7, "repository": repo, "sender": sender, "pull_request": map[string]any{
			"number": 7, "head": map[string]any{"ref": "feature", "sha": sha, "repo": repo}, "base": map[string]any{"ref": "main", "sha": sha, "repo": repo}}},
			"ref=refs/pull/7/merge name=7/merge attempt=1"},
	}
	for i, hk := range hooks {
		if code, body := h.hook(hk.event, hk.payload, "d-"+hk.event); code != http.StatusAccepted && code != http.StatusOK {
			t.Fatalf("%s: %d %s", hk.event, code, body)
		}
		runs := h.waitRuns(i+1, 60*time.Second)
		r := runs[0]
		for _, x := range runs {
			if x.Event == hk.event {
				r = x
			}
		}
		if r.Event != hk.event || r.Status != "success" || r.SHA != sha {
			t.Fatalf("%s: run %+v%s", hk.event, r, describeRuns(runs))
		}
		if l := h.jobLog(r.ID, "show"); !strings.Contains(l, "at "+sha+" "+hk.want) {
			t.Errorf("%s: log lacks %q:\n%s", hk.event, hk.want, l)
		}
	}
	runs := h.waitRuns(len(hooks), 10*time.Second)
	var rerun struct {
		ID int64 `json:"id"`
	}
	h.api("POST", "/api/runs/"+itoa(runs[0].ID)+"/rerun", map[string]bool{}, http.StatusCreated, &rerun)
	h.waitRuns(len(hooks)+1, 60*time.Second)
	nr, err := h.st.GetRun(context.Background(), 1, rerun.ID)
	if err != nil {
		t.Fatal(err)
	}
	if l := h.jobLog(nr.ID, "show"); !strings.Contains(l, "attempt=2") {
		t.Errorf("re-run: log lacks attempt=2:\n%s", l)
	}
}
