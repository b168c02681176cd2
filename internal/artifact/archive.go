package artifact

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Pack writes files to w as an artifact's content (tar.gz), each with its
// permission bits (the executable bit survives the round trip).
func Pack(ctx context.Context, w io.Writer, files []File) error {
	const op = "artifact.Pack"
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return errs.Wrap(op, errs.Canceled, err)
		}
		if err := packFile(tw, f); err != nil {
			return errs.Wrap(op, errs.Unavailable, err)
		}
	}
	if err := tw.Close(); err != nil {
		return errs.Wrap(op, errs.Unavailable, err)
	}
	return errs.Wrap(op, errs.Unavailable, gz.Close())
}

func packFile(tw *tar.Writer, f File) error {
	in, err := os.Open(f.Path)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	h := &tar.Header{Typeflag: tar.TypeReg, Name: f.Name, Mode: int64(fi.Mode().Perm()), Size: fi.Size(),
		ModTime: fi.ModTime(), Format: tar.FormatPAX}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	// A file that grows meanwhile is cut at its size when stat'ed; one
	// that shrinks fails the upload rather than storing a short file.
	if _, err := io.CopyN(tw, in, fi.Size()); err != nil {
		return errs.E("", errs.Other, "%s: %v", f.Path, err)
	}
	return nil
}

// Limits bound what Extract writes.
type Limits struct {
	// Bytes is the most file content in total; Files the most entries.
	Bytes int64
	Files int
}

// DefaultLimits bound an artifact's extraction.
var DefaultLimits = Limits{Bytes: 16 << 30, Files: 1_000_000}

// CheckName refuses an entry name that could land outside the
// destination: empty, absolute, with a .. element, a backslash or a NUL
// (zip-slip). Clean relative names pass.
func CheckName(name string) error {
	n := strings.TrimSuffix(name, "/")
	bad := n == "" || path.IsAbs(n) || strings.ContainsAny(n, "\\\x00") || len(n) > 4096
	if !bad {
		for _, el := range strings.Split(n, "/") {
			if el == ".." {
				bad = true
			}
		}
	}
	if bad {
		return errs.E("artifact", errs.Invalid, "refusing the archive entry %q: it would be written outside the destination", name)
	}
	return nil
}

// Extract writes an artifact's content (tar.gz from r) into dir, created
// if needed, and returns the number of files written. Only regular files
// and directories are taken; an entry that is a link, a device, or whose
// name could leave dir (absolute, ..) fails the extraction, and nothing
// is ever written through a symbolic link that leaves dir. Existing
// files are replaced.
func Extract(r io.Reader, dir string, lim Limits) (int, error) {
	const op = "artifact.Extract"
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, errs.Wrap(op, errs.Unavailable, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, errs.Wrap(op, errs.Unavailable, err)
	}
	defer root.Close()
	gz, err := gzip.NewReader(r)
	if err != nil {
		return 0, errs.E(op, errs.Invalid, "the artifact is not a tar.gz stream: %v", err)
	}
	tr := tar.NewReader(gz)
	var total int64
	files := 0
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return files, errs.E(op, errs.Invalid, "reading the artifact: %v", err)
		}
		if n >= lim.Files {
			return files, errs.E(op, errs.TooLarge, "the artifact has more than %d entries", lim.Files)
		}
		if err := CheckName(h.Name); err != nil {
			return files, err
		}
		name := path.Clean(strings.TrimSuffix(h.Name, "/"))
		if name == "." {
			continue
		}
		mode := fs.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			err = root.MkdirAll(name, mode|0o700)
		case tar.TypeReg:
			if h.Size < 0 {
				return files, errs.E(op, errs.Invalid, "entry %q: negative size", h.Name)
			}
			if total += h.Size; total > lim.Bytes {
				return files, errs.E(op, errs.TooLarge, "the artifact holds more than %s", FormatSize(lim.Bytes))
			}
			err = writeFile(root, name, mode, tr)
			files++
		default:
			return files, errs.E(op, errs.Invalid, "refusing the archive entry %q: only files and directories are taken (type %q)", h.Name, h.Typeflag)
		}
		if err != nil {
			return files, errs.Wrap(op, errs.Invalid, err)
		}
	}
}

func writeFile(root *os.Root, name string, mode fs.FileMode, r io.Reader) error {
	if d := path.Dir(name); d != "." {
		if err := root.MkdirAll(d, 0o777); err != nil {
			return err
		}
	}
	// Replace rather than write into: an existing symbolic link is
	// removed, never followed.
	if fi, err := root.Lstat(name); err == nil && !fi.IsDir() {
		if err := root.Remove(name); err != nil {
			return err
		}
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode|0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Chmod(mode | 0o600)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
