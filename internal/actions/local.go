// Package actions resolves what a step's or a job's uses: names.
//
// A local reference (./path) is confined to the repository it is read
// from: no absolute path, no ".." that leaves it, no symbolic link that
// points out of it, and every file read has a size limit.
//
// A remote action or reusable workflow (owner/repo[/path]@ref) resolves to
// a tree on disk, fetched with the git CLI from a base URL
// (https://github.com or a mirror) and cached by commit SHA. A ref that
// moves (a tag, a branch) is resolved again at most every RefTTL; a SHA is
// never fetched twice. Fetches of one repository and ref happen once, in
// this process (singleflight) and across processes (a file lock), and a
// fetched tree appears in the cache whole or not at all. Trees in the cache
// are shared by every job: callers copy them before a job may touch them.
//
// The package is part of the execution core: it reads no environment and
// imports nothing from the server side.
package actions

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// MaxFileSize caps every action.yml and workflow file read for a uses:
// (GitHub's own limit for a whole workflow tree is 10 MiB of parsed data;
// a single file over 1 MiB is not a workflow).
const MaxFileSize = 1 << 20

// IsLocal reports whether uses names a path in the repository (./x or ../x)
// rather than a remote action, a docker:// image or a reusable workflow of
// another repository.
func IsLocal(uses string) bool {
	return strings.HasPrefix(uses, "./") || strings.HasPrefix(uses, "../")
}

// LocalPath checks a local uses: and returns the path it names relative to
// the repository root, cleaned, with slashes ("." for the root itself). It
// refuses absolute paths, paths that climb out of the repository, and
// backslashes (which mean a separator on Windows runners and hide a ".."
// from a check by slashes).
func LocalPath(uses string) (string, error) {
	const op = "uses"
	if !IsLocal(uses) {
		return "", errs.E(op, errs.Invalid, "%q is not a local path (it must start with ./)", uses)
	}
	if strings.ContainsAny(uses, "\\\x00") {
		return "", errs.E(op, errs.Invalid, "%q: a local path may not hold a backslash or a NUL byte", uses)
	}
	if strings.Contains(uses, "@") {
		return "", errs.E(op, errs.Invalid, "%q: a local path takes no @ref (it is read from the repository at the run's commit)", uses)
	}
	rel := path.Clean(uses)
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", errs.E(op, errs.Invalid, "%q leaves the repository: a local action or workflow must be inside it", uses)
	}
	return rel, nil
}

// LocalDir resolves a local uses: naming a directory (an action) under the
// repository root and returns its real path on disk, symbolic links
// resolved. A link that leads out of the repository is refused, as is a
// path that is not a directory.
func LocalDir(root, uses string) (string, error) {
	const op = "uses"
	rel, err := LocalPath(uses)
	if err != nil {
		return "", err
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", errs.Wrap(op, errs.NotFound, err)
	}
	dir, err := filepath.EvalSymlinks(filepath.Join(realRoot, filepath.FromSlash(rel)))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", errs.E(op, errs.NotFound, "%q: no such directory in the repository", uses)
		}
		return "", errs.Wrap(op, errs.Invalid, err)
	}
	if !within(realRoot, dir) {
		return "", errs.E(op, errs.Invalid, "%q leaves the repository through a symbolic link", uses)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return "", errs.Wrap(op, errs.NotFound, err)
	}
	if !st.IsDir() {
		return "", errs.E(op, errs.Invalid, "%q is not a directory", uses)
	}
	return dir, nil
}

// within reports whether p is root or below it (both cleaned, absolute).
func within(root, p string) bool {
	r, err := filepath.Rel(root, p)
	return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator)) && !filepath.IsAbs(r)
}

// ReadFile reads the file at rel (slash-separated, relative) under root,
// confined to root by os.Root: no "..", absolute path or symbolic link may
// lead out of it. It must be a regular file of at most limit bytes (limit
// <= 0 means MaxFileSize); a device, FIFO or socket is refused without
// blocking on it.
func ReadFile(root, rel string, limit int64) ([]byte, error) {
	const op = "read"
	if limit <= 0 {
		limit = MaxFileSize
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, errs.Wrap(op, errs.NotFound, err)
	}
	defer r.Close()
	// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
	f, err := r.OpenFile(filepath.FromSlash(rel), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fileErr(op, rel, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, errs.Wrap(op, errs.Other, err)
	}
	if !st.Mode().IsRegular() {
		return nil, errs.E(op, errs.Invalid, "%s is not a regular file", rel)
	}
	if st.Size() > limit {
		return nil, errs.E(op, errs.TooLarge, "%s is %d bytes, over the limit of %d", rel, st.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, errs.Wrap(op, errs.Other, err)
	}
	if int64(len(b)) > limit {
		return nil, errs.E(op, errs.TooLarge, "%s is over the limit of %d bytes", rel, limit)
	}
	return b, nil
}

// fileErr gives an open error its kind without echoing anything read.
func fileErr(op, rel string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errs.E(op, errs.NotFound, "%s: no such file in the repository", rel)
	}
	// os.Root's refusal of a path or link leading out of root has no
	// exported error value; its message names the path, never the content.
	return errs.E(op, errs.Invalid, "%s cannot be read inside the repository: %v", rel, err)
}

// ReadLocal reads the file a local uses: names (a reusable workflow) under
// root, confined and size-limited as ReadFile.
func ReadLocal(root, uses string) ([]byte, error) {
	rel, err := LocalPath(uses)
	if err != nil {
		return nil, err
	}
	return ReadFile(root, rel, MaxFileSize)
}

// ActionFile is an action's metadata file read from a directory.
type ActionFile struct {
	Name string // "action.yml" or "action.yaml"
	Data []byte
}

// ReadActionFile reads action.yml (else action.yaml) of the action at rel
// under root, confined and size-limited as ReadFile. It reports NotFound
// when neither exists.
func ReadActionFile(root, rel string) (*ActionFile, error) {
	for _, n := range []string{"action.yml", "action.yaml"} {
		b, err := ReadFile(root, path.Join(rel, n), MaxFileSize)
		if err == nil {
			return &ActionFile{Name: n, Data: b}, nil
		}
		if errs.KindOf(err) != errs.NotFound {
			return nil, err
		}
	}
	return nil, errs.E("action", errs.NotFound, "can't find 'action.yml' or 'action.yaml' in %s", rel)
}
