// Package artifact holds what actions/upload-artifact and
// actions/download-artifact need: the Store of a run's artifacts (a
// directory for `conveyor run`, the database on the server, the agent API
// on agents), collecting the files a path: input names, and packing them
// to, and safely extracting them from, an artifact's content.
//
// An artifact's content is a gzip-compressed tar stream of regular files
// and directories (modes kept, no links), relative to the artifact's root.
package artifact

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Info describes a stored artifact.
type Info struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// Size is the stored (compressed) size in bytes.
	Size int64 `json:"size"`
	// Job is the job that uploaded it (its display name).
	Job           string    `json:"job"`
	RetentionDays int       `json:"retention_days,omitempty"`
	Created       time.Time `json:"created"`
}

// Upload is what Put stores besides the content.
type Upload struct {
	Name string
	Job  string
	// Overwrite replaces an artifact of the same name; without it the
	// name must be new in the run (upload-artifact v4).
	Overwrite     bool
	RetentionDays int
}

// Store keeps the artifacts of one run; every job of the run sees the same
// ones. Implementations are safe for concurrent use; an artifact is
// visible to Open and List only once Put has returned without error.
type Store interface {
	// Put stores the content r (tar.gz, see the package comment). It
	// fails with errs.Conflict when the name exists and !u.Overwrite, and
	// errs.TooLarge over the store's size limit; nothing is kept then.
	Put(ctx context.Context, u Upload, r io.Reader) (*Info, error)
	// Open returns the content of the artifact name (errs.NotFound when
	// there is none). The caller closes it.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// List returns the run's artifacts, by name.
	List(ctx context.Context) ([]Info, error)
}

// ValidName checks an artifact name as GitHub does: not empty, at most
// 255 bytes, none of " : < > | * ? \r \n \ / and not "." or "..". A valid
// name is safe as one path element.
func ValidName(name string) error {
	switch {
	case name == "" || strings.TrimSpace(name) == "":
		return errs.E("artifact", errs.Invalid, "the artifact name is empty")
	case len(name) > 255:
		return errs.E("artifact", errs.Invalid, "artifact name %.40q...: longer than 255 bytes", name)
	case name == "." || name == "..":
		return errs.E("artifact", errs.Invalid, "artifact name %q is not allowed", name)
	}
	if i := strings.IndexAny(name, "\":<>|*?\r\n\\/\x00"); i >= 0 {
		return errs.E("artifact", errs.Invalid, "artifact name %q: the character %q is not allowed (none of \" : < > | * ? \\r \\n \\ /)", name, name[i])
	}
	return nil
}

// LimitReader reads r and fails with an errs.TooLarge error once more than
// max bytes were read (max <= 0: no limit).
func LimitReader(r io.Reader, max int64) io.Reader {
	if max <= 0 {
		return r
	}
	return &limited{r: r, left: max}
}

type limited struct {
	r    io.Reader
	left int64
	max  int64
}

func (l *limited) Read(p []byte) (int, error) {
	if l.max == 0 {
		l.max = l.left
	}
	if l.left < 0 {
		return 0, TooLarge(l.max)
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, TooLarge(l.max)
	}
	return n, err
}

// TooLarge is the error of an artifact over max bytes.
func TooLarge(max int64) error {
	return errs.E("artifact", errs.TooLarge, "the artifact is larger than the limit of %s", FormatSize(max))
}

// FormatSize is n bytes for people (1.5 MiB).
func FormatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Linker is an optional Store ability: the URL where people download an
// artifact (upload-artifact's artifact-url output); "" when there is none.
type Linker interface {
	URL(name string) string
}
