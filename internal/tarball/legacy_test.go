package tarball

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// The source tarball is agent wire data: a new agent reads what an
// earlier server sends, and an earlier agent what a new server sends.

func sourceTree(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "a", "b"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "README.md"), []byte("hi\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "a", "b", "run.sh"), []byte("#!/bin/sh\necho ok\n"), 0o755))
	must(t, os.Link(filepath.Join(src, "README.md"), filepath.Join(src, "a", "README.md")))
	must(t, os.Symlink("b/run.sh", filepath.Join(src, "a", "link")))
	must(t, os.MkdirAll(filepath.Join(src, "empty"), 0o700))
	return src
}

func checkSource(t *testing.T, dst string) {
	t.Helper()
	for name, want := range map[string]string{"README.md": "hi\n", "a/README.md": "hi\n", "a/b/run.sh": "#!/bin/sh\necho ok\n", "a/link": "#!/bin/sh\necho ok\n"} {
		if b, err := os.ReadFile(filepath.Join(dst, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v", name, b, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dst, "a", "b", "run.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("run.sh: mode %v %v", fi.Mode(), err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "a", "link")); err != nil || l != "b/run.sh" {
		t.Errorf("link: %q %v", l, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "empty")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("empty dir: %v %v", fi, err)
	}
}

func TestExtractReadsEarlierServers(t *testing.T) {
	var buf bytes.Buffer
	must(t, legacyWrite(&buf, sourceTree(t)))
	dst := filepath.Join(t.TempDir(), "out")
	must(t, Extract(&buf, dst, DefaultLimits))
	checkSource(t, dst)
}

func TestEarlierAgentsReadWrite(t *testing.T) {
	var buf bytes.Buffer
	must(t, Write(&buf, sourceTree(t)))
	dst := filepath.Join(t.TempDir(), "out")
	must(t, legacyExtract(&buf, dst, DefaultLimits))
	checkSource(t, dst)
}

// legacyWrite is Write before internal/archive (what earlier servers
// send). It streams the tree under dir (regular files, directories and
// symbolic links, with their modes) to w as tar.gz.
func legacyWrite(w io.Writer, dir string) error {
	const op = "tarball.Write"
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		} else if !info.Mode().IsRegular() && !info.IsDir() {
			return nil // sockets, devices: not source
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			h.Name += "/"
		}
		h.Uname, h.Gname, h.Uid, h.Gid = "", "", 0, 0
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = gz.Close()
	}
	return errs.Wrap(op, errs.Unavailable, err)
}

// legacyExtract is Extract before internal/archive (what earlier agents
// run). It reads a tar.gz stream from r into dir (created if needed).
// Entries that would land outside dir, or be written through a symbolic
// link that leaves it, are refused; hard links and special files are
// skipped.
func legacyExtract(r io.Reader, dir string, lim Limits) error {
	const op = "tarball.Extract"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errs.Wrap(op, errs.Other, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return errs.Wrap(op, errs.Other, err)
	}
	defer root.Close()
	gz, err := gzip.NewReader(r)
	if err != nil {
		return errs.Wrap(op, errs.Invalid, err)
	}
	tr := tar.NewReader(gz)
	var total int64
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return errs.Wrap(op, errs.Invalid, err)
		}
		if n >= lim.MaxEntries {
			return errs.E(op, errs.TooLarge, "more than %d entries", lim.MaxEntries)
		}
		name := path.Clean(strings.TrimSuffix(h.Name, "/"))
		if name == "." || path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return errs.E(op, errs.Invalid, "entry %q leaves the destination", h.Name)
		}
		mode := fs.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			err = root.MkdirAll(name, mode|0o700)
		case tar.TypeSymlink:
			if err = legacyMkParent(root, name); err == nil {
				err = root.Symlink(h.Linkname, name)
			}
		case tar.TypeReg:
			total += h.Size
			if total > lim.MaxBytes {
				return errs.E(op, errs.TooLarge, "more than %d bytes", lim.MaxBytes)
			}
			err = legacyWriteFile(root, name, mode, tr)
		}
		if err != nil {
			return errs.Wrap(op, errs.Invalid, err)
		}
	}
}

func legacyMkParent(root *os.Root, name string) error {
	if d := path.Dir(name); d != "." {
		return root.MkdirAll(d, 0o755)
	}
	return nil
}

func legacyWriteFile(root *os.Root, name string, mode fs.FileMode, r io.Reader) error {
	if err := legacyMkParent(root, name); err != nil {
		return err
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode|0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
