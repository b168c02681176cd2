package main

import "testing"

func TestLevenshteinAndClosest(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"push", "puhs", 1}, {"ab", "ba", 1}, {"dryrun", "dryrn", 1}, {"é", "e", 1}} {
		if got := levenshtein(tc.a, tc.b); got != tc.d {
			t.Errorf("levenshtein(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
	known := []string{"push", "pull_request", "workflow_dispatch", "eventpath", "secret-file"}
	for s, want := range map[string]string{"psuh": "push", "pull-request": "pull_request", "evntpath": "eventpath", "secretfile": "secret-file", "zzz": "", "workflow_dispach": "workflow_dispatch"} {
		if got := closest(s, known); got != want {
			t.Errorf("closest(%q) = %q, want %q", s, got, want)
		}
	}
}
