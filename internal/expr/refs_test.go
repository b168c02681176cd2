package expr

import (
	"slices"
	"testing"
)

func TestReferences(t *testing.T) {
	for src, want := range map[string][]string{
		"github.event.issue.title":                       {"github.event.issue.title"},
		"github.event['Pull_Request'].TITLE":             {"github.event.pull_request.title"},
		"github.event.commits[0].message":                {"github.event.commits.*.message"},
		"github.event.commits.*.author.name":             {"github.event.commits.*.author.name"},
		"format('{0}{1}', env.A, secrets[inputs.name])":  {"env.a", "secrets.*", "inputs.name"},
		"!(a.b == 'x') && fromJSON(steps.s.outputs.o).k": {"a.b", "steps.s.outputs.o"},
		"'literal' || 3":                                 nil,
		"toJSON(github)":                                 {"github"},
	} {
		e, err := Parse(src, nil)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		got := e.References()
		if !slices.Equal(got, want) {
			t.Errorf("%s: References() = %q, want %q", src, got, want)
		}
	}
}
