package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

func write(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func names(files []File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Name)
	}
	return out
}

func TestFind(t *testing.T) {
	job := t.TempDir()
	ws := filepath.Join(job, "workspace")
	write(t, ws, map[string]string{
		"a/b/c.txt": "", "a/b/d.log": "", "a/e.txt": "", "a/.hid/x.txt": "", "a/.f": "",
		"top.txt": "", "other/z.txt": "",
	})
	write(t, job, map[string]string{"temp/t.txt": ""})
	abs := func(p string) (string, bool) {
		if strings.HasPrefix(p, "/sandbox/") {
			return filepath.Join(job, strings.TrimPrefix(p, "/sandbox/")), true
		}
		return "", false
	}
	for _, tc := range []struct {
		patterns string
		hidden   bool
		want     []string
		root     string
	}{
		{"a", false, []string{"b/c.txt", "b/d.log", "e.txt"}, "a"},
		{"a", true, []string{".f", ".hid/x.txt", "b/c.txt", "b/d.log", "e.txt"}, "a"},
		{"a/**/*.txt", false, []string{"b/c.txt", "e.txt"}, "a"},
		{"a/**\n!a/b", false, []string{"e.txt"}, "a"},
		{"a/**\n!**/*.log\n# comment", false, []string{"b/c.txt", "e.txt"}, "a"},
		{"top.txt", false, []string{"top.txt"}, "."},
		{"a/b/c.txt\nother/z.txt", false, []string{"a/b/c.txt", "other/z.txt"}, "."},
		{"a/b/*.txt\na/e.txt", false, []string{"b/c.txt", "e.txt"}, "a"},
		{"/sandbox/temp/t.txt\n/sandbox/workspace/top.txt", false, []string{"temp/t.txt", "workspace/top.txt"}, ".."},
		{"missing/*", false, nil, ""},
	} {
		files, root, _, err := Find(Search{Patterns: tc.patterns, Base: ws, Allowed: job, Abs: abs, IncludeHidden: tc.hidden})
		if err != nil {
			t.Fatalf("%q: %v", tc.patterns, err)
		}
		if !reflect.DeepEqual(names(files), tc.want) {
			t.Errorf("%q: files %q, want %q", tc.patterns, names(files), tc.want)
		}
		if tc.root != "" && root != filepath.Join(ws, tc.root) {
			t.Errorf("%q: root %s, want %s", tc.patterns, root, filepath.Join(ws, tc.root))
		}
	}
	if _, _, _, err := Find(Search{Patterns: "/etc/passwd", Base: ws, Allowed: job, Abs: abs}); !errs.Is(err, errs.Invalid) {
		t.Errorf("a path outside the job directory: %v", err)
	}
	if _, _, _, err := Find(Search{Patterns: "!x", Base: ws, Allowed: job, Abs: abs}); !errs.Is(err, errs.Invalid) {
		t.Errorf("only exclusions: %v", err)
	}
}

func TestFindSymlinks(t *testing.T) {
	job := t.TempDir()
	outside := t.TempDir()
	ws := filepath.Join(job, "workspace")
	write(t, ws, map[string]string{"d/real.txt": "in"})
	write(t, outside, map[string]string{"secret.txt": "s"})
	os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(ws, "d", "leak.txt"))
	os.Symlink("real.txt", filepath.Join(ws, "d", "alias.txt"))
	os.Symlink(outside, filepath.Join(ws, "d", "outdir"))
	files, _, warnings, err := Find(Search{Patterns: "d", Base: ws, Allowed: job})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(files); !reflect.DeepEqual(got, []string{"alias.txt", "real.txt"}) {
		t.Fatalf("files %q (warnings %q)", got, warnings)
	}
	if len(warnings) != 2 {
		t.Errorf("warnings: %q", warnings)
	}
}

func TestPackExtractKeepsModes(t *testing.T) {
	src := t.TempDir()
	write(t, src, map[string]string{"bin/tool": "#!/bin/sh\n", "doc/a.txt": "a"})
	os.Chmod(filepath.Join(src, "bin/tool"), 0o755)
	files, _, _, err := Find(Search{Patterns: "bin\ndoc", Base: src, Allowed: src})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Pack(context.Background(), &buf, files); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	// An existing link in the destination is replaced, never written through.
	outside := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(outside, []byte("keep"), 0o644)
	os.MkdirAll(filepath.Join(dst, "doc"), 0o755)
	os.Symlink(outside, filepath.Join(dst, "doc", "a.txt"))
	n, err := Extract(&buf, dst, DefaultLimits)
	if err != nil || n != 2 {
		t.Fatalf("extract: %d %v", n, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "bin/tool")); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("exec bit lost: %v %v", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "doc/a.txt")); string(b) != "a" {
		t.Errorf("content %q", b)
	}
	if b, _ := os.ReadFile(outside); string(b) != "keep" {
		t.Errorf("written through a link: %q", b)
	}
}

// tarGz builds a tar.gz of one entry.
func tarGz(name string, typ byte, body []byte, link string) []byte {
	b, _ := archiveOK(name, typ, body, link)
	return b
}

// archiveOK is tarGz, and whether the entry could be written at all.
func archiveOK(name string, typ byte, body []byte, link string) ([]byte, bool) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	h := &tar.Header{Typeflag: typ, Name: name, Mode: 0o644, Linkname: link}
	if typ == tar.TypeReg {
		h.Size = int64(len(body))
	}
	ok := tw.WriteHeader(h) == nil
	if ok && typ == tar.TypeReg {
		tw.Write(body)
	}
	tw.Close()
	gz.Close()
	return buf.Bytes(), ok
}

func TestExtractRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  byte
		link string
		kind errs.Kind
	}{
		{"../x", tar.TypeReg, "", errs.Invalid},
		{"a/../../x", tar.TypeReg, "", errs.Invalid},
		{"/etc/x", tar.TypeReg, "", errs.Invalid},
		{"ln", tar.TypeSymlink, "/etc/passwd", errs.Invalid},
		{"hard", tar.TypeLink, "x", errs.Invalid},
	} {
		parent := t.TempDir()
		dst := filepath.Join(parent, "dst")
		_, err := Extract(bytes.NewReader(tarGz(tc.name, tc.typ, []byte("bad"), tc.link)), dst, DefaultLimits)
		if errs.KindOf(err) != tc.kind {
			t.Errorf("%q: %v", tc.name, err)
		}
		ents, _ := os.ReadDir(parent)
		if len(ents) != 1 {
			t.Errorf("%q: wrote beside the destination: %v", tc.name, ents)
		}
	}
	_, err := Extract(bytes.NewReader(tarGz("big", tar.TypeReg, make([]byte, 100), "")), t.TempDir(), Limits{MaxBytes: 10, MaxEntries: 10})
	if !errs.Is(err, errs.TooLarge) {
		t.Errorf("over the limit: %v", err)
	}
	if _, err := Extract(strings.NewReader("not gzip"), t.TempDir(), DefaultLimits); !errs.Is(err, errs.Invalid) {
		t.Errorf("garbage: %v", err)
	}
}

func TestDirStore(t *testing.T) {
	ctx := context.Background()
	d := NewDir(t.TempDir(), 10)
	if _, err := d.Put(ctx, Upload{Name: "a", Job: "build"}, strings.NewReader("12345")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Put(ctx, Upload{Name: "a"}, strings.NewReader("x")); !errs.Is(err, errs.Conflict) {
		t.Errorf("same name: %v", err)
	}
	if _, err := d.Put(ctx, Upload{Name: "a", Overwrite: true}, strings.NewReader("xy")); err != nil {
		t.Errorf("overwrite: %v", err)
	}
	if _, err := d.Put(ctx, Upload{Name: "b"}, strings.NewReader("01234567890")); !errs.Is(err, errs.TooLarge) {
		t.Errorf("too large: %v", err)
	}
	if _, err := d.Put(ctx, Upload{Name: "a/b"}, strings.NewReader("")); !errs.Is(err, errs.Invalid) {
		t.Errorf("bad name: %v", err)
	}
	list, _ := d.List(ctx)
	if len(list) != 1 || list[0].Name != "a" || list[0].Size != 2 {
		t.Fatalf("list: %+v", list)
	}
	rc, err := d.Open(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "xy" {
		t.Errorf("content %q", b)
	}
	if _, err := d.Open(ctx, "b"); !errs.Is(err, errs.NotFound) {
		t.Errorf("missing: %v", err)
	}
}

func TestLimitReader(t *testing.T) {
	if b, err := io.ReadAll(LimitReader(strings.NewReader("abc"), 3)); err != nil || string(b) != "abc" {
		t.Errorf("at the limit: %q %v", b, err)
	}
	if _, err := io.ReadAll(LimitReader(strings.NewReader("abcd"), 3)); !errs.Is(err, errs.TooLarge) {
		t.Errorf("over: %v", err)
	}
}

// FuzzExtract: whatever the archive, nothing is written outside the
// destination, and a clean file name always lands where it says.
func FuzzExtract(f *testing.F) {
	for _, s := range []struct {
		name string
		typ  byte
	}{{"a.txt", tar.TypeReg}, {"../a", tar.TypeReg}, {"/abs", tar.TypeReg}, {"d/", tar.TypeDir},
		{"l", tar.TypeSymlink}, {"a/./b/../c", tar.TypeReg}, {"..", tar.TypeDir}} {
		f.Add(s.name, s.typ, []byte("data"), false)
	}
	f.Add("", byte(0), []byte("\x1f\x8b\x08\x00garbage"), true)
	f.Fuzz(func(t *testing.T, name string, typ byte, body []byte, raw bool) {
		data, written := body, false
		if !raw {
			data, written = archiveOK(name, typ, body, "../../target")
		}
		parent := t.TempDir()
		dst := filepath.Join(parent, "dst")
		_, err := Extract(bytes.NewReader(data), dst, Limits{MaxBytes: 1 << 20, MaxEntries: 100})
		ents, _ := os.ReadDir(parent)
		if len(ents) != 1 || ents[0].Name() != "dst" {
			t.Fatalf("entry %q wrote beside the destination: %v", name, ents)
		}
		filepath.Walk(dst, func(p string, fi os.FileInfo, _ error) error {
			if fi == nil || fi.Mode()&os.ModeSymlink == 0 {
				return nil
			}
			// A link is kept only when it resolves inside the destination.
			target, _ := os.Readlink(p)
			if rel, err := filepath.Rel(dst, filepath.Join(filepath.Dir(p), target)); err != nil || filepath.IsAbs(target) || rel == ".." || strings.HasPrefix(rel, "../") {
				t.Fatalf("entry %q made a link %s -> %s that leaves the destination", name, p, target)
			}
			return nil
		})
		if err == nil && written && typ == tar.TypeReg && strings.Trim(name, "/.") != "" {
			if _, serr := os.Lstat(filepath.Join(dst, filepath.FromSlash(name))); serr != nil {
				t.Fatalf("entry %q extracted without error but not found: %v", name, serr)
			}
		}
	})
}
