package forge

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/event"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// The compat payloads come without headers: the GitHub event is the folder;
// GitLab and Gitea headers are the ones those forges send for each file's
// kind, written here by hand with the name and action Parse must give.

type compatCase struct {
	header     string // event header value
	wantName   string
	wantAction string
}

var gitlabCompat = map[string]compatCase{
	"build-event.json":                 {"Job Hook", "build", ""},
	"comment-commit-event.json":        {"Note Hook", "commit_comment", "created"},
	"comment-issue-event.json":         {"Note Hook", "issue_comment", "created"},
	"comment-merge-request-event.json": {"Note Hook", "issue_comment", "created"},
	"comment-snippet-event.json":       {"Note Hook", "note", "created"},
	"confidential-comment-event.json":  {"Confidential Note Hook", "issue_comment", "created"},
	"confidential-issue-event.json":    {"Confidential Issue Hook", "issues", "opened"},
	"deployment-event.json":            {"Deployment Hook", "deployment", ""},
	"issue-event.json":                 {"Issue Hook", "issues", "opened"},
	"job-event.json":                   {"Job Hook", "build", ""},
	"merge-request-event.json":         {"Merge Request Hook", "pull_request", "opened"},
	"pipeline-event.json":              {"Pipeline Hook", "pipeline", ""},
	"push-event.json":                  {"Push Hook", "push", ""},
	"release-event.json":               {"Release Hook", "release", "published"},
	"system-group-created.json":        {"System Hook", "group_create", ""},
	"system-group-member-added.json":   {"System Hook", "user_add_to_group", ""},
	"system-group-member-removed.json": {"System Hook", "user_remove_from_group", ""},
	"system-group-member-updated.json": {"System Hook", "user_update_for_group", ""},
	"system-group-removed.json":        {"System Hook", "group_destroy", ""},
	"system-group-renamed.json":        {"System Hook", "group_rename", ""},
	"system-key-added.json":            {"System Hook", "key_create", ""},
	"system-key-removed.json":          {"System Hook", "key_destroy", ""},
	"system-merge-request-event.json":  {"System Hook", "pull_request", ""},
	"system-project-created.json":      {"System Hook", "project_create", ""},
	"system-project-destroyed.json":    {"System Hook", "project_destroy", ""},
	"system-project-renamed.json":      {"System Hook", "project_rename", ""},
	"system-project-transferred.json":  {"System Hook", "project_transfer", ""},
	"system-project-updated.json":      {"System Hook", "project_update", ""},
	"system-push-event.json":           {"System Hook", "push", ""},
	"system-tag-event.json":            {"System Hook", "push", ""},
	"system-team-member-added.json":    {"System Hook", "user_add_to_team", ""},
	"system-team-member-removed.json":  {"System Hook", "user_remove_from_team", ""},
	"system-team-member-updated.json":  {"System Hook", "user_update_for_team", ""},
	"system-user-created.json":         {"System Hook", "user_create", ""},
	"system-user-failed-login.json":    {"System Hook", "user_failed_login", ""},
	"system-user-removed.json":         {"System Hook", "user_destroy", ""},
	"system-user-renamed.json":         {"System Hook", "user_rename", ""},
	"tag-event.json":                   {"Tag Push Hook", "push", ""},
	"wikipage-event.json":              {"Wiki Page Hook", "wiki_page", "create"},
}

// giteaCompat gives X-Gitea-Event, the coarse event Gitea sends.
var giteaCompat = map[string]compatCase{
	"create-event.json":                 {"create", "create", ""},
	"delete-event.json":                 {"delete", "delete", ""},
	"fork-event.json":                   {"fork", "fork", ""},
	"issue-assign-event.json":           {"issues", "issues", "assigned"},
	"issue-comment-event.json":          {"issue_comment", "issue_comment", "created"},
	"issue-label-event.json":            {"issues", "issues", "labeled"},
	"issue-milestone-event.json":        {"issues", "issues", "milestoned"},
	"issues-event.json":                 {"issues", "issues", "opened"},
	"pull-request-assign-event.json":    {"pull_request", "pull_request", "assigned"},
	"pull-request-comment-event.json":   {"issue_comment", "issue_comment", "created"},
	"pull-request-event.json":           {"pull_request", "pull_request", "opened"},
	"pull-request-label-event.json":     {"pull_request", "pull_request", "labeled"},
	"pull-request-milestone-event.json": {"pull_request", "pull_request", "milestoned"},
	"pull-request-review-event.json":    {"pull_request_comment", "pull_request_review", "reviewed"},
	"push-event.json":                   {"push", "push", ""},
	"release-event.json":                {"release", "release", "published"},
	"repository-event.json":             {"repository", "repository", "created"},
}

