package forge

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/event"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// Expected values below were read by eye in the payload files.

const (
	ghSHA      = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	ghPRHead   = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
	ghPRBase   = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
	ghPRTitle  = "Update the README with new information."
	zeros      = "0000000000000000000000000000000000000000"
	giteaSHA   = "67b56589a45103f891bdee7c0546e5d40bc02001"
	giteaPRSHA = "48e773f892a831faa47c0a160d1b7f0cd369ae2a"
)

var (
	helloWorld = event.Repository{
		FullName: "Codertocat/Hello-World", CloneURL: "https://github.com/Codertocat/Hello-World.git",
		HTMLURL: "https://github.com/Codertocat/Hello-World", DefaultBranch: "master",
	}
	ghPR = event.PullRequest{
		Number: 2, Title: ghPRTitle, HeadRef: "changes", HeadSHA: ghPRHead,
		BaseRef: "master", BaseSHA: ghPRBase, HeadRepo: "Codertocat/Hello-World",
	}
	giteaRepo = event.Repository{
		FullName: "example/example", CloneURL: "http://localhost:3000/example/example.git",
		HTMLURL: "http://localhost:3000/example/example", DefaultBranch: "master",
	}
	giteaPR = event.PullRequest{
		Number: 2, Title: "update", HeadRef: "master", HeadSHA: giteaPRSHA, BaseRef: "master",
		BaseSHA: giteaSHA, HeadRepo: "example2/example", Fork: true,
	}
)

func glRepo(path, scheme string, private bool) event.Repository {
	base := scheme + "://example.com/" + path
	return event.Repository{FullName: path, CloneURL: base + ".git", HTMLURL: base, DefaultBranch: "master", Private: private}
}

type fieldCase struct {
	file    string // under webhooks/<forge>/
	header  string
	want    event.Event // Headers, Body and Commits are not compared
	commits int
}

