package artifact

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Dir is a Store in a directory, for `conveyor run`: NAME.tar.gz holds an
// artifact's content and NAME.json its Info.
type Dir struct {
	path string
	// Max bounds an artifact's size (0: no limit).
	max int64

	mu sync.Mutex
}

var _ Store = (*Dir)(nil)

// NewDir returns a Store in dir (created at the first upload); max bounds
// an artifact's size (0: no limit).
func NewDir(dir string, max int64) *Dir { return &Dir{path: dir, max: max} }

// Path is the store's directory.
func (d *Dir) Path() string { return d.path }

func (d *Dir) Put(ctx context.Context, u Upload, r io.Reader) (*Info, error) {
	const op = "artifact.Put"
	if err := ValidName(u.Name); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(d.path, 0o755); err != nil {
		return nil, errs.Wrap(op, errs.Unavailable, err)
	}
	if !u.Overwrite {
		if _, err := os.Stat(d.content(u.Name)); err == nil {
			return nil, conflict(u.Name)
		}
	}
	tmp, err := os.CreateTemp(d.path, ".upload-*")
	if err != nil {
		return nil, errs.Wrap(op, errs.Unavailable, err)
	}
	defer os.Remove(tmp.Name())
	size, err := io.Copy(tmp, LimitReader(r, d.max))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if errs.KindOf(err) != errs.Other {
			return nil, err
		}
		return nil, errs.Wrap(op, errs.Unavailable, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := os.Stat(d.content(u.Name)); err == nil && !u.Overwrite {
		return nil, conflict(u.Name) // another job won the race
	}
	infos, _ := d.list()
	id := int64(1)
	for _, in := range infos {
		id = max(id, in.ID+1)
	}
	info := &Info{ID: id, Name: u.Name, Size: size, Job: u.Job, RetentionDays: u.RetentionDays, Created: time.Now().UTC()}
	meta, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(d.meta(u.Name), meta, 0o644); err != nil {
		return nil, errs.Wrap(op, errs.Unavailable, err)
	}
	if err := os.Rename(tmp.Name(), d.content(u.Name)); err != nil {
		return nil, errs.Wrap(op, errs.Unavailable, err)
	}
	return info, nil
}

func conflict(name string) error {
	return errs.E("artifact", errs.Conflict, "an artifact named %q already exists in this run: give it another name or set overwrite: true", name)
}

func (d *Dir) Open(_ context.Context, name string) (io.ReadCloser, error) {
	if err := ValidName(name); err != nil {
		return nil, errs.E("artifact.Open", errs.NotFound, "no artifact %q", name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := os.Open(d.content(name))
	if os.IsNotExist(err) {
		return nil, errs.E("artifact.Open", errs.NotFound, "no artifact %q", name)
	}
	return f, errs.Wrap("artifact.Open", errs.Unavailable, err)
}

func (d *Dir) List(context.Context) ([]Info, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.list()
}

func (d *Dir) list() ([]Info, error) {
	ents, err := os.ReadDir(d.path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, errs.Wrap("artifact.List", errs.Unavailable, err)
	}
	var out []Info
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".tar.gz")
		if !ok || ValidName(name) != nil {
			continue
		}
		var in Info
		if b, err := os.ReadFile(d.meta(name)); err != nil || json.Unmarshal(b, &in) != nil {
			continue
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (d *Dir) content(name string) string { return filepath.Join(d.path, name+".tar.gz") }
func (d *Dir) meta(name string) string    { return filepath.Join(d.path, name+".json") }
