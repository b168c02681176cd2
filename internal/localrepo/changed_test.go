package localrepo

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func gitT(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func put(t *testing.T, dir, name, body string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestChangedFiles(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	ctx := context.Background()
	dir := t.TempDir()
	gitT(t, dir, "init", "-q", "-b", "trunk")
	put(t, dir, "a.txt", "a")
	put(t, dir, "docs/x.md", "x")
	gitT(t, dir, "add", ".")
	gitT(t, dir, "commit", "-qm", "root")
	first := gitT(t, dir, "rev-parse", "HEAD")
	check := func(name string, got []string, err error, want string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%s: %q, want %q", name, strings.Join(got, " "), want)
		}
	}
	got, err := ChangedFiles(ctx, dir, Range{})
	check("root commit", got, err, "a.txt docs/x.md")

	put(t, dir, "src/main.go", "package main")
	gitT(t, dir, "add", ".")
	gitT(t, dir, "commit", "-qm", "second")
	second := gitT(t, dir, "rev-parse", "HEAD")
	put(t, dir, "a.txt", "changed")
	put(t, dir, "new.txt", "untracked")
	put(t, dir, ".gitignore", "ignored.txt\n")
	put(t, dir, "ignored.txt", "x")
	got, err = ChangedFiles(ctx, dir, Range{})
	check("last commit and working tree", got, err, ".gitignore a.txt new.txt src/main.go")

	got, err = ChangedFiles(ctx, dir, Range{From: first, To: second})
	check("before..after", got, err, "src/main.go")
	got, err = ChangedFiles(ctx, dir, Range{From: second, To: first, MergeBase: true})
	check("base...head", got, err, "")
	got, err = ChangedFiles(ctx, dir, Range{From: strings.Repeat("0", 40), To: second})
	check("new branch falls back", got, err, ".gitignore a.txt new.txt src/main.go")

	if b := DefaultBranch(ctx, dir); b != "" {
		t.Errorf("DefaultBranch = %q without main, master or origin", b)
	}
	gitT(t, dir, "branch", "main")
	if b := DefaultBranch(ctx, dir); b != "main" {
		t.Errorf("DefaultBranch = %q, want main", b)
	}
	if _, err := ChangedFiles(ctx, t.TempDir(), Range{}); err == nil {
		t.Error("a folder that is not a repository: want an error")
	}
}
