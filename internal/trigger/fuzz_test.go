package trigger

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// slow is far more than any input needs, even under -race on a busy machine.
const slow = 2 * time.Second

func FuzzCompileFilter(f *testing.F) {
	for _, s := range []string{
		`body.ref in ["refs/heads/master"]`,
		`headers["X-Github-Event"] == "push"`,
		`body.commits.exists(c, c.message.contains("deploy"))`,
		`body.commits.map(c, c.id).size() > 1`,
		`body.x.y.z`,
		`[1,2,3].all(a, [1,2,3].all(b, a + b > 0))`,
		`body.ref.matches("^(a|b)+$")`,
		"1 +\n  ",
		`"é" == x`,
		`dyn(body.size) / 0 == 1`,
		`int(body.size) % 0 == 1`,
		`9223372036854775807 + 1 == 0`,
		`body.commits[0].message.size() > 0`,
		`has(body.repository.private) ? body.repository.private : false`,
		`{"a": 1}.exists(k, k == "a")`,
		`b"\xff" == b"\xff"`,
		`duration("1s") < duration("2s")`,
		`timestamp("2024-01-01T00:00:00Z") < timestamp("2025-01-01T00:00:00Z")`,
	} {
		f.Add(s)
	}
	headers := map[string]string{"X-Github-Event": "push"}
	body := map[string]any{
		"ref":        "refs/heads/main",
		"size":       float64(2),
		"deleted":    false,
		"head":       nil,
		"commits":    []any{map[string]any{"id": "1", "message": "deploy"}, map[string]any{"id": "2", "message": ""}},
		"repository": map[string]any{"full_name": "o/r", "private": true},
	}
	f.Fuzz(func(t *testing.T, src string) {
		start := time.Now()
		defer func() {
			// Filters come from workflow files anyone may push: no input
			// may make the server spend long on one.
			if d := time.Since(start); d > slow {
				t.Errorf("compile and eval of %q took %v", src, d)
			}
		}()
		flt, err := CompileFilter(src)
		if err != nil {
			var fe *FilterError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %v is no *FilterError", err, err)
			}
			if fe.Line < 1 || fe.Col < 1 || fe.Offset < 0 || fe.Offset > len(src) {
				t.Fatalf("bad position %d:%d offset %d for %q", fe.Line, fe.Col, fe.Offset, src)
			}
			return
		}
		flt.Eval(headers, body)
		flt.Eval(nil, nil)
	})
}

// quoteGlob escapes every special character of a name.
func quoteGlob(name string) string {
	var b strings.Builder
	for _, c := range name {
		if strings.ContainsRune(`*?+[]\!`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func FuzzMatchPattern(f *testing.F) {
	for _, s := range [][2]string{
		{"feature/*", "feature/x"}, {"**/README.md", "README.md"}, {"*.jsx?", "a.jsx"},
		{"v[12].[0-9]+.[0-9]+", "v1.10.1"}, {"!main", "main"}, {`a\*`, "a*"}, {"**/", "/"},
		{"[a-z]+-[0-9]", "ab-1"}, {"a*?b", "ab"}, {"?+", "?"}, {"é?", ""}, {"[", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		start := time.Now()
		defer func() {
			if d := time.Since(start); d > slow {
				t.Errorf("pattern %q on %q took %v", pattern, name, d)
			}
		}()
		p, err := CompilePattern(pattern)
		if err == nil {
			p.Match(name)
			Patterns{p}.Includes(name)
			plain := !strings.ContainsAny(pattern, `*?+[]\!`)
			if plain && p.Match(name) != (pattern == name) {
				t.Fatalf("plain pattern %q on %q: Match = %v", pattern, name, p.Match(name))
			}
		}
		if name == "" || !utf8.ValidString(name) || len(name) > MaxPatternLength/2 {
			return
		}
		q, err := CompilePattern(quoteGlob(name))
		if err != nil {
			t.Fatalf("quoted %q: %v", name, err)
		}
		if !q.Match(name) {
			t.Fatalf("quoted %q does not match itself", name)
		}
		if pattern != name && q.Match(pattern) {
			t.Fatalf("quoted %q matches %q", name, pattern)
		}
		if all, _ := CompilePattern("**"); !all.Match(name) {
			t.Fatalf("** does not match %q", name)
		}
	})
}
