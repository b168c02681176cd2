package tarball

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

func TestRoundTrip(t *testing.T) {
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "a", "b"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "README.md"), []byte("hi\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "a", "b", "run.sh"), []byte("#!/bin/sh\necho ok\n"), 0o755))
	must(t, os.Symlink("a/b/run.sh", filepath.Join(src, "link")))
	must(t, os.MkdirAll(filepath.Join(src, "empty"), 0o755))

	var buf bytes.Buffer
	must(t, Write(&buf, src))
	dst := filepath.Join(t.TempDir(), "out")
	must(t, Extract(&buf, dst, DefaultLimits))

	if b, err := os.ReadFile(filepath.Join(dst, "README.md")); err != nil || string(b) != "hi\n" {
		t.Errorf("README.md: %q %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "a", "b", "run.sh")); err != nil || fi.Mode()&0o100 == 0 {
		t.Errorf("run.sh lost its exec bit: %v %v", fi.Mode(), err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "link")); err != nil || l != "a/b/run.sh" {
		t.Errorf("link: %q %v", l, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "empty")); err != nil || !fi.IsDir() {
		t.Errorf("empty dir: %v", err)
	}
}

type entry struct {
	name, link, body string
	typ              byte
}

func tarGz(t *testing.T, entries ...entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		must(t, tw.WriteHeader(h))
		if e.typ == tar.TypeReg {
			_, err := tw.Write([]byte(e.body))
			must(t, err)
		}
	}
	must(t, tw.Close())
	must(t, gz.Close())
	return &buf
}

func TestExtractStaysInside(t *testing.T) {
	outside := t.TempDir()
	cases := map[string][]entry{
		"dot-dot":  {{name: "../escape", body: "x", typ: tar.TypeReg}},
		"absolute": {{name: filepath.Join(outside, "escape"), body: "x", typ: tar.TypeReg}},
		"through a symlink": {
			{name: "out", link: outside, typ: tar.TypeSymlink},
			{name: "out/escape", body: "x", typ: tar.TypeReg},
		},
		"over a symlink": {
			{name: "f", link: filepath.Join(outside, "escape"), typ: tar.TypeSymlink},
			{name: "f", body: "x", typ: tar.TypeReg},
		},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			err := Extract(tarGz(t, entries...), t.TempDir(), DefaultLimits)
			if err == nil {
				t.Error("extracted")
			}
			if _, err := os.Stat(filepath.Join(outside, "escape")); err == nil {
				t.Fatal("a file was written outside the destination")
			}
		})
	}
}

func TestExtractLimits(t *testing.T) {
	a := tarGz(t, entry{name: "big", body: "0123456789", typ: tar.TypeReg})
	if err := Extract(a, t.TempDir(), Limits{MaxBytes: 5, MaxEntries: 10}); !errs.Is(err, errs.TooLarge) {
		t.Errorf("bytes: %v", err)
	}
	a = tarGz(t, entry{name: "a", body: "1", typ: tar.TypeReg}, entry{name: "b", body: "2", typ: tar.TypeReg})
	if err := Extract(a, t.TempDir(), Limits{MaxBytes: 100, MaxEntries: 1}); !errs.Is(err, errs.TooLarge) {
		t.Errorf("files: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
