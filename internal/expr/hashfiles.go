package expr

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// HashFiles hashes the files under dir matching patterns as GitHub's
// hashFiles does: patterns are globs relative to dir (`**`, `!` to exclude,
// later patterns win, a matched directory includes its files); the matched
// regular files, sorted, each give the sha256 of their content, and these
// digests are fed into one sha256, returned in hex. No match gives "".
func HashFiles(dir string, patterns []string) (string, error) {
	const op = "expr.HashFiles"
	type pat struct {
		neg  bool
		glob string
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return "", errs.Wrap(op, errs.Invalid, err)
	}
	var pats []pat
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		neg := false
		for strings.HasPrefix(p, "!") {
			neg = !neg
			p = p[1:]
		}
		if filepath.IsAbs(p) {
			rel, err := filepath.Rel(absDir, p)
			if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				continue // outside the workspace: never matches
			}
			p = rel
		}
		p = path.Clean(filepath.ToSlash(p))
		if !doublestar.ValidatePattern(p) {
			return "", errs.E(op, errs.Invalid, "invalid pattern %q", p)
		}
		pats = append(pats, pat{neg, p})
	}
	matches := func(rel string) bool {
		ok := false
		for _, p := range pats {
			if p.neg != ok {
				continue // cannot change the outcome
			}
			for q := rel; ; q = path.Dir(q) {
				if m, _ := doublestar.Match(p.glob, q); m {
					ok = !p.neg
					break
				}
				if !strings.Contains(q, "/") {
					break
				}
			}
		}
		return ok
	}
	var files []string
	err = filepath.WalkDir(absDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == absDir || d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(absDir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !matches(rel) {
			return nil
		}
		fi, err := os.Stat(p) // follows a symlink to a file
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		files = append(files, rel)
		return nil
	})
	if err != nil {
		return "", errs.Wrap(op, errs.Unavailable, err)
	}
	if len(files) == 0 {
		return "", nil
	}
	sort.Strings(files)
	total := sha256.New()
	for _, rel := range files {
		h, err := hashFile(filepath.Join(absDir, filepath.FromSlash(rel)))
		if err != nil {
			return "", errs.Wrap(op, errs.Unavailable, err)
		}
		total.Write(h)
	}
	return hex.EncodeToString(total.Sum(nil)), nil
}

// HashFilesIn returns a Context.HashFiles that hashes under dir.
func HashFilesIn(dir string) func(patterns []string) (string, error) {
	return func(patterns []string) (string, error) { return HashFiles(dir, patterns) }
}

func hashFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
