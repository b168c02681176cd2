// Package tarball moves a directory tree as a gzipped tar stream: the
// server sends a run's source to agents with it. Extract writes only
// inside its destination (no .., absolute paths or writes through
// symbolic links) and within size limits, since the stream crosses the
// network.
package tarball

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Write streams the tree under dir (regular files, directories and
// symbolic links, with their modes) to w as tar.gz.
func Write(w io.Writer, dir string) error {
	const op = "tarball.Write"
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		} else if !info.Mode().IsRegular() && !info.IsDir() {
			return nil // sockets, devices: not source
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			h.Name += "/"
		}
		h.Uname, h.Gname, h.Uid, h.Gid = "", "", 0, 0
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = gz.Close()
	}
	return errs.Wrap(op, errs.Unavailable, err)
}

// Limits bound what Extract writes.
type Limits struct {
	// Bytes is the most file content in total; Files the most entries.
	Bytes int64
	Files int
}

// DefaultLimits suit a source checkout.
var DefaultLimits = Limits{Bytes: 4 << 30, Files: 500_000}

// Extract reads a tar.gz stream from r into dir (created if needed).
// Entries that would land outside dir, or be written through a symbolic
// link that leaves it, are refused; hard links and special files are
// skipped.
func Extract(r io.Reader, dir string, lim Limits) error {
	const op = "tarball.Extract"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errs.Wrap(op, errs.Other, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return errs.Wrap(op, errs.Other, err)
	}
	defer root.Close()
	gz, err := gzip.NewReader(r)
	if err != nil {
		return errs.Wrap(op, errs.Invalid, err)
	}
	tr := tar.NewReader(gz)
	var total int64
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return errs.Wrap(op, errs.Invalid, err)
		}
		if n >= lim.Files {
			return errs.E(op, errs.TooLarge, "more than %d entries", lim.Files)
		}
		name := path.Clean(strings.TrimSuffix(h.Name, "/"))
		if name == "." || path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return errs.E(op, errs.Invalid, "entry %q leaves the destination", h.Name)
		}
		mode := fs.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			err = root.MkdirAll(name, mode|0o700)
		case tar.TypeSymlink:
			if err = mkParent(root, name); err == nil {
				err = root.Symlink(h.Linkname, name)
			}
		case tar.TypeReg:
			total += h.Size
			if total > lim.Bytes {
				return errs.E(op, errs.TooLarge, "more than %d bytes", lim.Bytes)
			}
			err = writeFile(root, name, mode, tr)
		}
		if err != nil {
			return errs.Wrap(op, errs.Invalid, err)
		}
	}
}

func mkParent(root *os.Root, name string) error {
	if d := path.Dir(name); d != "." {
		return root.MkdirAll(d, 0o755)
	}
	return nil
}

func writeFile(root *os.Root, name string, mode fs.FileMode, r io.Reader) error {
	if err := mkParent(root, name); err != nil {
		return err
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode|0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
