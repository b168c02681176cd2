package jobsync

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// extract is what a pull does with each entry of the container's job
// folder: it must stay inside the host folder and write only what differs.
func TestSyncExtract(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	j := &Sync{hostDir: dir}
	put := func(name string, typ byte, body, link string, mtime time.Time) error {
		h := &tar.Header{Name: name, Typeflag: typ, Mode: 0o644, Size: int64(len(body)), Linkname: link, ModTime: mtime}
		if typ == tar.TypeDir {
			h.Mode = 0o755
		}
		return j.extract(root, name, h, strings.NewReader(body))
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.WriteFile(filepath.Join(dir, "same"), []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(dir, "same"), old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "changed"), bytes.Repeat([]byte("a"), 200_000), 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	for _, e := range []struct {
		name, body, link string
		typ              byte
	}{
		{name: "same", body: "abc", typ: tar.TypeReg},
		{name: "changed", body: strings.Repeat("a", 150_000) + strings.Repeat("b", 50_000), typ: tar.TypeReg},
		{name: "new/dir", typ: tar.TypeDir},
		{name: "new/dir/f", body: "new", typ: tar.TypeReg},
		{name: "link", link: "new/dir/f", typ: tar.TypeSymlink},
		{name: "link", link: "new/dir/f", typ: tar.TypeSymlink}, // twice: no error
	} {
		if err := put(e.name, e.typ, e.body, e.link, now); err != nil {
			t.Fatalf("%s: %v", e.name, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "same")); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("unchanged file was written again: %v %v", fi.ModTime(), err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "changed")); string(b) != strings.Repeat("a", 150_000)+strings.Repeat("b", 50_000) {
		t.Errorf("changed file: %d bytes, tail %q", len(b), b[len(b)-3:])
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "link")); string(b) != "new" {
		t.Errorf("link: %q", b)
	}
	// A link out of the folder may be made, but nothing is written
	// through it; neither .. nor absolute names get that far (pull).
	if err := put("esc", tar.TypeSymlink, "", outside, now); err != nil {
		t.Fatal(err)
	}
	if err := put("esc/x", tar.TypeReg, "pwned", "", now); err == nil {
		t.Error("wrote through a link that leaves the folder")
	}
	if _, err := os.Stat(filepath.Join(outside, "x")); !os.IsNotExist(err) {
		t.Errorf("file outside the folder: %v", err)
	}
}
