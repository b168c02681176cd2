package artifact

import (
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/glob"
)

// File is one file of an artifact: Path on the host (symbolic links
// resolved), Name inside the artifact (slash-separated, relative).
type File struct {
	Path string
	Name string
}

// Search says which files an upload takes.
type Search struct {
	// Patterns is upload-artifact's path: input: one pattern a line, *
	// ? [..] within a path element, ** across elements, a leading !
	// excludes; empty lines and # comments are ignored. A pattern that
	// names a directory takes every file under it.
	Patterns string
	// Base is the host directory relative patterns resolve against (the
	// workspace).
	Base string
	// Allowed is the host directory every file must lie in, symbolic
	// links resolved (the job directory); links that leave it are skipped.
	Allowed string
	// Abs maps an absolute pattern (as the step's processes see paths) to
	// the host; false when it is outside what the host can reach.
	Abs func(p string) (string, bool)
	// IncludeHidden takes files and directories whose name starts with a
	// dot (upload-artifact v4.4 leaves them out by default).
	IncludeHidden bool
}

// Find returns the files s selects, sorted by name, and the artifact's
// root: as upload-artifact does, the least common ancestor of the
// patterns' search paths (their parts before the first wildcard), or the
// directory of a single file named without wildcards. Warnings say what
// was skipped.
func Find(s Search) (files []File, root string, warnings []string, err error) {
	const op = "artifact.Find"
	allowed, err := filepath.EvalSymlinks(s.Allowed)
	if err != nil {
		return nil, "", nil, errs.Wrap(op, errs.Unavailable, err)
	}
	pats, err := parsePatterns(s)
	if err != nil {
		return nil, "", nil, err
	}
	w := &walker{search: s, allowed: allowed, exclude: pats.exclude, seen: map[string]bool{}, warned: map[string]bool{}}
	for _, pat := range pats.include {
		w.walkPattern(pat)
	}
	if len(w.found) == 0 {
		return nil, "", w.warnings, nil
	}
	root = artifactRoot(pats.searchPaths, w.found)
	files = w.files
	for i, p := range w.found {
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			return nil, "", nil, errs.E(op, errs.Other, "%s is not under the artifact's root %s", p, root)
		}
		files[i].Name = filepath.ToSlash(rel)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, root, w.warnings, nil
}

// patterns are a Search's path: lines, made absolute on the host and cut
// into elements.
type patterns struct {
	include, exclude [][]string
	// searchPaths are the top-level search paths of the include patterns.
	searchPaths []string
}

// parsePatterns reads s.Patterns: comments and blank lines dropped, ! lines
// as exclusions, relative patterns resolved against s.Base, absolute ones
// mapped to the host with s.Abs.
func parsePatterns(s Search) (patterns, error) {
	const op = "artifact.Find"
	var pats patterns
	var searchPaths []string
	for _, line := range strings.Split(s.Patterns, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		neg := strings.HasPrefix(line, "!")
		line = strings.TrimSpace(strings.TrimPrefix(line, "!"))
		if line == "" {
			continue
		}
		p := line
		if path.IsAbs(p) {
			h, ok := s.Abs(p)
			if !ok {
				return patterns{}, errs.E(op, errs.Invalid, "path %q is outside the job's directory: artifacts are uploaded from the workspace or runner.temp", line)
			}
			p = h
		} else {
			p = filepath.Join(s.Base, filepath.FromSlash(p))
		}
		segs := split(filepath.Clean(p))
		if neg {
			pats.exclude = append(pats.exclude, segs)
			continue
		}
		pats.include = append(pats.include, segs)
		searchPaths = append(searchPaths, searchPath(segs))
	}
	if len(pats.include) == 0 {
		return patterns{}, errs.E(op, errs.Invalid, "no path to upload: path: needs at least one pattern that is not an exclusion")
	}
	pats.searchPaths = topLevel(searchPaths)
	return pats, nil
}

// walker collects the files the include patterns match, once each, in the
// order found, with the warnings (each said once) for what it skipped.
type walker struct {
	search   Search
	allowed  string // the Allowed directory, symbolic links resolved
	exclude  [][]string
	seen     map[string]bool
	found    []string // host paths as walked (links not resolved)
	files    []File   // found[i] with its link resolved, Name not yet set
	warned   map[string]bool
	warnings []string
}

func (w *walker) warn(format string, args ...any) {
	msg := errs.E("", errs.Other, format, args...).Error()
	if !w.warned[msg] {
		w.warned[msg] = true
		w.warnings = append(w.warnings, msg)
	}
}