var fieldCases = map[string][]fieldCase{
	"github": {
		{"push/with-new-branch.payload.json", "push", event.Event{
			Name: "push", Ref: "refs/heads/master", Before: zeros, SHA: ghSHA, Created: true,
			Repository: helloWorld, Sender: "Codertocat", HeadCommit: "Initial commit", ChangedFiles: []string{"README.md"},
		}, 1},
		{"push/payload.json", "push", event.Event{ // a deleted tag
			Name: "push", Ref: "refs/tags/simple-tag", Before: ghSHA, SHA: zeros, Deleted: true,
			Repository: helloWorld, Sender: "Codertocat",
		}, 0},
		{"pull_request/opened.payload.json", "pull_request", event.Event{
			Name: "pull_request", Action: "opened", SHA: ghPRHead, Repository: helloWorld, Sender: "Codertocat", PullRequest: &ghPR,
		}, 0},
		{"pull_request/synchronize.payload.json", "pull_request", event.Event{
			Name: "pull_request", Action: "synchronize", Before: ghPRBase, SHA: ghPRHead, Repository: helloWorld, Sender: "Codertocat", PullRequest: &ghPR,
		}, 0},
		{"pull_request/closed.payload.json", "pull_request", event.Event{ // closed without merging
			Name: "pull_request", Action: "closed", SHA: ghPRHead, Repository: helloWorld, Sender: "Codertocat", PullRequest: &ghPR,
		}, 0},
		{"pull_request_review/submitted.payload.json", "pull_request_review", event.Event{
			Name: "pull_request_review", Action: "submitted", SHA: ghPRHead, Repository: helloWorld, Sender: "Codertocat", PullRequest: &ghPR,
		}, 0},
		{"create/payload.json", "create", event.Event{
			Name: "create", Ref: "refs/tags/simple-tag", Repository: helloWorld, Sender: "Codertocat",
		}, 0},
		{"delete/payload.json", "delete", event.Event{
			Name: "delete", Ref: "refs/tags/simple-tag", Repository: helloWorld, Sender: "Codertocat",
		}, 0},
		{"release/published.payload.json", "release", event.Event{
			Name: "release", Action: "published", Ref: "refs/tags/0.0.1", Repository: helloWorld, Sender: "Codertocat",
			Release: &event.Release{Tag: "0.0.1"},
		}, 0},
		{"release/prereleased.payload.json", "release", event.Event{
			Name: "release", Action: "prereleased", Ref: "refs/tags/0.0.1", Repository: helloWorld, Sender: "Codertocat",
			Release: &event.Release{Tag: "0.0.1", Prerelease: true},
		}, 0},
		{"workflow_dispatch/payload.json", "workflow_dispatch", event.Event{
			Name: "workflow_dispatch", Ref: "refs/heads/master", Sender: "Codertocat",
			Repository: event.Repository{
				FullName: "octo-org/octo-repo", CloneURL: "https://github.com/octo-org/octo-repo.git",
				HTMLURL: "https://github.com/octo-org/octo-repo", DefaultBranch: "master", Private: true,
			},
			Inputs: map[string]string{"name": "Mona the Octocat"},
		}, 0},
		{"ping/payload.json", "ping", event.Event{
			Name: "ping", Sender: "Codertocat", Repository: event.Repository{
				FullName: "Octocoders/Hello-World", CloneURL: "https://github.com/Octocoders/Hello-World.git",
				HTMLURL: "https://github.com/Octocoders/Hello-World", DefaultBranch: "master",
			},
		}, 0},
		{"issues/opened.payload.json", "issues", event.Event{
			Name: "issues", Action: "opened", Repository: helloWorld, Sender: "Codertocat",
		}, 0},
	},
	"gitlab": {
		{"push-event.json", "Push Hook", event.Event{ // lists 2 of 4 commits: files unknown
			Name: "push", Ref: "refs/heads/master", Before: "95790bf891e76fee5e1747ab589903a6a1f80f22",
			SHA: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", Repository: glRepo("mike/diaspora", "http", true), HeadCommit: "fixed readme",
		}, 2},
		{"tag-event.json", "Tag Push Hook", event.Event{
			Name: "push", Ref: "refs/tags/v1.0.0", Before: zeros, SHA: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7", Created: true,
			Repository: glRepo("jsmith/example", "http", true),
		}, 0},
		{"system-tag-event.json", "System Hook", event.Event{ // annotated tag: checkout_sha is the commit
			Name: "push", Ref: "refs/tags/v1.0.0", Before: zeros, SHA: "5937ac0a7beb003549fc5fd26fc247adbce4a52e", Created: true,
			Repository: glRepo("jsmith/example", "http", true),
		}, 0},
		{"system-push-event.json", "System Hook", event.Event{ // commits without file lists
			Name: "push", Ref: "refs/heads/master", Before: "95790bf891e76fee5e1747ab589903a6a1f80f22",
			SHA: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", Repository: glRepo("mike/diaspora", "http", true),
		}, 1},
		{"merge-request-event.json", "Merge Request Hook", event.Event{
			Name: "pull_request", Action: "opened", SHA: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", HeadCommit: "fixed readme",
			Repository: glRepo("gitlabhq/gitlab-test", "http", false), Sender: "root",
			PullRequest: &event.PullRequest{
				Number: 1, Title: "MS-Viewport", HeadRef: "ms-viewport", HeadSHA: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
				BaseRef: "master", HeadRepo: "awesome_space/awesome_project",
			},
		}, 0},
		{"system-merge-request-event.json", "System Hook", event.Event{ // no action in the payload
			Name: "pull_request", SHA: "ba3e0d8ff79c80d5b0bbb4f3e2e343e0aaa662b7", HeadCommit: "fixed readme",
			Repository: glRepo("jsmith/example", "http", true), Sender: "root",
			PullRequest: &event.PullRequest{
				Number: 1, Title: "MS-Viewport", HeadRef: "ms-viewport", HeadSHA: "ba3e0d8ff79c80d5b0bbb4f3e2e343e0aaa662b7",
				BaseRef: "master", HeadRepo: "awesome_space/awesome_project",
			},
		}, 0},
		{"comment-merge-request-event.json", "Note Hook", event.Event{
			Name: "issue_comment", Action: "created", SHA: "562e173be03b8ff2efb05345d12df18815438a4b",
			Repository: glRepo("gitlab-org/gitlab-test", "http", true), Sender: "root",
			PullRequest: &event.PullRequest{
				Number: 1, Title: "Tempora et eos debitis quae laborum et.", HeadRef: "master",
				HeadSHA: "562e173be03b8ff2efb05345d12df18815438a4b", BaseRef: "markdown", HeadRepo: "gitlab-org/gitlab-test",
			},
		}, 0},
		{"release-event.json", "Release Hook", event.Event{
			Name: "release", Action: "published", Ref: "refs/tags/v1.1", SHA: "ee0a3fb31ac16e11b9dbb596ad16d4af654d08f8",
			HeadCommit: "Release v1.1", Repository: glRepo("gitlab-org/release-webhook-example", "https", true),
			Release: &event.Release{Tag: "v1.1", Name: "v1.1"},
		}, 0},
		{"issue-event.json", "Issue Hook", event.Event{
			Name: "issues", Action: "opened", Repository: glRepo("gitlabhq/gitlab-test", "http", false), Sender: "root",
		}, 0},
	},
	"gitea": {
		{"push-event.json", "push", event.Event{
			Name: "push", Ref: "refs/heads/master", Before: zeros, SHA: giteaSHA, Created: true,
			Repository: giteaRepo, Sender: "example", HeadCommit: "example\n", ChangedFiles: []string{"example"},
		}, 1},
		{"pull-request-event.json", "pull_request", event.Event{
			Name: "pull_request", Action: "opened", SHA: giteaPRSHA, Repository: giteaRepo, Sender: "example2", PullRequest: &giteaPR,
		}, 0},
		{"pull-request-label-event.json", "pull_request", event.Event{
			Name: "pull_request", Action: "labeled", SHA: giteaPRSHA, Repository: giteaRepo, Sender: "example", PullRequest: &giteaPR,
		}, 0},
		{"pull-request-review-event.json", "pull_request_comment", event.Event{
			Name: "pull_request_review", Action: "reviewed", SHA: giteaPRSHA, Repository: giteaRepo, Sender: "example", PullRequest: &giteaPR,
		}, 0},
		{"create-event.json", "create", event.Event{
			Name: "create", Ref: "refs/heads/master", SHA: giteaSHA, Repository: giteaRepo, Sender: "example",
		}, 0},
		{"delete-event.json", "delete", event.Event{
			Name: "delete", Ref: "refs/heads/example3", Repository: giteaRepo, Sender: "example",
		}, 0},
		{"release-event.json", "release", event.Event{
			Name: "release", Action: "published", Ref: "refs/tags/example", Repository: giteaRepo, Sender: "example",
			Release: &event.Release{Tag: "example", Name: "0.0.0"},
		}, 0},
	},
}

