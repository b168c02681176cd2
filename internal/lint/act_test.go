package lint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// actInvalid lists act test files that are invalid on purpose, with why.
var actInvalid = map[string]string{
	"issue-1595/missing.yml":                        "needs an unknown job (act's planner test)",
	"issue-1595/no-event.yml":                       "no on: (act's planner test)",
	"issue-1595/no-first.yml":                       "no job without needs (act's planner test)",
	"job-nil-step/push.yml":                         "a null step (act's planner test)",
	"uses-and-run-in-one-step/push.yml":             "a step with both run and uses (act's planner test)",
	"uses-github-empty/push.yml":                    "a step with uses: empty",
	"uses-github-noref/push.yml":                    "uses: without @ref",
	"workflow_call_inputs/workflow_call_inputs.yml": "workflow_call inputs without type: GitHub requires it, act does not",
}

// TestActCorpus parses every workflow and action file of act's test data:
// all must be free of problems except those known to be invalid on purpose.
func TestActCorpus(t *testing.T) {
	dir := filepath.Join(compatDir(t), "act")
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		// config/ holds act's own configuration files, not workflows.
		if err == nil && !d.IsDir() && filepath.Base(filepath.Dir(p)) != "config" && (strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) {
			files = append(files, p)
		}
		return nil
	})
	if len(files) == 0 {
		t.Skip("no act files")
	}
	clean := 0
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Base(f)
		var n int
		var msg string
		if base == "action.yml" || base == "action.yaml" {
			_, probs := ActionBytes(data, rel)
			n, msg = len(probs), probs.Error()
		} else {
			_, probs := Bytes(data, rel)
			n, msg = len(probs), probs.Error()
		}
		why, invalid := actInvalid[filepath.ToSlash(rel)]
		switch {
		case n == 0 && invalid:
			t.Errorf("%s: expected problems (%s), got none", rel, why)
		case n > 0 && !invalid:
			t.Errorf("%s:\n%s", rel, msg)
		default:
			clean++
		}
	}
	t.Logf("act corpus: %d/%d files as expected", clean, len(files))
}