// compatPayload is one payload file and the headers it is delivered with.
type compatPayload struct {
	forge, rel string
	headers    http.Header
	body       []byte
	want       compatCase
}

func compatHeaders(forgeName, eventName string) http.Header {
	h := http.Header{}
	switch forgeName {
	case event.GitHub:
		h.Set("X-GitHub-Event", eventName)
		h.Set("X-GitHub-Delivery", "d-1")
	case event.GitLab:
		h.Set("X-Gitlab-Event", eventName)
		h.Set("X-Gitlab-Event-UUID", "d-1")
	default:
		h.Set("X-Gitea-Event", eventName)
		h.Set("X-Gitea-Delivery", "d-1")
	}
	return h
}

// compatPayloads reads every payload of a forge; it skips (fails under CI)
// when the compat material is absent.
func compatPayloads(t testing.TB, forgeName string) []compatPayload {
	t.Helper()
	dir := testenv.CompatDir(t, filepath.Join("webhooks", forgeName))
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if forgeName == "github" {
		files, _ = filepath.Glob(filepath.Join(dir, "*", "*.json"))
	}
	sort.Strings(files)
	var out []compatPayload
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, f)
		p := compatPayload{forge: forgeName, rel: filepath.ToSlash(rel), body: body}
		if forgeName == "github" {
			ev := filepath.Base(filepath.Dir(f))
			p.want = compatCase{header: ev, wantName: ev}
		} else if p.want = compatTable(forgeName)[rel]; p.want.header == "" {
			t.Errorf("%s/%s: no header known for this file: add it to the table", forgeName, rel)
			continue
		}
		p.headers = compatHeaders(forgeName, p.want.header)
		out = append(out, p)
	}
	return out
}

func compatTable(forgeName string) map[string]compatCase {
	if forgeName == "gitlab" {
		return gitlabCompat
	}
	return giteaCompat
}

// TestParseCompatAll parses every payload of every forge: none may fail,
// each gets the expected name (and action, for GitLab and Gitea), its
// delivery id, headers and body.
func TestParseCompatAll(t *testing.T) {
	for _, forgeName := range []string{"github", "gitlab", "gitea"} {
		t.Run(forgeName, func(t *testing.T) {
			payloads := compatPayloads(t, forgeName)
			ok := 0
			for _, p := range payloads {
				if err := checkCompat(p); err != nil {
					t.Errorf("%s: %v", p.rel, err)
					continue
				}
				ok++
			}
			if len(payloads) == 0 {
				t.Fatal("no payloads found")
			}
			testenv.Report(t, fmt.Sprintf("forge webhooks %s: %d/%d payloads parsed", forgeName, ok, len(payloads)))
		})
	}
}

func checkCompat(p compatPayload) error {
	ev, err := Parse(p.forge, p.headers, p.body)
	if err != nil {
		return err
	}
	var problems []string
	if ev.Name != p.want.wantName {
		problems = append(problems, fmt.Sprintf("Name = %q, want %q", ev.Name, p.want.wantName))
	}
	if p.forge != "github" && ev.Action != p.want.wantAction {
		problems = append(problems, fmt.Sprintf("Action = %q, want %q", ev.Action, p.want.wantAction))
	}
	if ev.DeliveryID != "d-1" || ev.Body == nil || len(ev.Headers) == 0 || ev.Forge != p.forge {
		problems = append(problems, fmt.Sprintf("delivery %q, forge %q, %d headers, body nil %v", ev.DeliveryID, ev.Forge, len(ev.Headers), ev.Body == nil))
	}
	if ev.Name == "pull_request" && (ev.PullRequest == nil || ev.PullRequest.Number == 0) {
		problems = append(problems, "pull_request without a pull request number")
	}
	if ev.Name == "push" && !strings.HasPrefix(ev.Ref, "refs/") {
		problems = append(problems, fmt.Sprintf("push Ref = %q", ev.Ref))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}
