package trigger

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/event"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

func wf(ts ...*workflow.Trigger) *workflow.Workflow { return &workflow.Workflow{File: "w.yml", On: ts} }

func push(ref string, files ...string) *event.Event {
	ev := &event.Event{Name: "push", Ref: ref, SHA: "b", Before: "a"}
	if files != nil {
		ev.ChangedFiles = files
	}
	return ev
}

func pr(action, base string, files ...string) *event.Event {
	ev := &event.Event{Name: "pull_request", Action: action, PullRequest: &event.PullRequest{Number: 1, HeadRef: "feature/x", BaseRef: base}}
	if files != nil {
		ev.ChangedFiles = files
	}
	return ev
}

func TestMatch(t *testing.T) {
	type T = workflow.Trigger
	tests := []struct {
		name   string
		wf     *workflow.Workflow
		ev     *event.Event
		reason string // "" = runs; else a prefix of Decision.Reason
	}{
		{"other event", wf(&T{Event: "push"}), pr("opened", "main"), "workflow is not triggered by pull_request"},
		{"bare push", wf(&T{Event: "push"}), push("refs/heads/x"), ""},
		{"bare push tag", wf(&T{Event: "push"}), push("refs/tags/v1"), ""},

		// push: branches vs tags vs paths.
		{"branches match", wf(&T{Event: "push", Branches: []string{"main", "releases/**"}}), push("refs/heads/releases/1/x"), ""},
		{"branches no match", wf(&T{Event: "push", Branches: []string{"main"}}), push("refs/heads/feature/x"), "branch feature/x does not match branches [main]"},
		{"branches negation", wf(&T{Event: "push", Branches: []string{"releases/**", "!releases/**-alpha"}}), push("refs/heads/releases/2-alpha"), "branch releases/2-alpha does not match branches"},
		{"branches-ignore", wf(&T{Event: "push", BranchesIgnore: []string{"dependabot/**"}}), push("refs/heads/dependabot/npm/x"), "branch dependabot/npm/x matches branches-ignore [dependabot/**]"},
		{"branches-ignore other", wf(&T{Event: "push", BranchesIgnore: []string{"dependabot/**"}}), push("refs/heads/main"), ""},
		{"only branches: tag push skipped", wf(&T{Event: "push", Branches: []string{"**"}}), push("refs/tags/v1"), "tag v1: on.push filters branches only"},
		{"only branches-ignore: tag push skipped", wf(&T{Event: "push", BranchesIgnore: []string{"x"}}), push("refs/tags/v1"), "tag v1: on.push filters branches only"},
		{"only tags: branch push skipped", wf(&T{Event: "push", Tags: []string{"v*"}}), push("refs/heads/main"), "branch main: on.push filters tags only"},
		{"only tags-ignore: branch push skipped", wf(&T{Event: "push", TagsIgnore: []string{"v*"}}), push("refs/heads/main"), "branch main: on.push filters tags only"},
		{"tags match", wf(&T{Event: "push", Tags: []string{"v[0-9]+.*"}}), push("refs/tags/v10.1"), ""},
		{"tags no match", wf(&T{Event: "push", Tags: []string{"v*"}}), push("refs/tags/x1"), "tag x1 does not match tags [v*]"},
		{"tags-ignore", wf(&T{Event: "push", TagsIgnore: []string{"*-rc*"}}), push("refs/tags/v1-rc1"), "tag v1-rc1 matches tags-ignore"},
		{"both: branch", wf(&T{Event: "push", Branches: []string{"main"}, Tags: []string{"v*"}}), push("refs/heads/main"), ""},
		{"both: tag", wf(&T{Event: "push", Branches: []string{"main"}, Tags: []string{"v*"}}), push("refs/tags/v2"), ""},
		{"other ref with filters", wf(&T{Event: "push", Branches: []string{"**"}}), push("refs/notes/x"), `ref "refs/notes/x" is neither`},
		{"paths match", wf(&T{Event: "push", Paths: []string{"src/**"}}), push("refs/heads/main", "README.md", "src/a.go"), ""},
		{"paths no match", wf(&T{Event: "push", Paths: []string{"src/**"}}), push("refs/heads/main", "README.md"), "paths: no changed file matches [src/**]"},
		{"paths negation", wf(&T{Event: "push", Paths: []string{"**.md", "!docs/**"}}), push("refs/heads/main", "docs/a.md"), "paths: no changed file matches"},
		{"paths no files", wf(&T{Event: "push", Paths: []string{"**"}}), push("refs/heads/main", []string{}...), "paths: no file changed"},
		{"paths-ignore all ignored", wf(&T{Event: "push", PathsIgnore: []string{"docs/**"}}), push("refs/heads/main", "docs/a", "docs/b"), "paths-ignore: every changed file matches [docs/**]"},
		{"paths-ignore one not", wf(&T{Event: "push", PathsIgnore: []string{"docs/**"}}), push("refs/heads/main", "docs/a", "main.go"), ""},
		{"paths not for tags", wf(&T{Event: "push", Tags: []string{"v*"}, Paths: []string{"src/**"}}), push("refs/tags/v1", "README.md"), ""},
		{"paths only: tag runs", wf(&T{Event: "push", Paths: []string{"src/**"}}), push("refs/tags/v1", "README.md"), ""},
		{"branches and paths: both needed", wf(&T{Event: "push", Branches: []string{"main"}, Paths: []string{"src/**"}}), push("refs/heads/main", "README.md"), "paths: no changed file matches"},
		{"branches and paths: branch fails first", wf(&T{Event: "push", Branches: []string{"main"}, Paths: []string{"src/**"}}), push("refs/heads/dev", "src/a"), "branch dev does not match"},
		{"deleted branch", wf(&T{Event: "push"}), &event.Event{Name: "push", Ref: "refs/heads/x", Deleted: true}, "push deletes refs/heads/x"},
		{"deleted tag filtered", wf(&T{Event: "push", Tags: []string{"**"}}), &event.Event{Name: "push", Ref: "refs/tags/v1", Deleted: true}, "push deletes refs/tags/v1"},

		// pull_request: types and base branch.
		{"pr opened default", wf(&T{Event: "pull_request"}), pr("opened", "main"), ""},
		{"pr synchronize default", wf(&T{Event: "pull_request"}), pr("synchronize", "main"), ""},
		{"pr reopened default", wf(&T{Event: "pull_request"}), pr("reopened", "main"), ""},
		{"pr labeled not default", wf(&T{Event: "pull_request"}), pr("labeled", "main"), "pull_request labeled is not one of the default types [opened, synchronize, reopened]"},
		{"pr closed not default", wf(&T{Event: "pull_request_target"}), &event.Event{Name: "pull_request_target", Action: "closed"}, "pull_request_target closed is not one of the default types"},
		{"pr types", wf(&T{Event: "pull_request", Types: []string{"closed", "labeled"}}), pr("labeled", "main"), ""},
		{"pr types no match", wf(&T{Event: "pull_request", Types: []string{"closed"}}), pr("opened", "main"), "pull_request opened does not match types [closed]"},
		{"pr base branch", wf(&T{Event: "pull_request", Branches: []string{"main"}}), pr("opened", "main"), ""},
		{"pr head branch ignored", wf(&T{Event: "pull_request", Branches: []string{"feature/*"}}), pr("opened", "main"), "branch main does not match branches [feature/*]"},
		{"pr base refs/heads", wf(&T{Event: "pull_request", Branches: []string{"main"}}), pr("opened", "refs/heads/main"), ""},
		{"pr branches-ignore", wf(&T{Event: "pull_request", BranchesIgnore: []string{"gh-pages"}}), pr("opened", "gh-pages"), "branch gh-pages matches branches-ignore"},
		{"pr tags ignored", wf(&T{Event: "pull_request", Tags: []string{"v*"}}), pr("opened", "main"), ""},
		{"pr paths", wf(&T{Event: "pull_request", Paths: []string{"**.go"}}), pr("opened", "main", "a/b.go"), ""},
		{"pr paths no match", wf(&T{Event: "pull_request", Paths: []string{"**.go"}}), pr("opened", "main", "a/b.md"), "paths: no changed file matches"},
		{"other events: all types", wf(&T{Event: "issues"}), &event.Event{Name: "issues", Action: "deleted"}, ""},
		{"issues types", wf(&T{Event: "issues", Types: []string{"opened"}}), &event.Event{Name: "issues", Action: "closed"}, "issues closed does not match types [opened]"},

		// [skip ci].
		{"skip ci push", wf(&T{Event: "push"}), &event.Event{Name: "push", Ref: "refs/heads/main", HeadCommit: "fix typo [skip ci]"}, "commit message contains [skip ci]"},
		{"skip ci pr", wf(&T{Event: "pull_request"}), &event.Event{Name: "pull_request", Action: "opened", HeadCommit: "wip [ci skip]", PullRequest: &event.PullRequest{BaseRef: "main"}}, "commit message contains [ci skip]"},
		{"skip ci not for other events", wf(&T{Event: "pull_request_target"}), &event.Event{Name: "pull_request_target", Action: "opened", HeadCommit: "[skip ci]"}, ""},

		// schedule, workflow_dispatch, workflow_run, merge_group.
		{"schedule", wf(&T{Event: "schedule", Cron: []string{"0 * * * *"}}), &event.Event{Name: "schedule", Schedule: "0  * * * *"}, ""},
		{"schedule other cron", wf(&T{Event: "schedule", Cron: []string{"0 * * * *"}}), &event.Event{Name: "schedule", Schedule: "5 * * * *"}, `schedule "5 * * * *" is not one of`},
		{"schedule no line", wf(&T{Event: "schedule", Cron: []string{"0 * * * *"}}), &event.Event{Name: "schedule"}, ""},
		{"dispatch", wf(&T{Event: "workflow_dispatch"}), &event.Event{Name: "workflow_dispatch", Ref: "refs/heads/x"}, ""},
		{"workflow_run", wf(&T{Event: "workflow_run", Workflows: []string{"Build"}, Branches: []string{"main"}}),
			&event.Event{Name: "workflow_run", Action: "completed", Body: map[string]any{"workflow_run": map[string]any{"name": "Build", "head_branch": "main"}}}, ""},
		{"workflow_run other workflow", wf(&T{Event: "workflow_run", Workflows: []string{"Build"}}),
			&event.Event{Name: "workflow_run", Action: "completed", Body: map[string]any{"workflow_run": map[string]any{"name": "Lint"}}}, "workflow Lint does not match workflows [Build]"},
		{"workflow_run branch", wf(&T{Event: "workflow_run", Workflows: []string{"Build"}, Branches: []string{"main"}}),
			&event.Event{Name: "workflow_run", Action: "completed", Body: map[string]any{"workflow_run": map[string]any{"name": "Build", "head_branch": "dev"}}}, "branch dev does not match branches [main]"},
		{"merge_group base", wf(&T{Event: "merge_group", Branches: []string{"main"}}),
			&event.Event{Name: "merge_group", Action: "checks_requested", Body: map[string]any{"merge_group": map[string]any{"base_ref": "refs/heads/main"}}}, ""},

		// CEL filter, alone and with GitHub filters.
		{"filter true", wf(&T{Event: "push", Filter: `body.ref == "refs/heads/main"`}), withBody(push("refs/heads/main")), ""},
		{"filter false", wf(&T{Event: "push", Filter: `body.ref == "refs/heads/dev"`}), withBody(push("refs/heads/main")), "filter is false"},
		{"filter error", wf(&T{Event: "push", Filter: `body.nope == 1`}), withBody(push("refs/heads/main")), "filter failed: "},
		{"filter and branches", wf(&T{Event: "push", Branches: []string{"dev"}, Filter: `true`}), withBody(push("refs/heads/main")), "branch main does not match"},
		{"serverless: any trigger", wf(&T{Event: "push", Filter: `false`}, &T{Event: "push", Filter: `headers["x-github-event"] == "push"`}), withBody(push("refs/heads/main")), ""},
		{"serverless: reasons joined", wf(&T{Event: "push", Filter: `false`}, &T{Event: "push", Filter: `body.nope`}), withBody(push("refs/heads/main")), "filter is false; filter failed: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Match(context.Background(), tt.wf, tt.ev, Options{Filters: NewCache(8)})
			if err != nil {
				t.Fatal(err)
			}
			if tt.reason == "" {
				if !d.Run || d.Reason != "" || d.Trigger == nil {
					t.Fatalf("Decision = %+v, want run", d)
				}
				return
			}
			if d.Run || !strings.HasPrefix(d.Reason, tt.reason) {
				t.Fatalf("Decision = %+v, want no run with reason %q", d, tt.reason)
			}
		})
	}
}

