package actions

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCopyTreeGivesTheJobItsOwnFiles(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "dist"), 0o755)
	os.WriteFile(filepath.Join(src, "dist", "index.js"), []byte("main"), 0o444)
	os.WriteFile(filepath.Join(src, "run.sh"), []byte("#!/bin/sh\n"), 0o555)
	os.Symlink("/etc/passwd", filepath.Join(src, "link"))
	dst := filepath.Join(t.TempDir(), "copy")
	if err := CopyTree(src, dst); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "dist", "index.js"), []byte("changed"), 0o644); err != nil {
		t.Fatalf("the copy is not writable: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(src, "dist", "index.js")); string(b) != "main" {
		t.Fatalf("writing the copy changed the source: %q", b)
	}
	if st, err := os.Stat(filepath.Join(dst, "run.sh")); err != nil || st.Mode().Perm()&0o111 == 0 {
		t.Fatalf("executable bit lost: %v %v", st.Mode(), err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "link")); err != nil || l != "/etc/passwd" {
		t.Fatalf("link: %q %v (want it copied as a link, not followed)", l, err)
	}
}
