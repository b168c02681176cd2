package forge

import (
	"fmt"
	"net/http"
	"reflect"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestParseInvalid(t *testing.T) {
	gh := hdr("X-GitHub-Event", "push")
	for _, tc := range []struct {
		name, forge string
		h           http.Header
		body        string
	}{
		{"unknown forge", "bitbucket", gh, `{}`},
		{"empty body", "github", gh, ``},
		{"not JSON", "github", gh, `ref=main`},
		{"array", "github", gh, `[{"ref":"refs/heads/main"}]`},
		{"null", "github", gh, `null`},
		{"truncated", "gitea", hdr("X-Gitea-Event", "push"), `{"ref":`},
		{"no github event header", "github", hdr(), `{}`},
		{"no gitea event header", "gitea", hdr("X-GitHub-Delivery", "1"), `{}`},
		{"no gitlab event header", "gitlab", hdr(), `{"object_kind":"push"}`},
		{"push without ref", "github", gh, `{"after":"abc"}`},
		{"gitlab push without ref", "gitlab", hdr("X-Gitlab-Event", "Push Hook"), `{"after":"abc"}`},
		{"pull_request without object", "github", hdr("X-GitHub-Event", "pull_request"), `{"action":"opened"}`},
		{"merge request without attributes", "gitlab", hdr("X-Gitlab-Event", "Merge Request Hook"), `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := Parse(tc.forge, tc.h, []byte(tc.body))
			if !errs.Is(err, errs.Invalid) || ev != nil {
				t.Fatalf("Parse = %v, %v; want an Invalid error", ev, err)
			}
		})
	}
}

func TestParseOtherGitHubEvent(t *testing.T) {
	body := `{"action":"completed","check_run":{"id":1},"repository":{"full_name":"o/r"},"sender":{"login":"bot"}}`
	ev, err := Parse("github", hdr("X-GitHub-Event", "check_run", "x-github-delivery", "42"), []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Name != "check_run" || ev.Action != "completed" || ev.Repository.FullName != "o/r" || ev.Sender != "bot" || ev.DeliveryID != "42" {
		t.Errorf("event = %+v", ev)
	}
	if ev.Headers["X-Github-Event"] != "check_run" || ev.Body["check_run"] == nil {
		t.Errorf("headers %v, body %v", ev.Headers, ev.Body)
	}
}

func TestParseGitHubPush(t *testing.T) {
	// An annotated tag: after is the tag object, head_commit the commit.
	body := `{"ref":"refs/tags/v1","before":"0000000000000000000000000000000000000000","after":"aaa",
		"head_commit":{"id":"ccc","message":"release"},
		"commits":[{"id":"b1","added":["a","b"],"modified":["c"]},{"id":"ccc","removed":["a"],"modified":["d"]}]}`
	ev, err := Parse("github", hdr("X-GitHub-Event", "push"), []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if ev.SHA != "ccc" || !ev.Created || ev.Deleted || ev.HeadCommit != "release" || ev.Tag() != "v1" {
		t.Errorf("event = %+v", ev)
	}
	if want := []string{"a", "b", "c", "d"}; !reflect.DeepEqual(ev.ChangedFiles, want) {
		t.Errorf("ChangedFiles = %q, want %q", ev.ChangedFiles, want)
	}
}

func TestChangedFilesUnknown(t *testing.T) {
	for _, tc := range []struct{ name, forge, hook, body string }{
		{"no commits", "github", "push", `{"ref":"refs/heads/x","commits":[]}`},
		{"gitlab cut list", "gitlab", "Push Hook", `{"ref":"refs/heads/x","total_commits_count":3,"commits":[{"id":"1","added":["a"]}]}`},
		{"gitea cut list", "gitea", "push", `{"ref":"refs/heads/x","total_commits":6,"commits":[{"id":"1","added":["a"]}]}`},
		{"commit without lists", "gitlab", "System Hook", `{"event_name":"push","ref":"refs/heads/x","commits":[{"id":"1","added":["a"]},{"id":"2"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hdr("X-GitHub-Event", tc.hook, "X-Gitea-Event", tc.hook, "X-Gitlab-Event", tc.hook)
			ev, err := Parse(tc.forge, h, []byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if ev.ChangedFiles != nil {
				t.Errorf("ChangedFiles = %q, want nil (unknown)", ev.ChangedFiles)
			}
		})
	}
}

func TestParseGitLabMergeRequestActions(t *testing.T) {
	for _, tc := range []struct {
		action, oldrev, state string
		want                  string
		merged                bool
	}{
		{"open", "", "opened", "opened", false},
		{"update", "abc", "opened", "synchronize", false},
		{"update", "", "opened", "edited", false},
		{"close", "", "closed", "closed", false},
		{"reopen", "", "opened", "reopened", false},
		{"merge", "", "merged", "closed", true},
		{"approved", "", "opened", "approved", false},
	} {
		t.Run(tc.want+"/"+tc.action, func(t *testing.T) {
			body := `{"object_kind":"merge_request","user":{"username":"u"},
				"object_attributes":{"iid":7,"action":"` + tc.action + `","oldrev":"` + tc.oldrev + `","state":"` + tc.state + `",
				"source_branch":"f","target_branch":"main","source_project_id":2,"target_project_id":1,"last_commit":{"id":"h"}}}`
			ev, err := Parse("gitlab", hdr("X-Gitlab-Event", "Merge Request Hook"), []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			pr := ev.PullRequest
			if ev.Action != tc.want || pr.Merged != tc.merged || pr.Number != 7 || !pr.Fork || ev.SHA != "h" || ev.Before != tc.oldrev || ev.Sender != "u" {
				t.Errorf("event = %+v, pr = %+v", ev, pr)
			}
		})
	}
}

func TestParseGiteaNames(t *testing.T) {
	pr := `{"action":"%s","number":3,"pull_request":{"number":3,"merged":%s,"head":{"ref":"f","sha":"h"},"base":{"ref":"main","sha":"b"}}}`
	for _, tc := range []struct {
		name       string
		h          http.Header
		action     string
		merged     string
		wantName   string
		wantAction string
	}{
		{"sync via type header", hdr("X-Gitea-Event-Type", "pull_request_sync"), "synchronized", "false", "pull_request", "synchronize"},
		{"forgejo header", hdr("X-Forgejo-Event", "pull_request"), "closed", "true", "pull_request", "closed"},
		{"label cleared", hdr("X-Gitea-Event", "pull_request"), "label_cleared", "false", "pull_request", "unlabeled"},
		{"review approved", hdr("X-Gitea-Event", "pull_request_approved"), "reviewed", "false", "pull_request_review", "reviewed"},
		{"comment via type header", hdr("X-Gitea-Event-Type", "pull_request_comment"), "created", "false", "issue_comment", "created"},
		{"coarse header wins", hdr("X-Gitea-Event", "pull_request", "X-Gitea-Event-Type", "pull_request_label"), "label_updated", "false", "pull_request", "labeled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(fmt.Sprintf(pr, tc.action, tc.merged))
			ev, err := Parse("forgejo", tc.h, body)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Forge != "gitea" || ev.Name != tc.wantName || ev.Action != tc.wantAction || ev.PullRequest.Merged != (tc.merged == "true") {
				t.Errorf("event = %+v, pr = %+v", ev, ev.PullRequest)
			}
		})
	}
}

func TestParseWorkflowDispatchInputs(t *testing.T) {
	body := `{"ref":"refs/heads/main","inputs":{"s":"x","b":true,"n":1.5,"i":3,"z":null,"o":{"k":1}}}`
	ev, err := Parse("github", hdr("X-GitHub-Event", "workflow_dispatch"), []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"s": "x", "b": "true", "n": "1.5", "i": "3", "z": "", "o": `{"k":1}`}
	if !reflect.DeepEqual(ev.Inputs, want) || ev.Branch() != "main" {
		t.Errorf("inputs = %q, ref %q", ev.Inputs, ev.Ref)
	}
}

func TestGitLabVisibility(t *testing.T) {
	for _, tc := range []struct {
		project string
		private bool
	}{
		{`{"visibility":"public","visibility_level":0}`, false},
		{`{"visibility":"internal"}`, true},
		{`{"visibility_level":20}`, false},
		{`{"visibility_level":10}`, true},
		{`{}`, false},
	} {
		body := `{"object_kind":"issue","project":` + tc.project + `}`
		ev, err := Parse("gitlab", hdr("X-Gitlab-Event", "Issue Hook"), []byte(body))
		if err != nil || ev.Repository.Private != tc.private {
			t.Errorf("%s: private = %v, %v; want %v", tc.project, ev.Repository.Private, err, tc.private)
		}
	}
}

func TestDeliveryID(t *testing.T) {
	for _, tc := range []struct {
		forge string
		h     http.Header
		want  string
	}{
		{"github", hdr("X-GitHub-Delivery", "g1"), "g1"},
		{"gitea", hdr("X-Gitea-Delivery", "t1", "X-GitHub-Delivery", "t2"), "t1"},
		{"forgejo", hdr("X-Forgejo-Delivery", "f1"), "f1"},
		{"gitlab", hdr("X-Gitlab-Event-UUID", "u1"), "u1"},
		{"gitlab", hdr("X-Gitlab-Event-UUID", "u1", "Idempotency-Key", "k1"), "k1"},
		{"gitlab", hdr(), ""},
		{"nope", hdr("X-GitHub-Delivery", "g1"), ""},
	} {
		if got := DeliveryID(tc.forge, tc.h); got != tc.want {
			t.Errorf("DeliveryID(%s, %v) = %q, want %q", tc.forge, tc.h, got, tc.want)
		}
	}
}

func TestHeadersFirstValueCanonicalNoSecrets(t *testing.T) {
	h := http.Header{"X-Github-Event": {"ping", "push"}, "x-custom": {"a"}, "X-Empty": {}, "X-Gitlab-Token": {"secret"}, "Authorization": {"Bearer t"}}
	ev, err := Parse("github", h, []byte(`{"zen":"z"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"X-Github-Event": "ping", "X-Custom": "a"}
	if !reflect.DeepEqual(ev.Headers, want) || ev.Name != "ping" {
		t.Errorf("Headers = %v, Name %q", ev.Headers, ev.Name)
	}
}

func TestParseForkPullRequest(t *testing.T) {
	for _, tc := range []struct {
		name, head string
		fork       bool
	}{
		{"same repository", `{"full_name":"o/r"}`, false},
		{"same, other case", `{"full_name":"O/R"}`, false},
		{"fork", `{"full_name":"me/r"}`, true},
		{"deleted fork", `null`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"action":"opened","repository":{"full_name":"o/r"},"pull_request":{"number":1,
				"head":{"ref":"f","sha":"h","repo":` + tc.head + `},"base":{"ref":"main","sha":"b","repo":{"full_name":"o/r"}}}}`
			ev, err := Parse("github", hdr("X-GitHub-Event", "pull_request"), []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if ev.PullRequest.Fork != tc.fork || ev.Ref != "" || ev.SHA != "h" {
				t.Errorf("fork = %v, want %v (ref %q, sha %q)", ev.PullRequest.Fork, tc.fork, ev.Ref, ev.SHA)
			}
		})
	}
}
