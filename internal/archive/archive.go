// Package archive is Conveyor's one tar codec (zstd, or gzip for the formats
// that are tar.gz by contract), with explicit rules.
//
// Writing (Writer.Add) walks host paths and streams them, never whole in
// memory:
//   - regular files, directories and symbolic links; other kinds (devices,
//     sockets, FIFOs) are skipped and reported;
//   - a symbolic link is kept only when its target, read lexically from
//     the link's place, stays inside the tree being added (its root); a link
//     that is absolute or leaves the root is skipped and reported, so an
//     archive never carries a link out of its tree;
//   - files sharing an inode are written once, the others as hard links to
//     the first name;
//   - permission bits (and setuid/setgid/sticky) and modification times are
//     kept; owners are not (entries are written as 0:0).
//
// Reading (Extract) streams into a destination through os.Root, so no path
// ever escapes it, even through links already on disk:
//   - names must be relative, clean, slash-separated and free of `..`;
//     absolute names or `..` refuse the whole archive (ErrUnsafe);
//   - a symbolic link whose target leaves the destination root (absolute,
//     or `..` past the root) is refused, the same rule as writing;
//   - a hard link must name an earlier regular file of the same archive;
//   - device, FIFO and other special entries are refused;
//   - an existing file at an entry's name is unlinked, then the entry is
//     created (O_EXCL): extraction never writes through an existing link;
//   - Limits bound the total of file bytes and the number of entries.
//
// Names are chosen by the caller (Writer.Add's name argument); Extract
// hands each name to a Mapper, which says under which destination root it
// goes: callers like the cache use this to store paths outside a
// workspace under names of their own (see internal/cache).
package archive

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"path"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/klauspost/compress/zstd"
)

// Limits bound what Extract writes.
type Limits struct {
	// MaxBytes is the most file content, in bytes, an archive may hold.
	MaxBytes int64
	// MaxEntries is the most entries (files, dirs, links) it may hold.
	MaxEntries int
}

// DefaultLimits suit caches and artifacts: 20 GiB, a million entries.
var DefaultLimits = Limits{MaxBytes: 20 << 30, MaxEntries: 1 << 20}

// ValidName reports whether name is a relative, clean, slash-separated
// path without `..` elements: the only names archives carry.
func ValidName(name string) bool {
	if name == "" || name == "." || strings.HasPrefix(name, "/") || strings.ContainsRune(name, 0) ||
		strings.ContainsRune(name, '\\') {
		return false
	}
	if path.Clean(name) != name {
		return false
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return false
		}
	}
	return true
}

// linkInside reports whether a symbolic link at name with target stays
// inside the root name is relative to (read lexically).
func linkInside(name, target string) bool {
	if target == "" || path.IsAbs(target) || strings.ContainsRune(target, 0) {
		return false
	}
	p := path.Join(path.Dir(name), target)
	return p != ".." && !strings.HasPrefix(p, "../")
}

// Magic numbers of the two compressions Extract reads.
var (
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	gzipMagic = []byte{0x1f, 0x8b}
)

// decompress opens r as zstd or gzip, by its first bytes.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := newDecoder(br)
		if err != nil {
			return nil, errs.Wrap("archive", errs.Invalid, err)
		}
		return zr.IOReadCloser(), nil
	case bytes.HasPrefix(head, gzipMagic):
		gr, err := gzip.NewReader(br)
		if err != nil {
			return nil, errs.Wrap("archive", errs.Invalid, err)
		}
		return gr, nil
	case err != nil && err != io.EOF:
		return nil, errs.Wrap("archive", errs.Unavailable, err)
	}
	return nil, errs.E("archive", errs.Invalid, "not a tar+zstd or tar.gz stream")
}

// newDecoder opens a zstd stream with a bounded window (a hostile stream
// must not make us allocate gigabytes).
func newDecoder(r io.Reader) (*zstd.Decoder, error) {
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(128<<20), zstd.WithDecoderLowmem(true))
}

// Kinds of errors Extract returns.
var (
	// ErrUnsafe marks an archive refused by the rules (names, links, kinds).
	ErrUnsafe = errs.E("archive", errs.Invalid, "unsafe archive")
)

func unsafe(format string, args ...any) error {
	return errs.E("archive", errs.Invalid, "unsafe archive: "+format, args...)
}

// headerName strips the trailing slash tar writers put on directories.
func headerName(h *tar.Header) string {
	return strings.TrimSuffix(h.Name, "/")
}
