package archive

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/klauspost/compress/zstd"
)

// Writer streams a tar+zstd archive. Not safe for concurrent use.
type Writer struct {
	zw     io.WriteCloser // the compressor: zstd, or gzip (WriterOptions.Gzip)
	tw     *tar.Writer
	copies bool              // CopyHardLinks
	inodes map[fileID]string // first archive name of each multiply-linked file
	names  map[string]bool
	warn   func(string)
	stats  Stats
	buf    []byte
}

// Stats count what an archive holds.
type Stats struct {
	Entries int
	Files   int   // regular files (hard links included)
	Bytes   int64 // file content
}

// WriterOptions tune a Writer.
type WriterOptions struct {
	// Level is the zstd level (0: zstd.SpeedDefault, zstd's level 3).
	Level zstd.EncoderLevel
	// Warn receives one line per skipped path (nil: dropped).
	Warn func(string)
	// Gzip writes tar.gz instead of tar+zstd, for the formats that are
	// tar.gz by contract: artifacts (users download them as .tar.gz) and
	// the agents' source tarball (agents of earlier versions read it).
	Gzip bool
	// CopyHardLinks writes every name of a multiply-linked file as a
	// regular file, for readers that take no hard links (earlier
	// versions' artifact and source extractors).
	CopyHardLinks bool
}

// NewWriter starts an archive on w. Close finishes it (and does not close w).
func NewWriter(w io.Writer, opt WriterOptions) (*Writer, error) {
	var zw io.WriteCloser
	if opt.Gzip {
		zw = gzip.NewWriter(w)
	} else {
		if opt.Level == 0 {
			opt.Level = zstd.SpeedDefault
		}
		enc, err := zstd.NewWriter(w, zstd.WithEncoderLevel(opt.Level))
		if err != nil {
			return nil, errs.Wrap("archive", errs.Other, err)
		}
		zw = enc
	}
	warn := opt.Warn
	if warn == nil {
		warn = func(string) {}
	}
	return &Writer{zw: zw, tw: tar.NewWriter(zw), copies: opt.CopyHardLinks, inodes: map[fileID]string{}, names: map[string]bool{},
		warn: warn, buf: make([]byte, 256<<10)}, nil
}

// Stats returns what was written so far.
func (w *Writer) Stats() Stats { return w.stats }

// Add writes the file or tree at host path src under the archive name
// name. base is an archive name that name lies in (or equals): symbolic
// links whose target leaves base are skipped (Warn says so), so every
// kept link resolves inside base when extracted. A name already written is
// not written again.
func (w *Writer) Add(ctx context.Context, src, name, base string) error {
	const op = "archive.Add"
	if !ValidName(name) || (base != "" && !ValidName(base)) || !under(base, name) {
		return errs.E(op, errs.Invalid, "bad archive name %q (base %q)", name, base)
	}
	src = filepath.Clean(src)
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == src {
				return errs.Wrap(op, errs.NotFound, err)
			}
			w.warn(fmt.Sprintf("%s: %v", p, err))
			return nil
		}
		if err := ctx.Err(); err != nil {
			return errs.Wrap(op, errs.Canceled, err)
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return errs.Wrap(op, errs.Other, err)
		}
		n := name
		if rel != "." {
			n = name + "/" + filepath.ToSlash(rel)
		}
		if w.names[n] {
			if d.IsDir() && p != src {
				return fs.SkipDir
			}
			return nil
		}
		if err := w.entry(p, n, base); err != nil {
			return errs.Wrap(op, errs.KindOf(err), err)
		}
		return nil
	})
}

// entry writes one path (not its children).
func (w *Writer) entry(p, name, base string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		w.warn(fmt.Sprintf("%s: %v", p, err))
		return nil
	}
	h := &tar.Header{Name: name, Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime().Truncate(1e9), Format: tar.FormatPAX}
	if fi.Mode()&os.ModeSetuid != 0 {
		h.Mode |= 04000
	}
	if fi.Mode()&os.ModeSetgid != 0 {
		h.Mode |= 02000
	}
	if fi.Mode()&os.ModeSticky != 0 {
		h.Mode |= 01000
	}
	var body *os.File
	switch {
	case fi.IsDir():
		h.Typeflag = tar.TypeDir
		h.Name += "/"
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			w.warn(fmt.Sprintf("%s: %v", p, err))
			return nil
		}
		if !linkInside(splitBase(base, name), filepath.ToSlash(target)) {
			w.warn(fmt.Sprintf("%s: a symbolic link to %s leaves %s; skipped", p, target, displayBase(base)))
			return nil
		}
		h.Typeflag, h.Linkname = tar.TypeSymlink, filepath.ToSlash(target)
	case fi.Mode().IsRegular():
		if id, ok := inode(fi); ok && !w.copies {
			if first, seen := w.inodes[id]; seen {
				h.Typeflag, h.Linkname = tar.TypeLink, first
				break
			}
			w.inodes[id] = name
		}
		f, err := os.Open(p)
		if err != nil {
			w.warn(fmt.Sprintf("%s: %v", p, err))
			return nil
		}
		defer f.Close()
		h.Typeflag, h.Size, body = tar.TypeReg, fi.Size(), f
	default:
		w.warn(fmt.Sprintf("%s: a %s is not archived", p, kindName(fi.Mode())))
		return nil
	}
	if err := w.tw.WriteHeader(h); err != nil {
		return errs.Wrap("", errs.Other, err)
	}
	w.names[name] = true
	w.stats.Entries++
	if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeLink {
		w.stats.Files++
	}
	if body != nil {
		// Exactly Size bytes: a file growing while we read must not corrupt the stream.
		n, err := io.CopyBuffer(w.tw, io.LimitReader(body, h.Size), w.buf)
		if err == nil && n < h.Size {
			err = fmt.Errorf("%s shrank while being archived", p)
		}
		if err != nil {
			return errs.Wrap("", errs.Unavailable, err)
		}
		w.stats.Bytes += n
	}
	return nil
}

// Close finishes the tar stream and the compressed one.
func (w *Writer) Close() error {
	if err := w.tw.Close(); err != nil {
		w.zw.Close()
		return errs.Wrap("archive", errs.Other, err)
	}
	return errs.Wrap("archive", errs.Other, w.zw.Close())
}

func under(base, name string) bool {
	return base == "" || name == base || strings.HasPrefix(name, base+"/")
}

func displayBase(base string) string {
	if base == "" {
		return "the archive's root"
	}
	return base
}

func kindName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// splitBase is the part of name after base.
func splitBase(base, name string) string {
	if base == "" {
		return name
	}
	return strings.TrimPrefix(strings.TrimPrefix(name, base), "/")
}
