package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/event"
	"github.com/conveyor-ci/conveyor/internal/exec"
	"github.com/conveyor-ci/conveyor/internal/forge"
	"github.com/conveyor-ci/conveyor/internal/localrepo"
	"github.com/conveyor-ci/conveyor/internal/trigger"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// pullRequestEvents carry a pull request in their payload.
var pullRequestEvents = map[string]bool{"pull_request": true, "pull_request_target": true,
	"pull_request_review": true, "pull_request_review_comment": true}

// localEvent is the event of a local run: the payload given with -e,
// completed from git as act completes it (push: ref and after; a pull
// request event without one: head is the current branch, base the default
// branch).
func localEvent(ctx context.Context, name, repoDir string, info localrepo.Info, payload map[string]any, inputs map[string]string) exec.Event {
	ref := info.Ref
	if r, ok := payload["ref"].(string); ok && r != "" {
		ref = r
	}
	if _, ok := payload["repository"]; !ok {
		owner, repo, _ := strings.Cut(info.Repository, "/")
		payload["repository"] = map[string]any{"full_name": info.Repository, "name": repo, "owner": map[string]any{"login": owner}}
	}
	switch {
	case name == "push":
		if _, ok := payload["ref"]; !ok && ref != "" {
			payload["ref"] = ref
		}
		if _, ok := payload["after"]; !ok {
			payload["after"] = info.SHA
		}
	case name == "workflow_dispatch":
		in := map[string]any{}
		for k, v := range inputs {
			in[k] = v
		}
		payload["inputs"] = in
		if _, ok := payload["ref"]; !ok {
			payload["ref"] = ref
		}
	case pullRequestEvents[name]:
		if _, ok := payload["pull_request"]; !ok {
			base := localrepo.DefaultBranch(ctx, repoDir)
			head := strings.TrimPrefix(info.Ref, "refs/heads/")
			if base == "" {
				base = head
			}
			payload["pull_request"] = map[string]any{
				"head": map[string]any{"ref": head, "sha": info.SHA},
				"base": map[string]any{"ref": base},
			}
		}
	}
	head, base := "", ""
	if pr, ok := payload["pull_request"].(map[string]any); ok {
		if h, ok := pr["head"].(map[string]any); ok {
			head, _ = h["ref"].(string)
		}
		if b, ok := pr["base"].(map[string]any); ok {
			base, _ = b["ref"].(string)
		}
		if n, ok := pr["number"].(float64); ok && n > 0 {
			ref = "refs/pull/" + strconv.Itoa(int(n)) + "/merge" // as GitHub sets github.ref
		}
	}
	return exec.Event{Name: name, Payload: payload, SHA: info.SHA, Ref: ref, Repository: info.Repository,
		Actor: info.Actor, RunID: strconv.Itoa(os.Getpid()), RunNumber: 1, HeadRef: head, BaseRef: base}
}

// matchWorkflows keeps the workflows the event triggers, deciding as the
// server decides (trigger.Match): activity types, branches, tags, paths
// (the changed files from git: localrepo.ChangedFiles), [skip ci] and CEL
// filters. A payload without an action counts as the first activity type
// the workflow listens to (act does not filter types). Why each other
// workflow does not run goes to stderr.
func matchWorkflows(ctx context.Context, wfs []*workflow.Workflow, e exec.Event, repoDir string, stderr io.Writer) ([]*workflow.Workflow, error) {
	body, err := json.Marshal(e.Payload)
	if err != nil {
		return nil, err
	}
	var ev *event.Event
	if _, hasRef := e.Payload["ref"]; e.Name == "push" && !hasRef {
		// Not a git checkout, or a detached HEAD at no tag: the push has
		// no ref, so branch and tag filters exclude it.
		ev = &event.Event{Name: "push", SHA: e.SHA, Body: e.Payload}
	} else if ev, err = forge.Parse(event.GitHub, http.Header{"X-Github-Event": {e.Name}}, body); err != nil {
		return nil, fmt.Errorf("event payload: %w", err)
	}
	if ev.SHA == "" {
		ev.SHA = e.SHA
	}
	opts := trigger.Options{ChangedFiles: func(ctx context.Context, ev *event.Event) ([]string, error) {
		r := localrepo.Range{From: ev.Before, To: ev.SHA}
		if pr := ev.PullRequest; pr != nil {
			r = localrepo.Range{From: pr.BaseSHA, To: pr.HeadSHA, MergeBase: true}
		}
		return localrepo.ChangedFiles(ctx, repoDir, r)
	}}
	var out []*workflow.Workflow
	for _, wf := range wfs {
		wev := ev
		if ev.Action == "" {
			c := *ev
			c.Action = firstType(wf, ev.Name)
			wev = &c
		}
		d, err := trigger.Match(ctx, wf, wev, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", wf.File, err)
		}
		if d.Note != "" {
			fmt.Fprintf(stderr, "conveyor run: %s: %s\n", wf.File, d.Note)
		}
		if d.Run {
			out = append(out, wf)
		} else if wf.Trigger(ev.Name) != nil {
			fmt.Fprintf(stderr, "conveyor run: %s does not run: %s\n", wf.File, d.Reason)
		}
	}
	return out, nil
}

// firstType is the activity type a local event without one stands for.
func firstType(wf *workflow.Workflow, name string) string {
	for _, t := range wf.On {
		if t.Event == name && len(t.Types) > 0 {
			return t.Types[0]
		}
	}
	if pullRequestEvents[name] && strings.HasPrefix(name, "pull_request") && !strings.Contains(name, "review") {
		return "opened"
	}
	return ""
}
