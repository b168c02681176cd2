// Package trigger decides whether a workflow runs for an event, as GitHub
// Actions decides it from on: (event names, activity types, branch, tag and
// path filters, [skip ci]), plus Conveyor's CEL filter over the webhook's
// headers and body. It also checks workflow_dispatch inputs. It does no I/O:
// the caller supplies the changed files of an event when the payload lacks
// them.
//
// GitHub behaviours this package follows, and the choices where GitHub says
// nothing:
//   - A push that deletes a ref (Deleted) runs no push workflow, filtered or
//     not: GitHub starts none for it; on: delete is the event for that.
//   - Only branches/branches-ignore on push: tag pushes do not run, and only
//     tags/tags-ignore: branch pushes do not; neither: both run. Path
//     filters are not evaluated for pushes of tags.
//   - pull_request and pull_request_target filter branches on the base
//     branch; their tags filters (which GitHub's schema accepts) are ignored,
//     a pull request has no tag. pull_request types default to opened,
//     synchronize and reopened; every other event runs for all types.
//   - Paths filters need the changed files; when neither the event nor
//     Options.ChangedFiles can give them (or it fails) the workflow runs, as
//     GitHub runs it when it cannot produce the diff (more than 1,000
//     commits, a timeout); Decision.Note says so. An empty list runs nothing.
//     GitHub's 300-file cap on the diff is not imitated: all files count.
//   - [skip ci], [ci skip], [no ci], [skip actions], [actions skip] (any
//     letter case) or a final "skip-checks: true" trailer in the head commit
//     message skip push and pull_request workflows.
//   - A CEL filter that fails to evaluate (no such key, not a bool, cost
//     limit) does not run the workflow; the reason says why. GitHub has no
//     CEL filters.
package trigger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/event"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// Options give Match what it cannot know by itself.
type Options struct {
	// ChangedFiles lists the paths an event changes when ev.ChangedFiles is
	// nil (for a push: git diff --name-only Before..SHA, against the parent
	// of the first new commit for a new branch; for a pull request: the
	// three-dot diff base...head). It is called at most once per Match and
	// only when a paths filter needs it. Nil, or an error, runs the workflow.
	ChangedFiles func(ctx context.Context, ev *event.Event) ([]string, error)
	// Filters caches compiled CEL filters; nil compiles them every time.
	Filters *Cache
}

// Decision is Match's answer.
type Decision struct {
	Run bool
	// Reason says, when Run is false, why: one short line per trigger of
	// the event, joined with "; ".
	Reason string
	// Trigger is the trigger that matched, when Run.
	Trigger *workflow.Trigger
	// Note is something the caller may log: filters that were not applied.
	Note string
}

// defaultTypes are the activity types an event runs for when on: gives no
// types:; events not listed run for every type.
var defaultTypes = map[string][]string{
	"pull_request":        {"opened", "synchronize", "reopened"},
	"pull_request_target": {"opened", "synchronize", "reopened"},
}

// Match decides whether wf runs for ev. Errors are errs.Invalid and mean
// the workflow's filters are wrong (a bad pattern, a filter that does not
// compile); the Decision then does not run and its Reason says so.
func Match(ctx context.Context, wf *workflow.Workflow, ev *event.Event, opts Options) (Decision, error) {
	var ts []*workflow.Trigger
	for _, t := range wf.On {
		if t.Event == ev.Name {
			ts = append(ts, t)
		}
	}
	if len(ts) == 0 {
		return Decision{Reason: fmt.Sprintf("workflow is not triggered by %s", ev.Name)}, nil
	}
	if ev.Name == "push" && ev.Deleted {
		return Decision{Reason: fmt.Sprintf("push deletes %s: a deleted ref runs no push workflow", ev.Ref)}, nil
	}
	if ev.Name == "push" || ev.Name == "pull_request" {
		if m := skipMarker(ev.HeadCommit); m != "" {
			return Decision{Reason: fmt.Sprintf("commit message contains %s", m)}, nil
		}
	}
	m := &matcher{ctx: ctx, ev: ev, opts: opts}
	var reasons []string
	for _, t := range ts {
		reason, err := m.trigger(t)
		if err != nil {
			return Decision{Reason: err.Error(), Note: m.note}, errs.Wrap("trigger.Match", errs.Invalid, err)
		}
		if reason == "" {
			return Decision{Run: true, Trigger: t, Note: m.note}, nil
		}
		if !slices.Contains(reasons, reason) {
			reasons = append(reasons, reason)
		}
	}
	return Decision{Reason: strings.Join(reasons, "; "), Note: m.note}, nil
}

