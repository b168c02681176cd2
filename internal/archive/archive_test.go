package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/klauspost/compress/zstd"
)

func write(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func pack(t *testing.T, src, name, base string) ([]byte, []string) {
	t.Helper()
	var buf bytes.Buffer
	var warnings []string
	w, err := NewWriter(&buf, WriterOptions{Warn: func(s string) { warnings = append(warnings, s) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(context.Background(), src, name, base); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), warnings
}

func TestRoundTrip(t *testing.T) {
	src := t.TempDir()
	write(t, filepath.Join(src, "a.txt"), "alpha", 0o644)
	write(t, filepath.Join(src, "bin", "run"), "#!/bin/sh\n", 0o755)
	write(t, filepath.Join(src, "deep", "x", "y.txt"), "y", 0o600)
	if err := os.Symlink("../a.txt", filepath.Join(src, "bin", "a-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../etc/passwd", filepath.Join(src, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "a.txt"), filepath.Join(src, "hard.txt")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, warnings := pack(t, src, "tree", "tree")
	if got := strings.Join(warnings, "\n"); !strings.Contains(got, "escape") || !strings.Contains(got, "abs") || !strings.Contains(got, "FIFO") {
		t.Errorf("warnings = %q, want the two escaping links and the FIFO", got)
	}
	dst := t.TempDir()
	st, err := Extract(context.Background(), bytes.NewReader(data), In(dst), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if st.Bytes != int64(len("alpha")+len("#!/bin/sh\n")+1) {
		t.Errorf("bytes = %d", st.Bytes)
	}
	out := filepath.Join(dst, "tree")
	for name, want := range map[string]string{"a.txt": "alpha", "bin/run": "#!/bin/sh\n", "deep/x/y.txt": "y", "bin/a-link": "alpha", "hard.txt": "alpha"} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", name, b, err, want)
		}
	}
	for name, want := range map[string]os.FileMode{"bin/run": 0o755, "deep/x/y.txt": 0o600, "a.txt": 0o644} {
		fi, err := os.Stat(filepath.Join(out, name))
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s mode = %v, %v; want %v", name, fi.Mode(), err, want)
		}
	}
	if target, err := os.Readlink(filepath.Join(out, "bin", "a-link")); err != nil || target != "../a.txt" {
		t.Errorf("link = %q, %v", target, err)
	}
	a, _ := os.Stat(filepath.Join(out, "a.txt"))
	h, _ := os.Stat(filepath.Join(out, "hard.txt"))
	if !os.SameFile(a, h) {
		t.Error("hard link not kept")
	}
	for _, n := range []string{"escape", "abs", "fifo"} {
		if _, err := os.Lstat(filepath.Join(out, n)); err == nil {
			t.Errorf("%s was extracted", n)
		}
	}
}

// rawArchive builds a tar+zstd stream from headers (body = Linkname for regular files).
func rawArchive(t testing.TB, hs ...*tar.Header) []byte {
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, h := range hs {
		body := ""
		if h.Typeflag == tar.TypeReg {
			body, h.Linkname = h.Linkname, ""
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if body != "" {
			tw.Write([]byte(body))
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func reg(name, body string) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Linkname: body}
}

func TestExtractRefuses(t *testing.T) {
	cases := map[string][]*tar.Header{
		"absolute":         {reg("/tmp/x", "x")},
		"dotdot":           {reg("a/../../x", "x")},
		"dotdot-first":     {reg("../x", "x")},
		"link-out":         {{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "../../x"}},
		"link-abs":         {{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc"}},
		"hardlink-unknown": {{Name: "h", Typeflag: tar.TypeLink, Linkname: "etc/passwd"}},
		"device":           {{Name: "d", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}},
		"link-then-write":  {{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "a/../.."}, reg("l/x", "x")},
	}
	for name, hs := range cases {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "dst")
			_, err := Extract(context.Background(), bytes.NewReader(rawArchive(t, hs...)), In(dst), DefaultLimits)
			if errs.KindOf(err) != errs.Invalid {
				t.Fatalf("err = %v (kind %v), want invalid", err, errs.KindOf(err))
			}
			ents, _ := os.ReadDir(parent)
			if len(ents) > 1 || (len(ents) == 1 && ents[0].Name() != "dst") {
				t.Errorf("something was written beside the destination: %v", ents)
			}
		})
	}
}

func TestExtractLimits(t *testing.T) {
	data := rawArchive(t, reg("a", "12345"), reg("b", "67890"))
	_, err := Extract(context.Background(), bytes.NewReader(data), In(t.TempDir()), Limits{MaxBytes: 8})
	if errs.KindOf(err) != errs.TooLarge {
		t.Errorf("bytes: err = %v, want too large", err)
	}
	_, err = Extract(context.Background(), bytes.NewReader(data), In(t.TempDir()), Limits{MaxEntries: 1})
	if errs.KindOf(err) != errs.TooLarge {
		t.Errorf("entries: err = %v, want too large", err)
	}
}

// An existing link at an entry's name is replaced, never written through;
// an existing link to a directory outside is never followed.
func TestExtractReplacesNotWritesThrough(t *testing.T) {
	parent := t.TempDir()
	outside := filepath.Join(parent, "outside")
	write(t, outside, "keep", 0o644)
	if err := os.MkdirAll(filepath.Join(parent, "outdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(parent, "dst")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dst, "f")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dst, "g"), "old", 0o644)
	if _, err := Extract(context.Background(), bytes.NewReader(rawArchive(t, reg("f", "new"), reg("g", "new-g"))), In(dst), DefaultLimits); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "keep" {
		t.Errorf("wrote through the link: outside = %q", b)
	}
	fi, err := os.Lstat(filepath.Join(dst, "f"))
	if err != nil || !fi.Mode().IsRegular() {
		t.Errorf("f is %v, %v; want a regular file", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "g")); string(b) != "new-g" {
		t.Errorf("g = %q", b)
	}
	if err := os.Symlink(filepath.Join(parent, "outdir"), filepath.Join(dst, "d")); err != nil {
		t.Fatal(err)
	}
	_, err = Extract(context.Background(), bytes.NewReader(rawArchive(t, reg("d/x", "x"))), In(dst), DefaultLimits)
	if err == nil {
		t.Error("wrote through a directory link leaving the destination")
	}
	if _, err := os.Stat(filepath.Join(parent, "outdir", "x")); err == nil {
		t.Error("file written outside")
	}
}

func TestAddRefusesBadNames(t *testing.T) {
	w, _ := NewWriter(&bytes.Buffer{}, WriterOptions{})
	for _, n := range []string{"/abs", "../x", "a/../b", ""} {
		if err := w.Add(context.Background(), t.TempDir(), n, ""); errs.KindOf(err) != errs.Invalid {
			t.Errorf("Add(%q) = %v, want invalid", n, err)
		}
	}
}

// TestGzipAndCopies: the tar.gz variant (artifacts, agents' source) reads
// back through the same Extract, and CopyHardLinks writes no link entry.
func TestGzipAndCopies(t *testing.T) {
	src := t.TempDir()
	write(t, filepath.Join(src, "a.txt"), "alpha", 0o644)
	if err := os.Link(filepath.Join(src, "a.txt"), filepath.Join(src, "b.txt")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WriterOptions{Gzip: true, CopyHardLinks: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(context.Background(), src, "t", ""); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Files != 2 || st.Bytes != 10 {
		t.Errorf("stats %+v", st)
	}
	if !bytes.HasPrefix(buf.Bytes(), gzipMagic) {
		t.Fatalf("not gzip: % x", buf.Bytes()[:4])
	}
	gr, err := gzip.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gr)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Typeflag == tar.TypeLink {
			t.Errorf("%s is a hard link", h.Name)
		}
	}
	dst := t.TempDir()
	st, err := Extract(context.Background(), bytes.NewReader(buf.Bytes()), In(dst), DefaultLimits)
	if err != nil || st.Files != 2 {
		t.Fatalf("extract: %+v %v", st, err)
	}
	for _, n := range []string{"t/a.txt", "t/b.txt"} {
		if b, err := os.ReadFile(filepath.Join(dst, n)); err != nil || string(b) != "alpha" {
			t.Errorf("%s: %q %v", n, b, err)
		}
	}
	if _, err := Extract(context.Background(), strings.NewReader("plain text"), In(dst), DefaultLimits); !errs.Is(err, errs.Invalid) {
		t.Errorf("neither zstd nor gzip: %v", err)
	}
}
