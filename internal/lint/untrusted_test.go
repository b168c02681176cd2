package lint

import (
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/workflow"
)

func TestWarningsUntrustedInput(t *testing.T) {
	src := `on: [pull_request, issues, push]
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: echo "${{ github.event.pull_request.title }}"
      - run: |
          echo ok
          git log ${{ github.head_ref }} -- ${{ github.event.commits[0].message }}
      - run: echo "$TITLE ${{ github.event.pull_request.number }} ${{ github.sha }}"
        env:
          TITLE: ${{ github.event.pull_request.title }}
      - uses: actions/github-script@v7
        with:
          script: console.log("${{ github.event.issue.body }}")
      - uses: some/other@v1
        with:
          script: ${{ github.event.issue.body }}
      - run: echo ${{ github.event['issue'].TITLE }} ${{ format('{0}', github.event.comment.body) }}
`
	w, probs := workflow.Parse([]byte(src), "w.yml")
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	var got []string
	for _, p := range Warnings(w) {
		got = append(got, p.Error())
	}
	want := []string{
		"w.yml:6:14: warning: github.event.pull_request.title is untrusted",
		"w.yml:7:14: warning: github.head_ref is untrusted",
		"w.yml:7:14: warning: github.event.commits.*.message is untrusted",
		"w.yml:15:19: warning: github.event.issue.body is untrusted",
		"w.yml:19:14: warning: github.event.issue.title is untrusted",
		"w.yml:19:14: warning: github.event.comment.body is untrusted",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d warnings, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) || !strings.Contains(got[i], "pass it through env:") {
			t.Errorf("warning %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
	// Warnings are not lint errors: the file is valid.
	if probs := Workflow(w); len(probs) > 0 {
		t.Errorf("lint errors: %v", probs)
	}
}