// matcher holds what one Match computes once for all triggers.
type matcher struct {
	ctx   context.Context
	ev    *event.Event
	opts  Options
	files []string
	known bool // files is known
	asked bool // files was looked for
	note  string
}

// trigger returns "" when t matches, else the reason it does not.
func (m *matcher) trigger(t *workflow.Trigger) (string, error) {
	ev := m.ev
	types, dflt := t.Types, false
	if len(types) == 0 {
		types, dflt = defaultTypes[ev.Name], true
	}
	if len(types) > 0 && !slices.Contains(types, ev.Action) {
		if dflt {
			return fmt.Sprintf("%s %s is not one of the default types %s", ev.Name, quoteAction(ev.Action), bracketed(types)), nil
		}
		return fmt.Sprintf("%s %s does not match types %s", ev.Name, quoteAction(ev.Action), bracketed(types)), nil
	}
	paths := false
	var reason string
	var err error
	switch ev.Name {
	case "push":
		reason, paths, err = pushRefs(t, ev)
	case "pull_request", "pull_request_target":
		paths = true
		var base string
		if ev.PullRequest != nil {
			base = strings.TrimPrefix(ev.PullRequest.BaseRef, "refs/heads/")
		}
		reason, err = refFilter("branch", "branches", base, t.Branches, t.BranchesIgnore)
	case "merge_group":
		base, _ := bodyString(ev.Body, "merge_group", "base_ref")
		reason, err = refFilter("branch", "branches", strings.TrimPrefix(base, "refs/heads/"), t.Branches, t.BranchesIgnore)
	case "workflow_run":
		reason, err = workflowRun(t, ev)
	case "schedule":
		reason = schedule(t, ev)
	}
	if reason != "" || err != nil {
		return reason, err
	}
	if t.Filter != "" {
		if reason, err := m.filter(t.Filter); reason != "" || err != nil {
			return reason, err
		}
	}
	if paths {
		return m.paths(t)
	}
	return "", nil
}

// pushRefs applies branch and tag filters to a push; paths says whether
// path filters apply (not to tags).
func pushRefs(t *workflow.Trigger, ev *event.Event) (reason string, paths bool, err error) {
	hasBranches := len(t.Branches)+len(t.BranchesIgnore) > 0
	hasTags := len(t.Tags)+len(t.TagsIgnore) > 0
	if tag := ev.Tag(); tag != "" {
		if !hasTags && hasBranches {
			return fmt.Sprintf("tag %s: on.push filters branches only", tag), false, nil
		}
		reason, err = refFilter("tag", "tags", tag, t.Tags, t.TagsIgnore)
		return reason, false, err
	}
	if branch := ev.Branch(); branch != "" {
		if !hasBranches && hasTags {
			return fmt.Sprintf("branch %s: on.push filters tags only", branch), false, nil
		}
		reason, err = refFilter("branch", "branches", branch, t.Branches, t.BranchesIgnore)
		return reason, true, err
	}
	if hasBranches || hasTags {
		return fmt.Sprintf("ref %q is neither a branch nor a tag", ev.Ref), false, nil
	}
	return "", true, nil
}

// refFilter applies an include list and an ignore list to one name.
func refFilter(kind, key, name string, include, ignore []string) (string, error) {
	if len(include) > 0 {
		ps, err := CompilePatterns(include)
		if err != nil {
			return "", err
		}
		if !ps.Includes(name) {
			return fmt.Sprintf("%s %s does not match %s %s", kind, orNone(name), key, bracketed(include)), nil
		}
	}
	if len(ignore) > 0 {
		ps, err := CompilePatterns(ignore)
		if err != nil {
			return "", err
		}
		if ps.Includes(name) {
			return fmt.Sprintf("%s %s matches %s-ignore %s", kind, orNone(name), key, bracketed(ignore)), nil
		}
	}
	return "", nil
}

// workflowRun applies workflows: (exact names) and branches: (the head
// branch of the run that completed) from the payload.
func workflowRun(t *workflow.Trigger, ev *event.Event) (string, error) {
	if len(t.Workflows) > 0 {
		name, _ := bodyString(ev.Body, "workflow_run", "name")
		if !slices.Contains(t.Workflows, name) {
			return fmt.Sprintf("workflow %s does not match workflows %s", orNone(name), bracketed(t.Workflows)), nil
		}
	}
	branch, _ := bodyString(ev.Body, "workflow_run", "head_branch")
	return refFilter("branch", "branches", branch, t.Branches, t.BranchesIgnore)
}

