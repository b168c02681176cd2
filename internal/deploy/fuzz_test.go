package deploy

import (
	"testing"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// FuzzRules feeds the rules arbitrary patterns and refs: they never panic,
// an allowed ref is at least a branch or tag, and Map picks a rule exactly
// when Allows lets its branch pattern through.
func FuzzRules(f *testing.F) {
	for _, s := range [][2]string{{"main", "refs/heads/main"}, {"release/*", "refs/heads/release/1"}, {"v*", "refs/tags/v1"},
		{"**", "refs/pull/1/merge"}, {"[a-", "refs/heads/a"}, {"!x", ""}, {"a{branch}b", "refs/heads/"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, ref string) {
		p := store.Protection{Branches: []string{pat}, Tags: []string{pat}}
		if Check(p) != nil {
			return
		}
		if Allows("e", p, ref) == nil && len(ref) < len("refs/tags/") {
			t.Fatalf("ref %q allowed by %q", ref, pat)
		}
		m := store.EnvMapping{Rules: []store.EnvRule{{Branch: pat, Environment: "e"}}}
		if env, per := Map(m, ref); env != "" && (env != "e" || per || Allows("e", store.Protection{Branches: []string{pat}}, ref) != nil) {
			t.Fatalf("Map(%q) by %q = %q %v, but the branch rule disagrees", ref, pat, env, per)
		}
	})
}
