package artifact

import (
	"context"
	"io"
	"os"
	"path"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/archive"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Pack writes files to w as an artifact's content (tar.gz, see the package
// comment), each with its permission bits (the executable bit survives the
// round trip), through internal/archive's writer. A file reached by two
// names is written twice: readers of earlier versions take no hard links.
func Pack(ctx context.Context, w io.Writer, files []File) error {
	const op = "artifact.Pack"
	aw, err := archive.NewWriter(w, archive.WriterOptions{Gzip: true, CopyHardLinks: true})
	if err != nil {
		return errs.Wrap(op, errs.Other, err)
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			aw.Close()
			return errs.Wrap(op, errs.Canceled, err)
		}
		if err := CheckName(f.Name); err != nil {
			aw.Close()
			return err
		}
		if err := aw.Add(ctx, f.Path, f.Name, ""); err != nil {
			aw.Close()
			return errs.Wrap(op, errs.KindOf(err), err)
		}
	}
	return errs.Wrap(op, errs.Unavailable, aw.Close())
}

// Limits bound what Extract writes: internal/archive's.
type Limits = archive.Limits

// DefaultLimits bound an artifact's extraction.
var DefaultLimits = Limits{MaxBytes: 16 << 30, MaxEntries: 1_000_000}

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

// Extract writes an artifact's content (tar.gz from r; tar+zstd is read
// too) into dir, created if needed, and returns the number of files
// written, with internal/archive's rules: an entry whose name could leave
// dir (absolute, ..), a symbolic link that leaves it, a device or a FIFO
// fails the extraction; nothing is ever written through an existing
// link; existing files are replaced.
func Extract(r io.Reader, dir string, lim Limits) (int, error) {
	const op = "artifact.Extract"
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, errs.Wrap(op, errs.Unavailable, err)
	}
	st, err := archive.Extract(context.Background(), r, archive.In(dir), lim)
	if err != nil {
		return st.Files, errs.Wrap(op, errs.KindOf(err), err)
	}
	return st.Files, nil
}