// schedule checks that the cron line that fired is one of the workflow's
// (the scheduler may fire one event per line for every workflow).
func schedule(t *workflow.Trigger, ev *event.Event) string {
	if ev.Schedule == "" || len(t.Cron) == 0 {
		return ""
	}
	want := strings.Join(strings.Fields(ev.Schedule), " ")
	for _, c := range t.Cron {
		if strings.Join(strings.Fields(c), " ") == want {
			return ""
		}
	}
	return fmt.Sprintf("schedule %q is not one of the workflow's %s", ev.Schedule, bracketed(t.Cron))
}

func (m *matcher) filter(src string) (string, error) {
	var f *Filter
	var err error
	if m.opts.Filters != nil {
		f, err = m.opts.Filters.Compile(src)
	} else {
		f, err = CompileFilter(src)
	}
	if err != nil {
		var fe *FilterError
		if errors.As(err, &fe) {
			err = fe
		}
		return "", fmt.Errorf("filter does not compile: %w", err)
	}
	ok, err := f.Eval(m.ev.Headers, m.ev.Body)
	switch {
	case err != nil:
		return fmt.Sprintf("filter failed: %v", err), nil
	case !ok:
		return "filter is false", nil
	}
	return "", nil
}

// paths applies paths and paths-ignore to the changed files.
func (m *matcher) paths(t *workflow.Trigger) (string, error) {
	if len(t.Paths)+len(t.PathsIgnore) == 0 {
		return "", nil
	}
	files, ok := m.changedFiles()
	if !ok {
		return "", nil
	}
	if len(files) == 0 {
		return "paths: no file changed", nil
	}
	if len(t.Paths) > 0 {
		ps, err := CompilePatterns(t.Paths)
		if err != nil {
			return "", err
		}
		if !slices.ContainsFunc(files, ps.Includes) {
			return fmt.Sprintf("paths: no changed file matches %s", bracketed(t.Paths)), nil
		}
	}
	if len(t.PathsIgnore) > 0 {
		ps, err := CompilePatterns(t.PathsIgnore)
		if err != nil {
			return "", err
		}
		if !slices.ContainsFunc(files, func(f string) bool { return !ps.Includes(f) }) {
			return fmt.Sprintf("paths-ignore: every changed file matches %s", bracketed(t.PathsIgnore)), nil
		}
	}
	return "", nil
}

// changedFiles returns the event's changed files and whether they are known.
func (m *matcher) changedFiles() ([]string, bool) {
	if m.asked {
		return m.files, m.known
	}
	m.asked = true
	switch {
	case m.ev.ChangedFiles != nil:
		m.files, m.known = m.ev.ChangedFiles, true
	case m.opts.ChangedFiles == nil:
		m.note = "changed files unknown: paths filters not applied"
	default:
		files, err := m.opts.ChangedFiles(m.ctx, m.ev)
		if err != nil {
			m.note = fmt.Sprintf("changed files unknown (%v): paths filters not applied", err)
			break
		}
		m.files, m.known = files, true
	}
	return m.files, m.known
}

// skipMarkers are the commit message strings that skip push and
// pull_request workflows.
var skipMarkers = []string{"[skip ci]", "[ci skip]", "[no ci]", "[skip actions]", "[actions skip]"}

// SkipCI reports whether a commit message asks GitHub not to run push and
// pull_request workflows: it holds [skip ci], [ci skip], [no ci], [skip
// actions] or [actions skip] (in any letter case), or ends with a
// "skip-checks: true" trailer after a blank line.
func SkipCI(msg string) bool { return skipMarker(msg) != "" }

func skipMarker(msg string) string {
	lower := strings.ToLower(msg)
	for _, s := range skipMarkers {
		if strings.Contains(lower, s) {
			return s
		}
	}
	body := strings.TrimRight(msg, " \t\r\n")
	i := strings.LastIndexByte(body, '\n')
	if i < 0 {
		return ""
	}
	last := strings.TrimSpace(body[i+1:])
	if last != "skip-checks:true" && last != "skip-checks: true" {
		return ""
	}
	if before := strings.TrimRight(body[:i], " \t\r"); strings.HasSuffix(before, "\n") {
		return "a skip-checks: true trailer"
	}
	return ""
}

// bodyString reads a string at a path of the decoded payload.
func bodyString(body map[string]any, path ...string) (string, bool) {
	var v any = body
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		v = m[k]
	}
	s, ok := v.(string)
	return s, ok
}

func bracketed(ss []string) string { return "[" + strings.Join(ss, ", ") + "]" }

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func quoteAction(a string) string {
	if a == "" {
		return "without an action"
	}
	return a
}
