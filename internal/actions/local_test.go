package actions

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

func TestLocalPath(t *testing.T) {
	for _, c := range []struct {
		uses, want string
		kind       errs.Kind
	}{
		{"./.github/actions/x", ".github/actions/x", 0},
		{"./a/../b", "b", 0},
		{"./", ".", 0},
		{"./a//b/./c/", "a/b/c", 0},
		{"./../x", "", errs.Invalid},
		{"./a/../../x", "", errs.Invalid},
		{"./../../../../etc/passwd", "", errs.Invalid},
		{"../sibling", "", errs.Invalid},
		{"./..", "", errs.Invalid},
		{"./a\\..\\..\\x", "", errs.Invalid},
		{"./a\x00b", "", errs.Invalid},
		{"./x.yml@v1", "", errs.Invalid},
		{"/etc/passwd", "", errs.Invalid},
		{"owner/repo@v1", "", errs.Invalid},
	} {
		got, err := LocalPath(c.uses)
		if c.kind != 0 {
			if errs.KindOf(err) != c.kind {
				t.Errorf("LocalPath(%q) = %q, %v; want kind %v", c.uses, got, err, c.kind)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("LocalPath(%q) = %q, %v; want %q", c.uses, got, err, c.want)
		}
	}
}

// repo makes a repository folder beside a secret file outside it, with
// links in and out.
func repo(t *testing.T) (root, secret string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "repo")
	secret = filepath.Join(base, "secret.txt")
	must(t, os.WriteFile(secret, []byte("TOP-SECRET"), 0o600))
	must(t, os.MkdirAll(filepath.Join(root, "act"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "act", "action.yml"), []byte("runs: {using: composite, steps: []}\n"), 0o644))
	must(t, os.MkdirAll(filepath.Join(root, ".github", "workflows"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, ".github", "workflows", "call.yml"), []byte("on: workflow_call\n"), 0o644))
	must(t, os.Symlink("act", filepath.Join(root, "inside-link")))
	must(t, os.Symlink(base, filepath.Join(root, "outside-dir")))
	must(t, os.Symlink(secret, filepath.Join(root, "outside-file.yml")))
	must(t, os.Symlink("/dev/zero", filepath.Join(root, "zero.yml")))
	must(t, os.Symlink("/etc", filepath.Join(root, "etc")))
	return root, secret
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestLocalDirConfined(t *testing.T) {
	root, _ := repo(t)
	real, _ := filepath.EvalSymlinks(root)
	// A link out and back in lands inside: what counts is where it ends.
	for uses, want := range map[string]string{"./act": "act", "./inside-link": "act", "./act/": "act", "./outside-dir/repo/act": "act"} {
		got, err := LocalDir(root, uses)
		if err != nil || got != filepath.Join(real, want) {
			t.Errorf("LocalDir(%q) = %q, %v; want %s", uses, got, err, want)
		}
	}
	for uses, kind := range map[string]errs.Kind{
		"./outside-dir":    errs.Invalid,
		"./etc":            errs.Invalid,
		"./../repo/act":    errs.Invalid,
		"./missing":        errs.NotFound,
		"./act/action.yml": errs.Invalid, // a file, not an action folder
	} {
		if got, err := LocalDir(root, uses); errs.KindOf(err) != kind {
			t.Errorf("LocalDir(%q) = %q, %v; want kind %v", uses, got, err, kind)
		}
	}
}

func TestReadFileConfinedAndLimited(t *testing.T) {
	root, _ := repo(t)
	if b, err := ReadLocal(root, "./.github/workflows/call.yml"); err != nil || string(b) != "on: workflow_call\n" {
		t.Fatalf("ReadLocal(call.yml) = %q, %v", b, err)
	}
	// A FIFO would block a plain open until a writer comes.
	must(t, syscall.Mkfifo(filepath.Join(root, "fifo.yml"), 0o644))
	// Sparse: 2 MiB on paper, no disk.
	big, err := os.Create(filepath.Join(root, "big.yml"))
	must(t, err)
	must(t, big.Truncate(2*MaxFileSize))
	big.Close()

	for uses, kind := range map[string]errs.Kind{
		"./outside-file.yml":       errs.Invalid,
		"./zero.yml":               errs.Invalid,
		"./etc/passwd":             errs.Invalid,
		"./../secret.txt":          errs.Invalid,
		"./../../../../etc/passwd": errs.Invalid,
		"./../../dev/zero":         errs.Invalid,
		"./fifo.yml":               errs.Invalid,
		"./big.yml":                errs.TooLarge,
		"./act":                    errs.Invalid, // a folder
		"./nothing.yml":            errs.NotFound,
	} {
		done := make(chan struct{})
		var b []byte
		var err error
		go func() { b, err = ReadLocal(root, uses); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("ReadLocal(%q) blocked", uses)
		}
		if errs.KindOf(err) != kind || b != nil {
			t.Errorf("ReadLocal(%q) = %d bytes, %v; want kind %v", uses, len(b), err, kind)
		}
		if err != nil && strings.Contains(err.Error(), "TOP-SECRET") {
			t.Errorf("ReadLocal(%q) error shows the secret: %v", uses, err)
		}
	}
}

func TestReadActionFile(t *testing.T) {
	root, _ := repo(t)
	f, err := ReadActionFile(root, "inside-link")
	if err != nil || f.Name != "action.yml" || !strings.Contains(string(f.Data), "composite") {
		t.Fatalf("ReadActionFile(inside-link) = %+v, %v", f, err)
	}
	must(t, os.MkdirAll(filepath.Join(root, "evil"), 0o755))
	must(t, os.Symlink("/etc/passwd", filepath.Join(root, "evil", "action.yml")))
	if f, err := ReadActionFile(root, "evil"); errs.KindOf(err) != errs.Invalid {
		t.Errorf("ReadActionFile(evil) = %+v, %v; want a refusal", f, err)
	}
	if f, err := ReadActionFile(root, "missing"); errs.KindOf(err) != errs.NotFound {
		t.Errorf("ReadActionFile(missing) = %+v, %v; want NotFound", f, err)
	}
}
