package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Artifacts are stored data (databases, run folders) and what earlier
// CLIs download: the format must read both ways across the move onto
// internal/archive.

func TestExtractReadsEarlierArtifacts(t *testing.T) {
	src := t.TempDir()
	write(t, src, map[string]string{"bin/tool": "#!/bin/sh\n", "doc/a.txt": "a", "doc/deep/b.txt": "bb"})
	os.Chmod(filepath.Join(src, "bin/tool"), 0o755)
	files, _, _, err := Find(Search{Patterns: "bin\ndoc", Base: src, Allowed: src})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := legacyPack(context.Background(), &buf, files); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	n, err := Extract(&buf, dst, DefaultLimits)
	if err != nil || n != 3 {
		t.Fatalf("extract: %d %v", n, err)
	}
	sameTree(t, src, dst, "bin/tool", "doc/a.txt", "doc/deep/b.txt")
}

func TestEarlierExtractReadsNewArtifacts(t *testing.T) {
	src := t.TempDir()
	write(t, src, map[string]string{"bin/tool": "#!/bin/sh\n", "doc/a.txt": "a"})
	os.Chmod(filepath.Join(src, "bin/tool"), 0o755)
	// Two names of one file: the new writer must not make it a hard link,
	// which the earlier extractor refuses.
	if err := os.Link(filepath.Join(src, "doc/a.txt"), filepath.Join(src, "doc/same.txt")); err != nil {
		t.Fatal(err)
	}
	files, _, _, err := Find(Search{Patterns: "bin\ndoc", Base: src, Allowed: src})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Pack(context.Background(), &buf, files); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	n, err := legacyExtract(&buf, dst, DefaultLimits)
	if err != nil || n != 3 {
		t.Fatalf("extract: %d %v", n, err)
	}
	sameTree(t, src, dst, "bin/tool", "doc/a.txt", "doc/same.txt")
}

// sameTree checks that names have the same content and mode in a and b.
func sameTree(t *testing.T, a, b string, names ...string) {
	t.Helper()
	for _, n := range names {
		pa, pb := filepath.Join(a, n), filepath.Join(b, n)
		ca, err1 := os.ReadFile(pa)
		cb, err2 := os.ReadFile(pb)
		if err1 != nil || err2 != nil || !bytes.Equal(ca, cb) {
			t.Errorf("%s: %q %v, want %q %v", n, cb, err2, ca, err1)
			continue
		}
		fa, _ := os.Stat(pa)
		fb, _ := os.Stat(pb)
		if fa.Mode().Perm() != fb.Mode().Perm() {
			t.Errorf("%s: mode %v, want %v", n, fb.Mode(), fa.Mode())
		}
	}
}

// legacyPack is Pack as it was before it used internal/archive, kept to
// prove that artifacts stored then still extract. It writes files to w as an artifact's content (tar.gz), each with its
// permission bits (the executable bit survives the round trip).
func legacyPack(ctx context.Context, w io.Writer, files []File) error {
	const op = "artifact.Pack"
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return errs.Wrap(op, errs.Canceled, err)
		}
		if err := legacyPackFile(tw, f); err != nil {
			return errs.Wrap(op, errs.Unavailable, err)
		}
	}
	if err := tw.Close(); err != nil {
		return errs.Wrap(op, errs.Unavailable, err)
	}
	return errs.Wrap(op, errs.Unavailable, gz.Close())
}

func legacyPackFile(tw *tar.Writer, f File) error {
	in, err := os.Open(f.Path)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	h := &tar.Header{Typeflag: tar.TypeReg, Name: f.Name, Mode: int64(fi.Mode().Perm()), Size: fi.Size(),
		ModTime: fi.ModTime(), Format: tar.FormatPAX}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	// A file that grows meanwhile is cut at its size when stat'ed; one
	// that shrinks fails the upload rather than storing a short file.
	if _, err := io.CopyN(tw, in, fi.Size()); err != nil {
		return errs.E("", errs.Other, "%s: %v", f.Path, err)
	}
	return nil
}

// legacyExtract is Extract before internal/archive (what earlier CLIs
// and agents run): new artifacts must still extract with it. It writes an artifact's content (tar.gz from r) into dir, created
// if needed, and returns the number of files written. Only regular files
// and directories are taken; an entry that is a link, a device, or whose
// name could leave dir (absolute, ..) fails the extraction, and nothing
// is ever written through a symbolic link that leaves dir. Existing
// files are replaced.
func legacyExtract(r io.Reader, dir string, lim Limits) (int, error) {
	const op = "artifact.Extract"
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, errs.Wrap(op, errs.Unavailable, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, errs.Wrap(op, errs.Unavailable, err)
	}
	defer root.Close()
	gz, err := gzip.NewReader(r)
	if err != nil {
		return 0, errs.E(op, errs.Invalid, "the artifact is not a tar.gz stream: %v", err)
	}
	tr := tar.NewReader(gz)
	var total int64
	files := 0
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return files, errs.E(op, errs.Invalid, "reading the artifact: %v", err)
		}
		if n >= lim.MaxEntries {
			return files, errs.E(op, errs.TooLarge, "the artifact has more than %d entries", lim.MaxEntries)
		}
		if err := CheckName(h.Name); err != nil {
			return files, err
		}
		name := path.Clean(strings.TrimSuffix(h.Name, "/"))
		if name == "." {
			continue
		}
		mode := fs.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			err = root.MkdirAll(name, mode|0o700)
		case tar.TypeReg:
			if h.Size < 0 {
				return files, errs.E(op, errs.Invalid, "entry %q: negative size", h.Name)
			}
			if total += h.Size; total > lim.MaxBytes {
				return files, errs.E(op, errs.TooLarge, "the artifact holds more than %s", FormatSize(lim.MaxBytes))
			}
			err = legacyWriteFile(root, name, mode, tr)
			files++
		default:
			return files, errs.E(op, errs.Invalid, "refusing the archive entry %q: only files and directories are taken (type %q)", h.Name, h.Typeflag)
		}
		if err != nil {
			return files, errs.Wrap(op, errs.Invalid, err)
		}
	}
}

func legacyWriteFile(root *os.Root, name string, mode fs.FileMode, r io.Reader) error {
	if d := path.Dir(name); d != "." {
		if err := root.MkdirAll(d, 0o777); err != nil {
			return err
		}
	}
	// Replace rather than write into: an existing symbolic link is
	// removed, never followed.
	if fi, err := root.Lstat(name); err == nil && !fi.IsDir() {
		if err := root.Remove(name); err != nil {
			return err
		}
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode|0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Chmod(mode | 0o600)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