// TestParseCompatFields checks the fields that matter, for a representative
// payload of each kind per forge.
func TestParseCompatFields(t *testing.T) {
	for forgeName, cases := range fieldCases {
		for _, tc := range cases {
			t.Run(forgeName+"/"+tc.file, func(t *testing.T) {
				dir := testenv.CompatDir(t, filepath.Join("webhooks", forgeName))
				body, err := os.ReadFile(filepath.Join(dir, tc.file))
				if err != nil {
					t.Fatal(err)
				}
				ev, err := Parse(forgeName, compatHeaders(forgeName, tc.header), body)
				if err != nil {
					t.Fatal(err)
				}
				if len(ev.Commits) != tc.commits {
					t.Errorf("%d commits, want %d", len(ev.Commits), tc.commits)
				}
				want := tc.want
				want.Forge, want.DeliveryID = forgeName, "d-1"
				got := *ev
				got.Commits = nil
				assertSameEvent(t, &got, &want)
			})
		}
	}
}

// assertSameEvent compares events as JSON (which leaves out Headers and Body).
func assertSameEvent(t *testing.T, got, want *event.Event) {
	t.Helper()
	g, _ := json.MarshalIndent(got, "", "  ")
	w, _ := json.MarshalIndent(want, "", "  ")
	if string(g) != string(w) {
		t.Errorf("event:\n%s\nwant:\n%s", g, w)
	}
}
