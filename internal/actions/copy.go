package actions

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// CopyTree copies a fetched tree to dst (made if needed) for one job:
// files get their own inodes (a hard link would let a job write through
// to the shared cache), symbolic links are copied as links, never
// followed; files keep their executable bits and become writable by the
// job.
func CopyTree(src, dst string) error { return CopyTreeFunc(src, dst, nil) }

// CopyTreeFunc is CopyTree where keep, when set, decides per entry below
// src (a directory it refuses is skipped whole). A file or link already at
// a target is replaced, never written through, so dst may be a folder a
// job has written to (a workspace).
func CopyTreeFunc(src, dst string, keep func(rel string, d fs.DirEntry) bool) error {
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if rel != "." && keep != nil && !keep(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch t := d.Type(); {
		case d.IsDir():
			return os.MkdirAll(target, 0o777)
		case t&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return replace(target, func() error { return os.Symlink(l, target) })
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			return replace(target, func() error { return copyFile(p, target, info.Mode().Perm()|0o644) })
		}
		return nil // devices, FIFOs: git does not make them
	})
	if err != nil {
		return errs.Wrap("copy tree", errs.Unavailable, err)
	}
	return nil
}

// replace runs create (which makes path exclusively); when something is
// there already, it is removed (not followed) and create runs again.
func replace(path string, create func() error) error {
	err := create()
	if errors.Is(err, fs.ErrExist) {
		if err := os.Remove(path); err != nil {
			return err
		}
		err = create()
	}
	return err
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
