package glob

import (
	"strings"
	"testing"
)

// FuzzParse: any pattern text parses or fails cleanly, and matching a
// parsed pattern never panics (it is not run against the file system:
// a fuzzed absolute pattern could walk the whole disk).
func FuzzParse(f *testing.F) {
	for _, s := range []string{"**/node_modules", "!a/**\n~/x", "a/[b-c]*/?", "a/[", "!!!", "~", "/abs/**/x/", "#c\n\n  x  "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pats, err := Parse(s, "/w", "/h")
		if err != nil {
			return
		}
		for _, p := range pats {
			if len(p.Segs) == 0 || p.Segs[0] != "" {
				t.Fatalf("%q: pattern %q is not absolute", s, p.Raw)
			}
			_ = p.Root()
			for _, q := range []string{"/w/a/b", "/h/x", "/", "/w/" + strings.Repeat("a/", 20)} {
				Selects(pats, q)
			}
		}
	})
}
