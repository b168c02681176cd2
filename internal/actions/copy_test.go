package actions

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// CopyTreeFunc into a folder a job wrote to: an existing file or link at
// a target is replaced (never written through), keep filters entries, and
// a refused directory is skipped whole.
func TestCopyTreeFuncReplaces(t *testing.T) {
	src, dst, outside := t.TempDir(), t.TempDir(), t.TempDir()
	for name, content := range map[string]string{"a.txt": "new a", "bin/run": "#!/bin/sh\n", "skip/x": "x", "drop.txt": "d"} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(src, "bin/run"), 0o755)
	if err := os.Symlink("a.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dst, "a.txt")); err != nil { // planted by an earlier step
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "link"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := CopyTreeFunc(src, dst, func(rel string, d fs.DirEntry) bool { return rel != "skip" && rel != "drop.txt" })
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("written through a link: %q", b)
	}
	if fi, err := os.Lstat(filepath.Join(dst, "a.txt")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("a.txt is not a regular file: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "a.txt")); string(b) != "new a" {
		t.Errorf("a.txt = %q", b)
	}
	if l, err := os.Readlink(filepath.Join(dst, "link")); err != nil || l != "a.txt" {
		t.Errorf("link: %q %v", l, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "bin/run")); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("bin/run lost its exec bit: %v %v", fi, err)
	}
	for _, gone := range []string{"skip", "drop.txt"} {
		if _, err := os.Lstat(filepath.Join(dst, gone)); err == nil {
			t.Errorf("%s was copied", gone)
		}
	}
}
