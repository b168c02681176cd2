package forge

import (
	"strings"

	"github.com/conveyor-ci/conveyor/internal/event"
)

// GitHubPayload returns the github.event context of a workflow run for ev.
// For a GitHub delivery it is the payload itself. Otherwise it is the
// payload (if any) with GitHub's keys laid over it from the event model:
// ref, before, after, created, deleted, repository, sender, head_commit,
// commits, pull_request, number, release, inputs, ref_type. Keys the forge
// sent and GitHub does not know stay reachable; ev.Body is not modified.
func GitHubPayload(ev *event.Event) map[string]any {
	if ev == nil {
		return map[string]any{}
	}
	if ev.Forge == event.GitHub && ev.Body != nil {
		return ev.Body
	}
	return overlay(ev.Body, githubShape(ev))
}

// githubShape is the GitHub-shaped part the event model can tell.
func githubShape(ev *event.Event) map[string]any {
	p := map[string]any{"repository": repositoryPayload(ev.Repository)}
	if ev.Action != "" {
		p["action"] = ev.Action
	}
	if ev.Sender != "" {
		p["sender"] = map[string]any{"login": ev.Sender}
	}
	switch ev.Name {
	case "push":
		pushPayload(p, ev)
	case "create", "delete":
		refPayload(p, ev)
	case "workflow_dispatch":
		p["ref"] = ev.Ref
	case "schedule":
		p["schedule"] = ev.Schedule
	}
	if ev.Inputs != nil {
		inputs := make(map[string]any, len(ev.Inputs))
		for k, v := range ev.Inputs {
			inputs[k] = v
		}
		p["inputs"] = inputs
	}
	if pr := ev.PullRequest; pr != nil {
		p["number"] = float64(pr.Number) // as decoded JSON numbers are
		p["pull_request"] = pullRequestPayload(pr, ev.Repository.FullName)
	}
	if r := ev.Release; r != nil {
		p["release"] = map[string]any{"tag_name": r.Tag, "name": r.Name, "prerelease": r.Prerelease, "draft": r.Draft}
	}
	return p
}

func repositoryPayload(r event.Repository) map[string]any {
	owner, name, _ := strings.Cut(r.FullName, "/")
	if i := strings.LastIndex(r.FullName, "/"); i >= 0 { // GitLab groups nest
		owner, name = r.FullName[:i], r.FullName[i+1:]
	}
	return map[string]any{
		"full_name":      r.FullName,
		"name":           name,
		"owner":          map[string]any{"login": owner},
		"clone_url":      r.CloneURL,
		"html_url":       r.HTMLURL,
		"default_branch": r.DefaultBranch,
		"private":        r.Private,
	}
}

func pushPayload(p map[string]any, ev *event.Event) {
	p["ref"], p["before"], p["after"] = ev.Ref, ev.Before, ev.SHA
	p["created"], p["deleted"] = ev.Created, ev.Deleted
	if ev.SHA != "" && !ev.Deleted {
		p["head_commit"] = map[string]any{"id": ev.SHA, "message": ev.HeadCommit}
	} else {
		p["head_commit"] = nil
	}
	cs := make([]any, 0, len(ev.Commits))
	for _, c := range ev.Commits {
		cs = append(cs, map[string]any{
			"id": c.ID, "message": c.Message,
			"added": strs(c.Added), "removed": strs(c.Removed), "modified": strs(c.Modified),
		})
	}
	p["commits"] = cs
}

// refPayload is create/delete: GitHub sends the short ref and its type.
func refPayload(p map[string]any, ev *event.Event) {
	switch {
	case ev.Tag() != "":
		p["ref"], p["ref_type"] = ev.Tag(), "tag"
	case ev.Branch() != "":
		p["ref"], p["ref_type"] = ev.Branch(), "branch"
	default:
		p["ref"] = ev.Ref
	}
}

func pullRequestPayload(pr *event.PullRequest, baseRepo string) map[string]any {
	headRepo := pr.HeadRepo
	if headRepo == "" {
		headRepo = baseRepo
	}
	return map[string]any{
		"number": float64(pr.Number),
		"title":  pr.Title,
		"merged": pr.Merged,
		"head":   map[string]any{"ref": pr.HeadRef, "sha": pr.HeadSHA, "repo": map[string]any{"full_name": headRepo, "fork": pr.Fork}},
		"base":   map[string]any{"ref": pr.BaseRef, "sha": pr.BaseSHA, "repo": map[string]any{"full_name": baseRepo}},
	}
}

// strs makes a JSON array that is [] rather than null when empty.
func strs(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// overlay returns a copy of base with top's keys laid over it; objects on
// both sides merge, recursively. Neither argument is modified.
func overlay(base, top map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(top))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range top {
		tm, ok1 := v.(map[string]any)
		bm, ok2 := out[k].(map[string]any)
		if ok1 && ok2 {
			out[k] = overlay(bm, tm)
			continue
		}
		out[k] = v
	}
	return out
}