func withBody(ev *event.Event) *event.Event {
	ev.Headers = map[string]string{"X-Github-Event": ev.Name}
	ev.Body = map[string]any{"ref": ev.Ref}
	return ev
}

func TestMatchChangedFiles(t *testing.T) {
	w := wf(&workflow.Trigger{Event: "push", Paths: []string{"src/**"}})
	ev := push("refs/heads/main")
	calls := 0
	files := func(_ context.Context, got *event.Event) ([]string, error) {
		calls++
		if got != ev {
			t.Errorf("ChangedFiles got another event")
		}
		return []string{"src/x.go"}, nil
	}
	d, err := Match(context.Background(), w, ev, Options{ChangedFiles: files})
	if err != nil || !d.Run || calls != 1 {
		t.Fatalf("with ChangedFiles: %+v, %v, %d calls", d, err, calls)
	}
	// No way to know the files: GitHub runs the workflow.
	d, err = Match(context.Background(), w, ev, Options{})
	if err != nil || !d.Run || d.Note == "" {
		t.Fatalf("without ChangedFiles: %+v, %v", d, err)
	}
	failing := func(context.Context, *event.Event) ([]string, error) { return nil, errors.New("bad object") }
	d, err = Match(context.Background(), w, ev, Options{ChangedFiles: failing})
	if err != nil || !d.Run || !strings.Contains(d.Note, "bad object") {
		t.Fatalf("ChangedFiles failing: %+v, %v", d, err)
	}
	// Not asked when no trigger filters paths.
	calls = 0
	if d, _ := Match(context.Background(), wf(&workflow.Trigger{Event: "push"}), ev, Options{ChangedFiles: files}); !d.Run || calls != 0 {
		t.Fatalf("asked for files without a paths filter: %+v, %d calls", d, calls)
	}
}

