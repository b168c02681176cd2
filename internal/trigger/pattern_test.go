package trigger

import (
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// GitHub's filter pattern cheat sheet, plus negation order and escapes.
func TestPatternsCheatSheet(t *testing.T) {
	tests := []struct {
		patterns string // comma-separated
		match    []string
		noMatch  []string
	}{
		// Patterns to match branches and tags.
		{"feature/*", []string{"feature/my-branch", "feature/your-branch"}, []string{"feature/a/b", "feature", "xfeature/a"}},
		{"feature/**", []string{"feature/beta-a/my-branch", "feature/your-branch", "feature/mona/the/octocat"}, []string{"features/x"}},
		{"main,releases/mona-the-octocat", []string{"main", "releases/mona-the-octocat"}, []string{"mainline", "releases/other"}},
		{"*", []string{"main", "releases"}, []string{"all/the/branches"}},
		{"**", []string{"all/the/branches", "every/tag", "main"}, nil},
		{"*feature", []string{"mona-feature", "feature", "ver-10-feature"}, []string{"feature-x", "a/feature"}},
		{"v2*", []string{"v2", "v2.0", "v2.9"}, []string{"v1.0", "v2/x"}},
		{"v[12].[0-9]+.[0-9]+", []string{"v1.10.1", "v2.0.0"}, []string{"v3.0.0", "v1.x.1", "v1..1"}},
		// Patterns to match file paths.
		{"*", []string{"README.md", "server.rb"}, []string{"docs/README.md"}},
		{"*.jsx?", []string{"page.js", "page.jsx"}, []string{"page.jsxx", "page.j"}},
		{"**", []string{"all/the/files.md"}, nil},
		{"*.js", []string{"app.js", "index.js"}, []string{"js/index.js"}},
		{"**.js", []string{"index.js", "js/index.js", "src/js/app.js"}, []string{"index.jsx"}},
		{"docs/*", []string{"docs/README.md", "docs/file.txt"}, []string{"docs/a/b.md"}},
		{"docs/**", []string{"docs/README.md", "docs/mona/octocat.txt"}, []string{"doc/x"}},
		{"docs/**/*.md", []string{"docs/README.md", "docs/mona/hello-world.md", "docs/a/markdown/file.md"}, []string{"docs/a.txt"}},
		{"**/docs/**", []string{"docs/hello.md", "dir/docs/my-file.txt", "space/docs/plan/space.doc"}, []string{"mydocs/x"}},
		{"**/README.md", []string{"README.md", "js/README.md"}, []string{"README.mdx", "js/NOTREADME.md"}},
		{"**/*src/**", []string{"a/src/app.js", "my-src/code/js/app.js"}, []string{"source/app.js"}},
		{"**/*-post.md", []string{"my-post.md", "path/their-post.md"}, []string{"post.md"}},
		{"**/migrate-*.sql", []string{"migrate-10909.sql", "db/migrate-v1.0.sql", "db/sept/migrate-v1.sql"}, []string{"db/migrate.sql"}},
		{"*.md,!README.md", []string{"hello.md"}, []string{"README.md", "docs/hello.md"}},
		{"*.md,!README.md,README*", []string{"hello.md", "README.md", "README.doc"}, []string{"docs/hello.md"}},
		// Brackets, quantifiers, escapes.
		{"[CB]at", []string{"Cat", "Bat"}, []string{"cat", "Hat"}},
		{"[1-2]00", []string{"100", "200"}, []string{"300"}},
		{"[0-9a-z]", []string{"0", "q"}, []string{"Q", "-"}},
		{"release/v[0-9].[0-9]", []string{"release/v1.2"}, []string{"release/v1.23"}},
		{"fo+", []string{"fo", "foooo"}, []string{"f"}},
		{"ab?c", []string{"ac", "abc"}, []string{"abbc"}},
		{"?a", []string{"?a"}, []string{"a", "ba"}},
		{"a*?", []string{"a", "abc"}, []string{"a/b"}},
		{`\!file`, []string{"!file"}, []string{"file"}},
		{`escape\\backslash`, []string{`escape\backslash`}, nil},
		{`v1\.0\+`, []string{"v1.0+"}, []string{"v1x0+", "v1.0"}},
		{`a\*`, []string{"a*"}, []string{"ab"}},
		{".yml", []string{".yml"}, []string{"fyml"}},
		{"a!b", []string{"a!b"}, nil},
		{"**/", []string{"x/", "/"}, []string{"x"}},
		{"é+t", []string{"éét"}, []string{"t"}},
		{"!main", nil, []string{"main", "dev"}},
	}
	for _, tt := range tests {
		t.Run(tt.patterns, func(t *testing.T) {
			ps, err := CompilePatterns(strings.Split(tt.patterns, ","))
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range tt.match {
				if !ps.Includes(n) {
					t.Errorf("%q does not match, want match", n)
				}
			}
			for _, n := range tt.noMatch {
				if ps.Includes(n) {
					t.Errorf("%q matches, want no match", n)
				}
			}
		})
	}
}

func TestPatternErrors(t *testing.T) {
	for _, p := range []string{"", "!", "[]", "[abc", "[a-]", "[z-a]", "[a-Z]", "[._]", `foo\`, "a*+", "a?+", "a++", "**+", "\xff", strings.Repeat("a", MaxPatternLength+1)} {
		_, err := CompilePattern(p)
		if err == nil {
			t.Errorf("%q compiled, want an error", p)
			continue
		}
		if !errs.Is(err, errs.Invalid) {
			t.Errorf("%q: error kind %v, want invalid", p, errs.KindOf(err))
		}
	}
}

func TestMatchPattern(t *testing.T) {
	if ok, err := MatchPattern("v*", "v1"); !ok || err != nil {
		t.Errorf("MatchPattern(v*, v1) = %v, %v", ok, err)
	}
	if ok, _ := MatchPattern("!v*", "v1"); ok {
		t.Errorf("a negated pattern alone selected a name")
	}
	if _, err := MatchPattern("[", "x"); err == nil {
		t.Errorf("MatchPattern([) gave no error")
	}
}
