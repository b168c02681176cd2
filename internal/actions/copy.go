package actions

import (
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
func CopyTree(src, dst string) error {
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
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
			return os.Symlink(l, target)
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			return copyFile(p, target, info.Mode().Perm()|0o644)
		}
		return nil // devices, FIFOs: git does not make them
	})
	if err != nil {
		return errs.Wrap("copy action", errs.Unavailable, err)
	}
	return nil
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
