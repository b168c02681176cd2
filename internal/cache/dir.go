package cache

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Dir keeps blobs as files under a directory. Writes go to a temporary
// file renamed into place, so readers never see half an object.
type Dir struct{ root string }

// NewDir uses (and makes) dir.
func NewDir(dir string) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, errs.Wrap("cache dir", errs.Unavailable, err)
	}
	return &Dir{root: dir}, nil
}

func (d *Dir) path(name string) (string, error) {
	if name == "" || strings.Contains(name, "..") || strings.HasPrefix(name, "/") {
		return "", errs.E("cache dir", errs.Invalid, "bad object name %q", name)
	}
	return filepath.Join(d.root, filepath.FromSlash(name)), nil
}

// Put implements Blobs.
func (d *Dir) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return errs.Wrap("cache dir", errs.Unavailable, err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".put-*")
	if err != nil {
		return errs.Wrap("cache dir", errs.Unavailable, err)
	}
	_, err = io.Copy(f, &ctxReader{ctx, r})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return errs.Wrap("cache dir", errs.KindOf(err), err)
	}
	return nil
}

// Get implements Blobs.
func (d *Dir) Get(_ context.Context, name string) (io.ReadCloser, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errs.E("cache dir", errs.NotFound, "no object %s", name)
	}
	if err != nil {
		return nil, errs.Wrap("cache dir", errs.Unavailable, err)
	}
	return f, nil
}

// Delete implements Blobs.
func (d *Dir) Delete(_ context.Context, name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errs.Wrap("cache dir", errs.Unavailable, err)
	}
	return nil
}

// List implements Blobs.
func (d *Dir) List(_ context.Context, prefix string) ([]string, error) {
	base := filepath.Join(d.root, filepath.FromSlash(prefix))
	var out []string
	err := filepath.WalkDir(base, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".put-") {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, errs.Wrap("cache dir", errs.Unavailable, err)
	}
	return out, nil
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, errs.Wrap("cache", errs.Canceled, err)
	}
	return c.r.Read(p)
}
