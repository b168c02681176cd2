package forge

import (
	"net/http"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/event"
)

// GitLab payloads differ from GitHub's in shape and vocabulary; this file
// maps them. Kinds without a GitHub counterpart keep GitLab's object_kind
// as Name (pipeline, build, deployment...), and system hooks without one
// their event_name (project_create...).

const hdrGitLabEvent = "X-Gitlab-Event"

// gitlabPublic is visibility_level of a public project (private 0, internal 10).
const gitlabPublic = 20

func parseGitLab(ev *event.Event, h http.Header, m obj) error {
	hook := strings.TrimSpace(h.Get(hdrGitLabEvent))
	if hook == "" {
		return errs.E(opParse, errs.Invalid, "missing %s header", hdrGitLabEvent)
	}
	kind := gitlabKind(hook, m)
	if kind == "" {
		return errs.E(opParse, errs.Invalid, "%s %q names no event", hdrGitLabEvent, hook)
	}
	ev.Repository = gitlabRepository(m.o("project"))
	ev.Sender = gitlabSender(m)
	oa := m.o("object_attributes")
	switch kind {
	case "push", "tag_push":
		return gitlabPush(ev, m, kind)
	case "merge_request":
		return gitlabMergeRequest(ev, oa)
	case "release":
		gitlabRelease(ev, m)
	case "issue":
		ev.Name, ev.Action = "issues", gitlabAction(oa.s("action"), false)
	case "note":
		gitlabNote(ev, m, oa)
	default:
		ev.Name, ev.Action = kind, oa.s("action")
	}
	return nil
}

// gitlabKind names what a delivery is about: the hook header for project
// hooks, the body for system hooks (which send push, tag_push and
// merge_request among their own kinds).
func gitlabKind(hook string, m obj) string {
	switch hook {
	case "Push Hook":
		return "push"
	case "Tag Push Hook":
		return "tag_push"
	case "Merge Request Hook":
		return "merge_request"
	case "Release Hook":
		return "release"
	}
	if k := strings.TrimSpace(m.s("object_kind")); k != "" {
		return k
	}
	if k := strings.TrimSpace(m.s("event_name")); k != "" {
		return k
	}
	// "Feature Flag Hook" -> feature_flag
	name := strings.TrimSuffix(hook, " Hook")
	return strings.Join(strings.Fields(strings.ToLower(name)), "_")
}

func gitlabRepository(p obj) event.Repository {
	r := event.Repository{
		FullName:      p.s("path_with_namespace"),
		CloneURL:      p.s("git_http_url"),
		HTMLURL:       p.s("web_url"),
		DefaultBranch: p.s("default_branch"),
	}
	if r.CloneURL == "" {
		r.CloneURL = p.s("http_url")
	}
	switch {
	case p.s("visibility") != "":
		r.Private = p.s("visibility") != "public"
	case p.has("visibility_level"):
		r.Private = p.i("visibility_level") != gitlabPublic
	}
	return r
}

// gitlabSender is the username of who caused the event. Push hooks of old
// GitLab versions send only user_name, a display name, which is not used.
func gitlabSender(m obj) string {
	if u := m.s("user_username"); u != "" {
		return u
	}
	return m.o("user").s("username")
}

func gitlabPush(ev *event.Event, m obj, kind string) error {
	ev.Name = "push"
	ev.Ref = m.s("ref")
	if ev.Ref == "" {
		return errs.E(opParse, errs.Invalid, "%s payload has no ref", kind)
	}
	if kind == "tag_push" && !strings.HasPrefix(ev.Ref, "refs/") {
		ev.Ref = "refs/tags/" + ev.Ref
	}
	ev.Before = m.s("before")
	after := m.s("after")
	ev.Created, ev.Deleted = isZero(ev.Before), isZero(after)
	// For an annotated tag, after is the tag object; checkout_sha the commit.
	ev.SHA = m.s("checkout_sha")
	if ev.SHA == "" {
		ev.SHA = after
	}
	raw := m.a("commits")
	ev.Commits = commits(raw)
	for _, c := range ev.Commits {
		if c.ID == ev.SHA {
			ev.HeadCommit = c.Message
		}
	}
	total := len(ev.Commits)
	if m.has("total_commits_count") { // GitLab lists at most 20 commits
		total = m.i("total_commits_count")
	}
	ev.ChangedFiles = changedFiles(raw, ev.Commits, total)
	return nil
}

