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

// gz makes a tar.gz of entries (name, type, link or content).
func gz(f *testing.F, entries ...tar.Header) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, h := range entries {
		body := []byte(h.Linkname)
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
			h.Linkname = ""
		}
		if err := tw.WriteHeader(&h); err != nil {
			f.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(body)
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// FuzzExtract: whatever the stream (it comes over the network to an
// agent), Extract does not panic, fails with a kind, and writes nothing
// outside its destination.
func FuzzExtract(f *testing.F) {
	f.Add(gz(f, tar.Header{Name: "a/b.txt", Typeflag: tar.TypeReg, Mode: 0o644, Linkname: "hello"}))
	f.Add(gz(f, tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644, Linkname: "x"}))
	f.Add(gz(f, tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: ".."},
		tar.Header{Name: "l/out", Typeflag: tar.TypeReg, Mode: 0o644, Linkname: "x"}))
	f.Add(gz(f, tar.Header{Name: "abs", Typeflag: tar.TypeSymlink, Linkname: "/tmp"},
		tar.Header{Name: "abs/out", Typeflag: tar.TypeReg, Mode: 0o644, Linkname: "x"}))
	f.Add(gz(f, tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755}, tar.Header{Name: "d", Typeflag: tar.TypeSymlink, Linkname: "d"}))
	f.Add([]byte("not gzip"))
	f.Fuzz(func(t *testing.T, data []byte) {
		outer := t.TempDir()
		dest := filepath.Join(outer, "dest")
		err := Extract(bytes.NewReader(data), dest, Limits{MaxBytes: 1 << 20, MaxEntries: 64})
		if err != nil && errs.KindOf(err) == errs.Other {
			t.Errorf("error without a kind: %v", err)
		}
		ents, rerr := os.ReadDir(outer)
		if rerr != nil {
			t.Fatal(rerr)
		}
		for _, e := range ents {
			if e.Name() != "dest" {
				t.Fatalf("Extract wrote %q outside its destination (err %v)", e.Name(), err)
			}
		}
	})
}
