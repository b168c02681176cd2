// Package glob is Conveyor's implementation of @actions/glob patterns, as
// actions/cache, upload-artifact and hashFiles read them:
//
//   - one pattern a line; blank lines and lines starting with # are ignored;
//   - a leading ! excludes (several ! toggle); later patterns win over
//     earlier ones for the paths they both match;
//   - a leading ~ is the home directory; relative patterns start at the
//     working directory given;
//   - * ? and [...] match within one path element, ** any number of
//     elements (zero included);
//   - a trailing / matches directories only.
//
// Match returns the paths matched themselves, not their descendants (as
// actions/cache's implicitDescendants: false); a directory matched is
// taken whole by its caller. Symbolic links to directories are matched but
// never descended into, so a walk cannot loop or leave the tree.
package glob

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Pattern is one parsed line.
type Pattern struct {
	Negate  bool
	DirOnly bool     // trailing /
	Segs    []string // absolute, clean, split on / ("" first)
	Raw     string
}

// Parse reads multi-line patterns: relative ones are resolved against
// dir, ~ against home (an error when home is "" and ~ is used).
func Parse(patterns, dir, home string) ([]Pattern, error) {
	const op = "glob"
	var out []Pattern
	for _, line := range strings.Split(patterns, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := Pattern{Raw: line}
		for strings.HasPrefix(line, "!") {
			p.Negate = !p.Negate
			line = strings.TrimSpace(line[1:])
		}
		if line == "" {
			continue
		}
		line = filepath.ToSlash(line)
		p.DirOnly = strings.HasSuffix(line, "/")
		switch {
		case line == "~" || strings.HasPrefix(line, "~/"):
			if home == "" {
				return nil, errs.E(op, errs.Invalid, "%q: no home directory to expand ~", p.Raw)
			}
			line = filepath.ToSlash(home) + line[1:]
		case !path.IsAbs(line):
			line = filepath.ToSlash(dir) + "/" + line
		}
		line = path.Clean(line)
		for _, seg := range strings.Split(line, "/") {
			if _, err := path.Match(seg, ""); err != nil {
				return nil, errs.E(op, errs.Invalid, "%q: bad pattern element %q", p.Raw, seg)
			}
		}
		p.Segs = split(line)
		out = append(out, p)
	}
	return out, nil
}

// Match returns, sorted, the existing paths the patterns select.
func Match(pats []Pattern) ([]string, error) {
	found := map[string]bool{}
	for _, p := range pats {
		if p.Negate {
			continue
		}
		start := searchRoot(p.Segs)
		walk(start, func(hp string, isDir bool) bool {
			segs := split(filepath.ToSlash(hp))
			if matches(p, segs, isDir) && included(pats, segs, isDir) {
				found[hp] = true
			}
			return couldMatchBelow(p.Segs, segs)
		})
	}
	out := make([]string, 0, len(found))
	for p := range found {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// included applies every pattern in order: the last one matching decides.
func included(pats []Pattern, segs []string, isDir bool) bool {
	ok := false
	for _, p := range pats {
		if matches(p, segs, isDir) {
			ok = !p.Negate
		}
	}
	return ok
}

func matches(p Pattern, segs []string, isDir bool) bool {
	return (!p.DirOnly || isDir) && MatchSegs(p.Segs, segs)
}

// walk visits start and, for directories, what lies below while visit says
// so. Symbolic links are visited (as directories when they point to one)
// but not descended into.
func walk(start string, visit func(p string, isDir bool) bool) {
	fi, err := os.Lstat(start)
	if err != nil {
		return
	}
	isDir := fi.IsDir()
	if fi.Mode()&fs.ModeSymlink != 0 {
		if st, err := os.Stat(start); err == nil && st.IsDir() {
			visit(start, true)
			return
		}
	}
	if !visit(start, isDir) || !isDir {
		return
	}
	ents, err := os.ReadDir(start)
	if err != nil {
		return
	}
	for _, e := range ents {
		walk(filepath.Join(start, e.Name()), visit)
	}
}

// searchRoot is the part of a pattern before its first wildcard element.
func searchRoot(segs []string) string {
	n := 0
	for n < len(segs) && !isGlob(segs[n]) {
		n++
	}
	if n <= 1 {
		return "/"
	}
	return filepath.FromSlash(strings.Join(segs[:n], "/"))
}

func isGlob(seg string) bool { return strings.ContainsAny(seg, "*?[") }

// couldMatchBelow reports whether a path under p could still match pat.
func couldMatchBelow(pat, p []string) bool {
	for i, s := range pat {
		if s == "**" {
			return true
		}
		if i >= len(p) {
			return true
		}
		if ok, _ := path.Match(s, p[i]); !ok {
			return false
		}
	}
	return false
}

// MatchSegs matches path elements against pattern elements; ** matches
// any number of elements.
func MatchSegs(pat, p []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for len(pat) > 1 && pat[1] == "**" {
				pat = pat[1:]
			}
			for i := 0; i <= len(p); i++ {
				if MatchSegs(pat[1:], p[i:]) {
					return true
				}
			}
			return false
		}
		if len(p) == 0 {
			return false
		}
		if ok, err := path.Match(pat[0], p[0]); err != nil || !ok {
			return false
		}
		pat, p = pat[1:], p[1:]
	}
	return len(p) == 0
}

// split cuts a clean absolute slash path into elements ("/a/b" → "", "a", "b").
func split(p string) []string {
	if p == "/" {
		return []string{""}
	}
	return strings.Split(p, "/")
}

// Root is the host directory a pattern searches from: the part before its
// first wildcard element (the whole path when it has none).
func (p Pattern) Root() string { return searchRoot(p.Segs) }

// Selects applies the patterns to path p and everything under it, as
// hashFiles and upload-artifact read them: the last pattern matching p or
// a directory above it decides (a matched directory brings its files).
func Selects(pats []Pattern, p string) bool {
	segs := split(filepath.ToSlash(p))
	ok := false
	for _, pat := range pats {
		if pat.Negate != ok {
			continue // cannot change the outcome
		}
		for n := len(segs); n >= 1; n-- {
			if MatchSegs(pat.Segs, segs[:n]) {
				ok = !pat.Negate
				break
			}
		}
	}
	return ok
}