func gitlabMergeRequest(ev *event.Event, oa obj) error {
	ev.Name = "pull_request"
	if oa == nil {
		return errs.E(opParse, errs.Invalid, "merge request payload has no object_attributes")
	}
	ev.PullRequest = gitlabPullRequest(oa)
	ev.SHA = ev.PullRequest.HeadSHA
	ev.HeadCommit = oa.o("last_commit").s("message")
	ev.Before = oa.s("oldrev")
	ev.Action = gitlabAction(oa.s("action"), oa.s("oldrev") != "")
	if ev.Action == "merge" {
		ev.Action = "closed"
	}
	return nil
}

// gitlabPullRequest reads a merge request (object_attributes of a merge
// request hook, merge_request of a note hook). GitLab sends no base SHA.
func gitlabPullRequest(mr obj) *event.PullRequest {
	src, dst := mr.o("source").s("path_with_namespace"), mr.o("target").s("path_with_namespace")
	fork := isFork(src, dst)
	if s, t := mr.i("source_project_id"), mr.i("target_project_id"); s != 0 && t != 0 {
		fork = s != t // ids survive renames; paths are the fallback
	}
	return &event.PullRequest{
		Number:   mr.i("iid"),
		Title:    mr.s("title"),
		HeadRef:  mr.s("source_branch"),
		HeadSHA:  mr.o("last_commit").s("id"),
		BaseRef:  mr.s("target_branch"),
		HeadRepo: src,
		Fork:     fork,
		Merged:   mr.s("action") == "merge" || mr.s("state") == "merged",
	}
}

// gitlabAction maps GitLab's verbs to GitHub's. An update is synchronize
// when it brought commits (oldrev is set), edited otherwise; merge is left
// for the caller (a merged pull request is closed with Merged set).
func gitlabAction(a string, newCommits bool) string {
	switch a {
	case "open":
		return "opened"
	case "reopen":
		return "reopened"
	case "close":
		return "closed"
	case "update":
		if newCommits {
			return "synchronize"
		}
		return "edited"
	}
	return a
}

// gitlabRelease maps a release hook. GitLab has no drafts and sends create,
// update and delete: create becomes published (what workflows listen to; a
// GitLab release is public once created), update edited, delete deleted.
func gitlabRelease(ev *event.Event, m obj) {
	ev.Name = "release"
	switch a := m.s("action"); a {
	case "create":
		ev.Action = "published"
	case "update":
		ev.Action = "edited"
	case "delete":
		ev.Action = "deleted"
	default:
		ev.Action = a
	}
	ev.Release = &event.Release{Tag: m.s("tag"), Name: m.s("name")}
	if t := m.s("tag"); t != "" {
		ev.Ref = "refs/tags/" + t
	}
	ev.SHA = m.o("commit").s("id")
	ev.HeadCommit = m.o("commit").s("message")
}

// gitlabNote maps a comment: on an issue or merge request it is GitHub's
// issue_comment, on a commit commit_comment; on a snippet it stays note.
func gitlabNote(ev *event.Event, m, oa obj) {
	switch oa.s("noteable_type") {
	case "Issue", "MergeRequest":
		ev.Name = "issue_comment"
	case "Commit":
		ev.Name = "commit_comment"
	default:
		ev.Name = "note"
	}
	switch oa.s("action") {
	case "", "create":
		ev.Action = "created"
	case "update":
		ev.Action = "edited"
	default:
		ev.Action = oa.s("action")
	}
	if mr := m.o("merge_request"); mr != nil {
		ev.PullRequest = gitlabPullRequest(mr)
		ev.SHA = ev.PullRequest.HeadSHA
	}
}
