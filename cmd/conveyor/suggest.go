package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// levenshtein is the edit distance between a and b (insert, delete,
// substitute, and swap of two neighbours: the optimal string alignment
// distance, by runes), so that "psuh" is one typo from "push".
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// closest is the known name nearest to s, when it is near enough to be a
// typo (at most a third of its length, at least 1 and at most 3 edits).
func closest(s string, known []string) string {
	best, bestD := "", 0
	for _, k := range known {
		d := levenshtein(strings.ToLower(s), strings.ToLower(k))
		if best == "" || d < bestD || d == bestD && k < best {
			best, bestD = k, d
		}
	}
	if best == "" || bestD > max(1, min(3, len([]rune(s))/3)) {
		return ""
	}
	return best
}

// didYouMean is `; did you mean "x"?` for the closest known name, or "".
func didYouMean(s string, known []string) string {
	if c := closest(s, known); c != "" {
		return fmt.Sprintf("; did you mean %q?", c)
	}
	return ""
}

// flagSuggestion reads the flag name from a flag package error ("flag
// provided but not defined: -x") and suggests the closest defined flag.
func flagSuggestion(fs *flag.FlagSet, err error) string {
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: ")
	if !ok {
		return ""
	}
	name = strings.TrimLeft(name, "-")
	var known []string
	fs.VisitAll(func(f *flag.Flag) {
		if len(f.Name) > 1 { // suggest --eventpath, never -e
			known = append(known, f.Name)
		}
	})
	if c := closest(name, known); c != "" {
		return fmt.Sprintf("; did you mean --%s?", c)
	}
	return ""
}

// checkJobIDs says which -j job ids no workflow has, with the closest id.
func checkJobIDs(wfs []*workflow.Workflow, ids []string) error {
	known := map[string]bool{}
	var all []string
	for _, wf := range wfs {
		for _, j := range wf.Jobs {
			if !known[j.ID] {
				known[j.ID] = true
				all = append(all, j.ID)
			}
		}
	}
	for _, id := range ids {
		if !known[id] {
			return fmt.Errorf("no job %q in the workflows%s (jobs: %s)", id, didYouMean(id, all), strings.Join(all, ", "))
		}
	}
	return nil
}