// walkPattern walks from pat's search path.
func (w *walker) walkPattern(pat []string) {
	start := searchPath(pat)
	w.walk(pat, start, start, false)
}

// walk visits p: a file that matches pat (or lies under a directory that
// did) is taken unless excluded; a directory is descended into while
// deeper paths can still match.
func (w *walker) walk(pat []string, start, p string, matched bool) {
	fi, real, ok := w.stat(start, p)
	if !ok {
		return
	}
	segs := split(p)
	matched = matched || glob.MatchSegs(pat, segs)
	switch {
	case fi.IsDir():
		if !matched && !hasDoubleStar(pat) && len(segs) >= len(pat) {
			return // deeper paths cannot match
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			w.warn("%s: %v", p, err)
			return
		}
		for _, e := range ents {
			w.walk(pat, start, filepath.Join(p, e.Name()), matched)
		}
	case fi.Mode().IsRegular() && matched && !excluded(w.exclude, segs) && !w.seen[p]:
		w.seen[p] = true
		w.found = append(w.found, p)
		w.files = append(w.files, File{Path: real})
	}
}

// stat says what p is and where it really lies, false (with a warning where
// the user should know) when p is missing, hidden, or leaves the allowed
// directory; a symbolic link to a file is followed, one to a directory not.
func (w *walker) stat(start, p string) (os.FileInfo, string, bool) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, "", false
	}
	if !w.search.IncludeHidden && p != start && strings.HasPrefix(filepath.Base(p), ".") {
		return nil, "", false
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		if r, err := filepath.EvalSymlinks(p); err != nil || !within(w.allowed, r) {
			w.warn("%s: outside the job directory, skipped", p)
			return nil, "", false
		}
		return fi, p, true
	}
	r, err := filepath.EvalSymlinks(p)
	if err != nil || !within(w.allowed, r) {
		w.warn("%s: a symbolic link that leaves the job directory is not followed", p)
		return nil, "", false
	}
	if fi, err = os.Stat(r); err != nil {
		return nil, "", false
	}
	if fi.IsDir() {
		w.warn("%s: a symbolic link to a directory is not followed", p)
		return nil, "", false
	}
	return fi, r, true
}

// artifactRoot is the directory artifact names are relative to: the common
// ancestor of several search paths, the directory of a single file named
// without wildcards, or else the one search path.
func artifactRoot(searchPaths, found []string) string {
	switch {
	case len(searchPaths) > 1:
		return commonAncestor(searchPaths)
	case len(found) == 1 && found[0] == searchPaths[0]:
		return filepath.Dir(found[0])
	default:
		return searchPaths[0]
	}
}

// split cuts a clean absolute path into elements ("/a/b" → "", "a", "b").
func split(p string) []string {
	p = filepath.ToSlash(p)
	if p == "/" {
		return []string{""}
	}
	return strings.Split(p, "/")
}

func join(segs []string) string {
	if len(segs) == 1 && segs[0] == "" {
		return "/"
	}
	return filepath.FromSlash(strings.Join(segs, "/"))
}

func isGlob(seg string) bool { return strings.ContainsAny(seg, "*?[") }

// searchPath is the part of a pattern before its first wildcard element.
func searchPath(pat []string) string {
	n := 0
	for n < len(pat) && !isGlob(pat[n]) {
		n++
	}
	if n == 0 {
		n = 1
	}
	return join(pat[:n])
}

func hasDoubleStar(pat []string) bool {
	for _, s := range pat {
		if s == "**" {
			return true
		}
	}
	return false
}

// excluded reports whether p or a directory above it matches an exclusion.
func excluded(exclude [][]string, p []string) bool {
	for _, ex := range exclude {
		for i := len(p); i >= 1; i-- {
			if glob.MatchSegs(ex, p[:i]) {
				return true
			}
		}
	}
	return false
}

// topLevel drops search paths that lie under another one.
func topLevel(paths []string) []string {
	sort.Strings(paths)
	var out []string
	for _, p := range paths {
		if len(out) > 0 && within(out[len(out)-1], p) {
			continue
		}
		out = append(out, p)
	}
	return out
}

func commonAncestor(paths []string) string {
	common := split(paths[0])
	for _, p := range paths[1:] {
		s := split(p)
		n := 0
		for n < len(common) && n < len(s) && common[n] == s[n] {
			n++
		}
		common = common[:n]
	}
	if len(common) == 0 {
		return "/"
	}
	return join(common)
}

// within reports whether p is dir or under it (both clean).
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
