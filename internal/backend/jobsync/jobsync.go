// Package jobsync keeps a sandbox's copy of the job folder and the host's
// alike, for sandboxes that cannot bind-mount it (a remote Docker engine, a
// Kubernetes pod), over a transport of tar streams.
package jobsync

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// PullTimeout bounds copying the job folder back after a step: shorter
// when the step was cancelled, so that a cancel stays prompt.
func PullTimeout(ctx context.Context) time.Duration {
	if ctx.Err() != nil {
		return 30 * time.Second
	}
	return 5 * time.Minute
}

// stamp is what a file looked like when the job folder was last in sync.
type stamp struct {
	size  int64
	mtime time.Time
	mode  fs.FileMode
	link  string
}

func stampOf(fi fs.FileInfo, link string) stamp {
	return stamp{size: fi.Size(), mtime: fi.ModTime(), mode: fi.Mode(), link: link}
}

// syncLimits bound what a pull writes on this machine: the container's
// files are the job's, not trusted.
const (
	syncMaxBytes = 8 << 30
	syncMaxFiles = 1_000_000
)

// Transport moves tar streams to and from the sandbox's copy of the job
// folder.
type Transport interface {
	// CopyIn extracts a tar stream into the sandbox's job folder.
	CopyIn(ctx context.Context, tar io.Reader) error
	// CopyOut returns a tar stream of the sandbox's job folder (entry
	// names relative to it).
	CopyOut(ctx context.Context) (io.ReadCloser, error)
}

// Sync keeps a sandbox's copy of the job folder (one the sandbox cannot
// bind-mount: a remote engine, a pod) and the host's job folder alike:
// Push before each step sends what changed on the host since the last sync
// (new or modified files, by size, mode and modification time); Pull after
// each step brings the sandbox's folder back (the whole folder is read, and
// only files that differ are written). Deletions are not propagated either
// way. A Sync is for one goroutine at a time.
type Sync struct {
	t       Transport
	op      string // error prefix, e.g. "docker"
	hostDir string
	seen    map[string]stamp // by slash path relative to hostDir
}

// New returns a Sync of hostDir over t; op prefixes its errors.
func New(op, hostDir string, t Transport) *Sync {
	return &Sync{t: t, op: op, hostDir: hostDir, seen: map[string]stamp{}}
}

// syncEntry is a file of the host folder that push sends.
type syncEntry struct {
	name, link string
	fi         fs.FileInfo
}

// scan stamps the host folder as it is (regular files, directories and
// symbolic links; sockets, fifos and devices are not synced) and returns
// the entries whose stamp differs from the last one seen.
func (j *Sync) scan() (map[string]stamp, []syncEntry, error) {
	var changed []syncEntry
	next := map[string]stamp{}
	err := filepath.WalkDir(j.hostDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(j.hostDir, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		case !fi.Mode().IsRegular() && !fi.IsDir():
			return nil // sockets, fifos, devices
		}
		name := filepath.ToSlash(rel)
		st := stampOf(fi, link)
		next[name] = st
		if old, ok := j.seen[name]; !ok || !sameStamp(old, st, fi.IsDir()) {
			changed = append(changed, syncEntry{name: name, link: link, fi: fi})
		}
		return nil
	})
	return next, changed, err
}

// Push copies the host's new and changed files into the sandbox, as a tar
// streamed to it (a fresh checkout may be large).
func (j *Sync) Push(ctx context.Context) error {
	op := j.op + ": copy the job folder in"
	next, changed, err := j.scan()
	if err != nil {
		return errs.Wrap(op, errs.Unavailable, err)
	}
	if len(changed) == 0 {
		j.seen = next
		return nil
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := func() error {
			for _, e := range changed {
				h, err := tar.FileInfoHeader(e.fi, e.link)
				if err != nil {
					return err
				}
				h.Name = e.name
				if e.fi.IsDir() {
					h.Name += "/"
				}
				h.Uname, h.Gname = "", "" // numeric owners, as a bind mount shows them
				h.Format = tar.FormatPAX  // modification times to the nanosecond
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
				if !e.fi.Mode().IsRegular() {
					continue
				}
				f, err := os.Open(filepath.Join(j.hostDir, filepath.FromSlash(e.name)))
				if err != nil {
					return err
				}
				_, err = io.CopyN(tw, f, e.fi.Size())
				f.Close()
				if err != nil {
					return err
				}
			}
			return tw.Close()
		}()
		pw.CloseWithError(err)
	}()
	err = j.t.CopyIn(ctx, pr)
	pr.CloseWithError(io.ErrClosedPipe) // stops the writer if the sandbox gave up
	if err != nil {
		return errs.Wrap(op, errs.KindOf(err), err)
	}
	j.seen = next
	return nil
}

// sameStamp: directories only need to exist (and keep their mode).
func sameStamp(a, b stamp, dir bool) bool {
	if dir {
		return a.mode == b.mode
	}
	return a.size == b.size && a.mtime.Equal(b.mtime) && a.mode == b.mode && a.link == b.link
}

