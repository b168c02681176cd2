// Package tarball moves a directory tree as a gzipped tar stream: the
// server sends a run's source to agents with it. It is internal/archive's
// writer and extractor with the wire format agents of every version read
// (tar.gz, no hard links): Extract writes only inside its destination (no
// .., absolute paths, links that leave it or writes through existing
// links) and within size limits, since the stream crosses the network.
package tarball

import (
	"context"
	"io"
	"os"
	"path/filepath"

	"github.com/conveyor-ci/conveyor/internal/archive"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Write streams the tree under dir (regular files, directories and
// symbolic links that stay inside dir, with their modes) to w as tar.gz.
// Links that leave dir and special files are left out.
func Write(w io.Writer, dir string) error {
	const op = "tarball.Write"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return errs.Wrap(op, errs.Unavailable, err)
	}
	aw, err := archive.NewWriter(w, archive.WriterOptions{Gzip: true, CopyHardLinks: true})
	if err != nil {
		return errs.Wrap(op, errs.Other, err)
	}
	for _, e := range ents {
		if err := aw.Add(context.Background(), filepath.Join(dir, e.Name()), e.Name(), ""); err != nil {
			aw.Close()
			return errs.Wrap(op, errs.KindOf(err), err)
		}
	}
	return errs.Wrap(op, errs.Unavailable, aw.Close())
}

// Limits bound what Extract writes: internal/archive's.
type Limits = archive.Limits

// DefaultLimits suit a source checkout.
var DefaultLimits = Limits{MaxBytes: 4 << 30, MaxEntries: 500_000}

// Extract reads a tar.gz stream (or tar+zstd) from r into dir (created if
// needed), with internal/archive's rules.
func Extract(r io.Reader, dir string, lim Limits) error {
	const op = "tarball.Extract"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errs.Wrap(op, errs.Other, err)
	}
	_, err := archive.Extract(context.Background(), r, archive.In(dir), lim)
	return errs.Wrap(op, errs.KindOf(err), err)
}
