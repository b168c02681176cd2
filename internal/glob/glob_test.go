package glob

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	root := t.TempDir()
	home := t.TempDir()
	for _, f := range []string{"a/x.go", "a/b/y.go", "a/b/c/z.txt", "node_modules/p/i.js", "pkg/node_modules/q/j.js", "file"} {
		p := filepath.Join(root, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, nil, 0o644)
	}
	os.MkdirAll(filepath.Join(home, ".npm", "_cacache"), 0o755)
	os.Symlink(root, filepath.Join(root, "loop"))
	rel := func(ps []string) []string {
		var out []string
		for _, p := range ps {
			if r, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(r, "..") {
				out = append(out, filepath.ToSlash(r))
			} else {
				r, _ := filepath.Rel(home, p)
				out = append(out, "~/"+filepath.ToSlash(r))
			}
		}
		return out
	}
	cases := []struct {
		patterns string
		want     []string
	}{
		{"a/**/*.go", []string{"a/b/y.go", "a/x.go"}},
		{"**/node_modules", []string{"node_modules", "pkg/node_modules"}},
		{"**/node_modules\n!pkg/**", []string{"node_modules"}},
		{"a/**/*.go\n!a/b/**\na/b/y.go", []string{"a/b/y.go", "a/x.go"}},
		{"~/.npm\n# comment\n\n", []string{"~/.npm"}},
		{"file/", nil},
		{"a/", []string{"a"}},
		{"missing", nil},
		{"!!file", []string{"file"}},
		{"loop", []string{"loop"}},
		{"*", []string{"a", "file", "loop", "node_modules", "pkg"}},
	}
	for _, c := range cases {
		pats, err := Parse(c.patterns, root, home)
		if err != nil {
			t.Fatalf("%q: %v", c.patterns, err)
		}
		got, err := Match(pats)
		if err != nil {
			t.Fatal(err)
		}
		if g := rel(got); !reflect.DeepEqual(g, c.want) && !(len(g) == 0 && len(c.want) == 0) {
			t.Errorf("%q = %q, want %q", c.patterns, g, c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	if _, err := Parse("~/x", "/w", ""); err == nil {
		t.Error("~ without a home: no error")
	}
	if _, err := Parse("a/[", "/w", "/h"); err == nil {
		t.Error("bad class: no error")
	}
}