func TestMatchInvalid(t *testing.T) {
	for _, tr := range []*workflow.Trigger{
		{Event: "push", Branches: []string{"[x"}},
		{Event: "push", Paths: []string{"a++"}},
		{Event: "push", Filter: "body.ref =="},
	} {
		d, err := Match(context.Background(), wf(tr), withBody(push("refs/heads/main", "a")), Options{})
		if !errs.Is(err, errs.Invalid) || d.Run || d.Reason == "" {
			t.Errorf("%+v: Decision %+v, error %v; want invalid", tr, d, err)
		}
	}
}

func TestSkipCI(t *testing.T) {
	tests := []struct {
		msg  string
		want bool
	}{
		{"fix [skip ci]", true},
		{"[ci skip] fix", true},
		{"docs\n\n[no ci]", true},
		{"[skip actions]", true},
		{"[actions skip]", true},
		{"[Skip CI] shout", true},
		{"subject\n\nskip-checks: true", true},
		{"subject\n\nbody\n\nskip-checks:true\n", true},
		{"skip ci", false},
		{"[skip-ci]", false},
		{"subject\nskip-checks: true", false},
		{"skip-checks: true", false},
		{"subject\n\nskip-checks: false", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := SkipCI(tt.msg); got != tt.want {
			t.Errorf("SkipCI(%q) = %v, want %v", tt.msg, got, tt.want)
		}
	}
}
