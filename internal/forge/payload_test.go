package forge

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/event"
)

// at follows keys through nested maps.
func at(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, _ := v.(map[string]any)
		v = mm[k]
	}
	return v
}

func mustParse(t *testing.T, forgeName string, h map[string]string, body string) *event.Event {
	t.Helper()
	hh := hdr()
	for k, v := range h {
		hh.Set(k, v)
	}
	ev, err := Parse(forgeName, hh, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestGitHubPayloadGitHubIsBody(t *testing.T) {
	ev := mustParse(t, "github", map[string]string{"X-GitHub-Event": "push"}, `{"ref":"refs/heads/main","extra":1}`)
	if p := GitHubPayload(ev); reflect.ValueOf(p).Pointer() != reflect.ValueOf(ev.Body).Pointer() {
		t.Errorf("payload is not the body: %v", p)
	}
}

func TestGitHubPayload(t *testing.T) {
	gitlabPush := `{"object_kind":"push","ref":"refs/heads/main","before":"b0","after":"a1","checkout_sha":"a1",
		"user_username":"jo","project":{"path_with_namespace":"grp/sub/proj","web_url":"https://gl/grp/sub/proj"},
		"commits":[{"id":"a1","message":"fix [skip ci]","added":["x"],"modified":[],"removed":[]}],"total_commits_count":1}`
	gitlabMR := `{"object_kind":"merge_request","user":{"username":"jo"},"project":{"path_with_namespace":"g/p"},
		"object_attributes":{"iid":4,"action":"open","source_branch":"f","target_branch":"main","last_commit":{"id":"h4"},
		"source":{"path_with_namespace":"me/p"},"target":{"path_with_namespace":"g/p"}}}`
	giteaPR := `{"action":"synchronized","number":2,"sender":{"login":"s"},"repository":{"full_name":"o/r","id":9},
		"pull_request":{"number":2,"html_url":"http://h/o/r/pulls/2","head":{"ref":"f","sha":"h2","repo":{"full_name":"o/r","id":9}},"base":{"ref":"main","sha":"b2"}}}`
	gitlabRelease := `{"object_kind":"release","action":"create","tag":"v2","name":"Two","project":{"path_with_namespace":"g/p"},"commit":{"id":"c2"}}`
	giteaCreate := `{"ref":"v3","ref_type":"tag","sha":"c3","repository":{"full_name":"o/r"}}`

	for _, tc := range []struct {
		name  string
		ev    *event.Event
		wants map[string]any // dotted path -> value
	}{
		{"gitlab push", mustParse(t, "gitlab", map[string]string{"X-Gitlab-Event": "Push Hook"}, gitlabPush), map[string]any{
			"ref": "refs/heads/main", "before": "b0", "after": "a1", "created": false,
			"head_commit.id": "a1", "head_commit.message": "fix [skip ci]", "sender.login": "jo",
			"repository.full_name": "grp/sub/proj", "repository.name": "proj", "repository.owner.login": "grp/sub",
			"repository.html_url": "https://gl/grp/sub/proj", "object_kind": "push",
		}},
		{"gitlab merge request", mustParse(t, "gitlab", map[string]string{"X-Gitlab-Event": "Merge Request Hook"}, gitlabMR), map[string]any{
			"action": "opened", "number": float64(4), "pull_request.number": float64(4),
			"pull_request.head.ref": "f", "pull_request.head.sha": "h4", "pull_request.head.repo.full_name": "me/p",
			"pull_request.head.repo.fork": true, "pull_request.base.ref": "main", "pull_request.base.repo.full_name": "g/p",
		}},
		{"gitea pull request keeps its extra keys", mustParse(t, "gitea", map[string]string{"X-Gitea-Event": "pull_request"}, giteaPR), map[string]any{
			"action": "synchronize", "pull_request.html_url": "http://h/o/r/pulls/2", "pull_request.head.sha": "h2",
			"pull_request.head.repo.id": float64(9), "pull_request.base.sha": "b2", "repository.id": float64(9), "sender.login": "s",
		}},
		{"gitlab release", mustParse(t, "gitlab", map[string]string{"X-Gitlab-Event": "Release Hook"}, gitlabRelease), map[string]any{
			"action": "published", "release.tag_name": "v2", "release.name": "Two", "release.draft": false,
		}},
		{"gitea create", mustParse(t, "gitea", map[string]string{"X-Gitea-Event": "create"}, giteaCreate), map[string]any{
			"ref": "v3", "ref_type": "tag",
		}},
		{"api dispatch without body", &event.Event{
			Name: "workflow_dispatch", Ref: "refs/heads/main", Repository: event.Repository{FullName: "o/r"},
			Inputs: map[string]string{"level": "3"}, Sender: "cli",
		}, map[string]any{"ref": "refs/heads/main", "inputs.level": "3", "sender.login": "cli", "repository.owner.login": "o"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := json.Marshal(tc.ev.Body)
			p := GitHubPayload(tc.ev)
			for path, want := range tc.wants {
				if got := at(p, strings.Split(path, ".")...); !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v, want %#v", path, got, want)
				}
			}
			if after, _ := json.Marshal(tc.ev.Body); string(after) != string(before) {
				t.Errorf("Body was modified:\n%s\nwas\n%s", after, before)
			}
			if _, err := json.Marshal(p); err != nil {
				t.Errorf("payload does not marshal: %v", err)
			}
		})
	}
}
