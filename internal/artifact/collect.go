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
	var include, exclude [][]string
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
				return nil, "", nil, errs.E(op, errs.Invalid, "path %q is outside the job's directory: artifacts are uploaded from the workspace or runner.temp", line)
			}
			p = h
		} else {
			p = filepath.Join(s.Base, filepath.FromSlash(p))
		}
		segs := split(filepath.Clean(p))
		if neg {
			exclude = append(exclude, segs)
			continue
		}
		include = append(include, segs)
		searchPaths = append(searchPaths, searchPath(segs))
	}
	if len(include) == 0 {
		return nil, "", nil, errs.E(op, errs.Invalid, "no path to upload: path: needs at least one pattern that is not an exclusion")
	}
	searchPaths = topLevel(searchPaths)

	seen := map[string]bool{}
	var found []string
	warned := map[string]bool{}
	warn := func(format string, args ...any) {
		w := errs.E("", errs.Other, format, args...).Error()
		if !warned[w] {
			warned[w] = true
			warnings = append(warnings, w)
		}
	}
	for _, pat := range include {
		start := searchPath(pat)
		var walk func(p string, matched bool)
		walk = func(p string, matched bool) {
			fi, err := os.Lstat(p)
			if err != nil {
				return
			}
			if !s.IncludeHidden && p != start && strings.HasPrefix(filepath.Base(p), ".") {
				return
			}
			real := p
			if fi.Mode()&os.ModeSymlink != 0 {
				r, err := filepath.EvalSymlinks(p)
				if err != nil || !within(allowed, r) {
					warn("%s: a symbolic link that leaves the job directory is not followed", p)
					return
				}
				if fi, err = os.Stat(r); err != nil {
					return
				}
				if fi.IsDir() {
					warn("%s: a symbolic link to a directory is not followed", p)
					return
				}
				real = r
			} else if r, err := filepath.EvalSymlinks(p); err != nil || !within(allowed, r) {
				warn("%s: outside the job directory, skipped", p)
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
					warn("%s: %v", p, err)
					return
				}
				for _, e := range ents {
					walk(filepath.Join(p, e.Name()), matched)
				}
			case fi.Mode().IsRegular() && matched && !excluded(exclude, segs) && !seen[p]:
				seen[p] = true
				found = append(found, p)
				files = append(files, File{Path: real})
			}
		}
		walk(start, false)
	}
	if len(found) == 0 {
		return nil, "", warnings, nil
	}
	switch {
	case len(searchPaths) > 1:
		root = commonAncestor(searchPaths)
	case len(found) == 1 && found[0] == searchPaths[0]:
		root = filepath.Dir(found[0])
	default:
		root = searchPaths[0]
	}
	for i, p := range found {
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			return nil, "", nil, errs.E(op, errs.Other, "%s is not under the artifact's root %s", p, root)
		}
		files[i].Name = filepath.ToSlash(rel)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, root, warnings, nil
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