// Pull copies the sandbox's job folder back to the host: entries that
// would leave the host folder (.., absolute names, writes through symbolic
// links) are refused, as are more than syncMaxBytes or syncMaxFiles.
func (j *Sync) Pull(ctx context.Context) error {
	op := j.op + ": copy the job folder out"
	rc, err := j.t.CopyOut(ctx)
	if err != nil {
		return errs.Wrap(op, errs.KindOf(err), err)
	}
	defer rc.Close()
	root, err := os.OpenRoot(j.hostDir)
	if err != nil {
		return errs.Wrap(op, errs.Other, err)
	}
	defer root.Close()
	tr := tar.NewReader(rc)
	var total int64
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errs.Wrap(op, errs.Unavailable, err)
		}
		if n >= syncMaxFiles {
			return errs.E(op, errs.TooLarge, "more than %d entries", syncMaxFiles)
		}
		name := path.Clean(strings.TrimSuffix(h.Name, "/"))
		if name == "." {
			continue // the folder itself
		}
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return errs.E(op, errs.Invalid, "entry %q leaves the job folder", h.Name)
		}
		if h.Typeflag == tar.TypeReg {
			if total += h.Size; total > syncMaxBytes {
				return errs.E(op, errs.TooLarge, "more than %d bytes", int64(syncMaxBytes))
			}
		}
		if err := j.extract(root, name, h, tr); err != nil {
			return errs.Wrap(op+" ("+name+")", errs.Invalid, err)
		}
	}
	// What is on the host now is in sync: the next push sends only what
	// the executor writes meanwhile.
	return j.restamp()
}

// extract writes one entry under root unless the host already has it.
func (j *Sync) extract(root *os.Root, name string, h *tar.Header, r io.Reader) error {
	mode := fs.FileMode(h.Mode).Perm()
	cur, err := root.Lstat(name)
	exists := err == nil
	switch h.Typeflag {
	case tar.TypeDir:
		if exists && cur.IsDir() {
			return nil
		}
		if exists {
			if err := root.RemoveAll(name); err != nil {
				return err
			}
		}
		return root.MkdirAll(name, mode|0o700)
	case tar.TypeSymlink:
		if exists && cur.Mode()&fs.ModeSymlink != 0 {
			if l, err := root.Readlink(name); err == nil && l == h.Linkname {
				return nil
			}
		}
		if exists {
			if err := root.RemoveAll(name); err != nil {
				return err
			}
		}
		if err := mkParent(root, name); err != nil {
			return err
		}
		return root.Symlink(h.Linkname, name)
	case tar.TypeReg:
		if exists && cur.Mode().IsRegular() && cur.Size() == h.Size {
			// Archives may carry whole seconds only: a file of the
			// same size is compared by content, and only its differing
			// rest is written.
			return syncSame(root, name, mode, h, r)
		}
		if exists && !cur.Mode().IsRegular() {
			if err := root.RemoveAll(name); err != nil {
				return err
			}
		}
		if err := mkParent(root, name); err != nil {
			return err
		}
		// os.Root: a symbolic link may not lead outside the folder.
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode|0o600)
		if err != nil {
			return err
		}
		_, err = io.CopyN(f, r, h.Size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return finishFile(root, name, mode, h, err)
	}
	return nil // hard links, devices: skipped
}

// syncSame brings a host file of the entry's size up to date: it reads
// both side by side and, from the first difference on, writes the entry's
// bytes over the file's.
func syncSame(root *os.Root, name string, mode fs.FileMode, h *tar.Header, r io.Reader) error {
	f, err := root.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	want := make([]byte, 64<<10)
	have := make([]byte, len(want))
	var off int64
	differ := false
	for off < h.Size && err == nil {
		n := int(min(int64(len(want)), h.Size-off))
		if _, err = io.ReadFull(r, want[:n]); err != nil {
			break
		}
		if !differ {
			if _, rerr := io.ReadFull(f, have[:n]); rerr != nil || !bytes.Equal(want[:n], have[:n]) {
				differ = true
			}
		}
		if differ {
			_, err = f.WriteAt(want[:n], off)
		}
		off += int64(n)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if !differ && err == nil {
		if cur, serr := root.Lstat(name); serr == nil && cur.Mode().Perm() == mode {
			return nil
		}
	}
	return finishFile(root, name, mode, h, err)
}

// finishFile gives a written file the entry's mode and time.
func finishFile(root *os.Root, name string, mode fs.FileMode, h *tar.Header, err error) error {
	if err == nil {
		err = root.Chmod(name, mode)
	}
	if err == nil {
		err = root.Chtimes(name, h.ModTime, h.ModTime)
	}
	return err
}

func mkParent(root *os.Root, name string) error {
	if d := path.Dir(name); d != "." {
		return root.MkdirAll(d, 0o755)
	}
	return nil
}

// restamp records the host folder as it is.
func (j *Sync) restamp() error {
	next, _, err := j.scan()
	if err != nil {
		return errs.Wrap(j.op+": job folder", errs.Other, err)
	}
	j.seen = next
	return nil
}
