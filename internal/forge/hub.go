package forge

import (
	"net/http"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/event"
)

// This file reads the GitHub-shaped payloads that GitHub and Gitea both send.

// parseGitHub fills ev from a GitHub delivery.
func parseGitHub(ev *event.Event, h http.Header, m obj) error {
	name, _ := eventHeader(h, "X-GitHub-Event")
	if name == "" {
		return errs.E(opParse, errs.Invalid, "missing X-GitHub-Event header")
	}
	ev.Name = name
	return parseHub(ev, m)
}

// parseHub fills ev from a GitHub-shaped payload, by ev.Name.
func parseHub(ev *event.Event, m obj) error {
	ev.Action = m.s("action")
	ev.Repository = hubRepository(m.o("repository"))
	ev.Sender = hubLogin(m.o("sender"))
	switch ev.Name {
	case "push":
		return hubPush(ev, m)
	case "create", "delete":
		hubRefEvent(ev, m)
	case "release":
		hubRelease(ev, m)
	case "workflow_dispatch":
		ev.Ref = m.s("ref")
		ev.Inputs = inputs(m.o("inputs"))
	}
	// pull_request and its review events carry the pull request.
	if pr := m.o("pull_request"); pr != nil {
		hubPullRequest(ev, m, pr)
	}
	if ev.Name == "pull_request" && ev.PullRequest == nil {
		return errs.E(opParse, errs.Invalid, "pull_request payload has no pull_request object")
	}
	return nil
}

func hubRepository(r obj) event.Repository {
	return event.Repository{
		FullName:      r.s("full_name"),
		CloneURL:      r.s("clone_url"),
		HTMLURL:       r.s("html_url"),
		DefaultBranch: r.s("default_branch"),
		Private:       r.b("private"),
	}
}

// hubLogin reads a user's login (Gitea also sends it as username).
func hubLogin(u obj) string {
	if l := u.s("login"); l != "" {
		return l
	}
	return u.s("username")
}

func hubPush(ev *event.Event, m obj) error {
	ev.Ref = m.s("ref")
	if ev.Ref == "" {
		return errs.E(opParse, errs.Invalid, "push payload has no ref")
	}
	ev.Before = m.s("before")
	after := m.s("after")
	ev.Created = m.b("created") || isZero(ev.Before)
	ev.Deleted = m.b("deleted") || isZero(after)
	ev.Commits = commits(m.a("commits"))
	hc := m.o("head_commit")
	ev.HeadCommit = hc.s("message")
	// For an annotated tag, after is the tag object; head_commit is the commit.
	ev.SHA = after
	if id := hc.s("id"); id != "" {
		ev.SHA = id
	}
	total := len(ev.Commits)
	if m.has("total_commits") { // Gitea lists only the newest few commits
		total = m.i("total_commits")
	}
	ev.ChangedFiles = changedFiles(m.a("commits"), ev.Commits, total)
	return nil
}

// hubRefEvent fills a create or delete event, whose ref is a short name.
func hubRefEvent(ev *event.Event, m obj) {
	ev.Ref = fullRef(m.s("ref"), m.s("ref_type"))
	ev.SHA = m.s("sha") // Gitea sends it, GitHub does not
}

func hubRelease(ev *event.Event, m obj) {
	r := m.o("release")
	ev.Release = &event.Release{
		Tag:        r.s("tag_name"),
		Name:       r.s("name"),
		Prerelease: r.b("prerelease"),
		Draft:      r.b("draft"),
	}
	if ev.Release.Tag != "" {
		ev.Ref = "refs/tags/" + ev.Release.Tag
	}
}

// hubPullRequest fills the pull request of m. Ref stays empty: the event
// model carries a pull request's refs in PullRequest only.
func hubPullRequest(ev *event.Event, m, pr obj) {
	head, base := pr.o("head"), pr.o("base")
	n := pr.i("number")
	if n == 0 {
		n = m.i("number")
	}
	headRepo, baseRepo := head.o("repo").s("full_name"), base.o("repo").s("full_name")
	if baseRepo == "" {
		baseRepo = ev.Repository.FullName
	}
	ev.PullRequest = &event.PullRequest{
		Number:   n,
		Title:    pr.s("title"),
		HeadRef:  head.s("ref"),
		HeadSHA:  head.s("sha"),
		BaseRef:  base.s("ref"),
		BaseSHA:  base.s("sha"),
		HeadRepo: headRepo,
		Fork:     isFork(headRepo, baseRepo),
		Merged:   pr.b("merged"),
	}
	ev.SHA = ev.PullRequest.HeadSHA
	ev.Before = m.s("before") // synchronize: the head before the push
}

// isFork reports whether a pull request comes from another repository. An
// unknown head repository (GitHub sends null once a fork is deleted) counts
// as a fork: fork pull requests get less trust, so doubt must not grant more.
func isFork(headRepo, baseRepo string) bool {
	return headRepo == "" || !strings.EqualFold(headRepo, baseRepo)
}

// fullRef turns a create/delete event's short ref into a full one.
func fullRef(ref, refType string) string {
	switch {
	case ref == "":
		return ""
	case refType == "tag":
		return "refs/tags/" + ref
	case refType == "branch":
		return "refs/heads/" + ref
	}
	return ref
}

func inputs(in obj) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = text(v)
	}
	return out
}
