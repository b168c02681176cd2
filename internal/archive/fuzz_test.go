package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// FuzzExtract feeds arbitrary bytes (gzip and zstd among the seeds), and
// arbitrary tar streams wrapped in zstd, to Extract: it must never panic nor write beside its destination.
func FuzzExtract(f *testing.F) {
	f.Add(rawArchive(f, reg("a", "x"), &tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "a"}), false)
	f.Add(rawArchive(f, &tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o555}, reg("d/f", "y")), false)
	f.Add(rawArchive(f, reg("../x", "x")), false)
	f.Add(rawArchive(f, reg("a", "1"), &tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "a"}), false)
	f.Add(rawArchive(f, &tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "."}, reg("l/x", "x")), false)
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "p", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644})
	tw.Write([]byte("p"))
	tw.Close()
	f.Add(tb.Bytes(), true)
	var gzb bytes.Buffer // the tar.gz variant (artifacts, agents' source)
	gw := gzip.NewWriter(&gzb)
	gw.Write(tb.Bytes())
	gw.Close()
	f.Add(gzb.Bytes(), false)
	f.Fuzz(func(t *testing.T, data []byte, wrap bool) {
		if wrap { // treat data as a plain tar stream and compress it, to reach the tar layer
			var buf bytes.Buffer
			zw, _ := zstd.NewWriter(&buf)
			zw.Write(data)
			zw.Close()
			data = buf.Bytes()
		}
		parent := t.TempDir()
		dst := filepath.Join(parent, "dst")
		Extract(context.Background(), bytes.NewReader(data), In(dst), Limits{MaxBytes: 1 << 20, MaxEntries: 1000})
		ents, err := os.ReadDir(parent)
		if err != nil || len(ents) > 1 || (len(ents) == 1 && ents[0].Name() != "dst") {
			t.Fatalf("extraction wrote beside its destination: %v %v", ents, err)
		}
		makeWritable(dst)
	})
}

// makeWritable lets t.TempDir's cleanup remove read-only directories.
func makeWritable(dir string) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
}
