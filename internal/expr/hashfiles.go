package expr

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/glob"
)

// HashFiles hashes the files under dir matching patterns as GitHub's
// hashFiles does: patterns are globs relative to dir (`**`, `!` to exclude,
// later patterns win, a matched directory includes its files); the matched
// regular files, sorted, each give the sha256 of their content, and these
// digests are fed into one sha256, returned in hex. No match gives "".
func HashFiles(dir string, patterns []string) (string, error) {
	const op = "expr.HashFiles"
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return "", errs.Wrap(op, errs.Invalid, err)
	}
	var lines []string
	for _, p := range patterns {
		if strings.HasPrefix(strings.TrimLeft(strings.TrimSpace(p), "!"), "~") {
			continue // the home directory is outside the workspace: never matches
		}
		lines = append(lines, p)
	}
	pats, err := glob.Parse(strings.Join(lines, "\n"), absDir, "")
	if err != nil {
		return "", errs.Wrap(op, errs.Invalid, err)
	}
	matches := func(rel string) bool { return glob.Selects(pats, filepath.Join(absDir, rel)) }
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
