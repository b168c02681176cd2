package archive

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Mapper places an archive name: under which host directory (root) and at
// which relative slash path in it. An error refuses the archive.
type Mapper func(name string) (root, rel string, err error)

// In maps every name to the same name under dir.
func In(dir string) Mapper {
	return func(name string) (string, string, error) { return dir, name, nil }
}

// extractor holds one extraction's open roots and progress.
type extractor struct {
	m     Mapper
	lim   Limits
	roots map[string]*os.Root
	files map[string]placed // regular files written, for hard links
	dirs  []dirMode         // modes applied at the end, so 0555 dirs can be filled first
	stats Stats
	buf   []byte
}

type placed struct {
	root *os.Root
	rel  string
}

type dirMode struct {
	root  *os.Root
	rel   string
	mode  fs.FileMode
	mtime time.Time
}

// Extract reads a tar+zstd or tar.gz archive (told apart by their magic
// numbers) from r and writes it where m says, following the package's
// rules. It stops at the first refused entry.
func Extract(ctx context.Context, r io.Reader, m Mapper, lim Limits) (Stats, error) {
	zr, err := decompress(r)
	if err != nil {
		return Stats{}, err
	}
	defer zr.Close()
	x := &extractor{m: m, lim: lim, roots: map[string]*os.Root{}, files: map[string]placed{}, buf: make([]byte, 256<<10)}
	defer func() {
		for _, rt := range x.roots {
			rt.Close()
		}
	}()
	tr := tar.NewReader(zr)
	for {
		if err := ctx.Err(); err != nil {
			return x.stats, errs.Wrap("archive", errs.Canceled, err)
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return x.stats, errs.Wrap("archive", errs.Invalid, err)
		}
		if err := x.entry(h, tr); err != nil {
			return x.stats, err
		}
	}
	for i := len(x.dirs) - 1; i >= 0; i-- { // deepest first
		d := x.dirs[i]
		if err := d.root.Chmod(d.rel, d.mode); err != nil {
			return x.stats, errs.Wrap("archive", errs.Unavailable, err)
		}
		_ = d.root.Chtimes(d.rel, d.mtime, d.mtime)
	}
	return x.stats, nil
}

func (x *extractor) root(dir string) (*os.Root, error) {
	if rt, ok := x.roots[dir]; ok {
		return rt, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, errs.Wrap("archive", errs.Unavailable, err)
	}
	rt, err := os.OpenRoot(dir)
	if err != nil {
		return nil, errs.Wrap("archive", errs.Unavailable, err)
	}
	x.roots[dir] = rt
	return rt, nil
}

func (x *extractor) entry(h *tar.Header, body io.Reader) error {
	name := headerName(h)
	if h.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if !ValidName(name) {
		return unsafe("entry name %q is absolute, has .. or is not clean", h.Name)
	}
	x.stats.Entries++
	if x.lim.MaxEntries > 0 && x.stats.Entries > x.lim.MaxEntries {
		return errs.E("archive", errs.TooLarge, "archive has more than %d entries", x.lim.MaxEntries)
	}
	dir, rel, err := x.m(name)
	if err != nil {
		return err
	}
	if !ValidName(rel) {
		return unsafe("entry %q maps to %q, not a clean relative path", name, rel)
	}
	rt, err := x.root(dir)
	if err != nil {
		return err
	}
	mode := fs.FileMode(h.Mode).Perm()
	if h.Mode&04000 != 0 {
		mode |= fs.ModeSetuid
	}
	if h.Mode&02000 != 0 {
		mode |= fs.ModeSetgid
	}
	if h.Mode&01000 != 0 {
		mode |= fs.ModeSticky
	}
	switch h.Typeflag {
	case tar.TypeDir:
		return x.dir(rt, rel, mode, h.ModTime)
	case tar.TypeReg: // archive/tar reports old TypeRegA entries as TypeReg
		return x.file(rt, name, rel, mode, h, body)
	case tar.TypeSymlink:
		if !linkInside(rel, h.Linkname) {
			return unsafe("symbolic link %q -> %q leaves the destination", name, h.Linkname)
		}
		return x.create(rt, rel, func() error { return rt.Symlink(filepath.FromSlash(h.Linkname), rel) })
	case tar.TypeLink:
		first, ok := x.files[h.Linkname]
		if !ok || first.root != rt {
			return unsafe("hard link %q -> %q: not an earlier file of the archive under the same root", name, h.Linkname)
		}
		if err := x.create(rt, rel, func() error { return rt.Link(first.rel, rel) }); err != nil {
			return err
		}
		x.files[name] = placed{rt, rel}
		x.stats.Files++
		return nil
	}
	return unsafe("entry %q has type %q (devices, FIFOs and others are refused)", name, string(rune(h.Typeflag)))
}

func (x *extractor) dir(rt *os.Root, rel string, mode fs.FileMode, mtime time.Time) error {
	fi, err := rt.Lstat(rel)
	if err == nil && !fi.IsDir() {
		if err := rt.Remove(rel); err != nil {
			return wrapIO(err)
		}
	}
	if err := rt.MkdirAll(rel, 0o755); err != nil {
		return wrapIO(err)
	}
	x.dirs = append(x.dirs, dirMode{rt, rel, mode, mtime})
	return nil
}

func (x *extractor) file(rt *os.Root, name, rel string, mode fs.FileMode, h *tar.Header, body io.Reader) error {
	if h.Size < 0 {
		return unsafe("entry %q has a negative size", name)
	}
	if x.lim.MaxBytes > 0 && x.stats.Bytes+h.Size > x.lim.MaxBytes {
		return errs.E("archive", errs.TooLarge, "archive holds more than %d bytes of files", x.lim.MaxBytes)
	}
	var f *os.File
	err := x.create(rt, rel, func() (err error) {
		f, err = rt.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		return err
	})
	if err != nil {
		return err
	}
	n, err := io.CopyBuffer(f, io.LimitReader(body, h.Size), x.buf)
	if err == nil {
		err = f.Chmod(mode) // on the descriptor: no second walk of the path
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	x.stats.Bytes += n
	if err != nil {
		return errs.Wrap("archive", errs.Invalid, err)
	}
	if n < h.Size {
		return errs.E("archive", errs.Invalid, "entry %q is truncated", name)
	}
	_ = rt.Chtimes(rel, h.ModTime, h.ModTime)
	x.files[name] = placed{rt, rel}
	x.stats.Files++
	return nil
}

// create runs mk, which makes rel (O_EXCL semantics), the way tar does:
// when rel's folder is missing it is made, and when something is at rel
// (a file or link, never followed; an empty directory) it is removed and
// mk runs again, so the entry is created anew and never written through.
// The common cases (a fresh tree, or a folder made by an earlier entry)
// cost no extra call.
func (x *extractor) create(rt *os.Root, rel string, mk func() error) error {
	err := mk()
	if errors.Is(err, fs.ErrNotExist) {
		if d := path.Dir(rel); d != "." {
			if err := rt.MkdirAll(d, 0o755); err != nil {
				return wrapIO(err)
			}
		}
		err = mk()
	}
	if errors.Is(err, fs.ErrExist) {
		if err := rt.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return wrapIO(err)
		}
		err = mk()
	}
	return wrapIO(err)
}

// wrapIO gives file-system errors a kind; escapes os.Root refused are unsafe archives.
func wrapIO(err error) error {
	if err == nil {
		return nil
	}
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Err != nil && pe.Err.Error() == "path escapes from parent" {
		return unsafe("%v", err)
	}
	return errs.Wrap("archive", errs.Unavailable, err)
}
