package localrepo

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRepoFromURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://github.com/nektos/act.git": "nektos/act",
		"git@github.com:owner/repo.git":     "owner/repo",
		"ssh://git@host:22/a/b":             "a/b",
		"":                                  "",
		"https://host":                      "",
	} {
		if got := RepoFromURL(in); got != want {
			t.Errorf("RepoFromURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDotenv(t *testing.T) {
	in := "# c\nA=1\nexport B = two words # comment\nC='x y'\nD=\"l1\\nl2\"\nE=\"multi\nline\"\n"
	got, err := ReadDotenv(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "1", "B": "two words", "C": "x y", "D": "l1\nl2", "E": "multi\nline"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, err := ReadDotenv(strings.NewReader("NOEQ\n")); err == nil {
		t.Error("want error for a line without =")
	}
	if _, err := ReadDotenv(strings.NewReader("A=\"open\n")); err == nil {
		t.Error("want error for an unterminated quote")
	}
}

func TestDiscoverAndWorkflowFiles(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	run("init", "-q", "-b", "main")
	run("config", "user.name", "Ada")
	run("remote", "add", "origin", "https://example.com/acme/widgets.git")
	os.MkdirAll(filepath.Join(dir, ".github", "workflows"), 0o755)
	os.WriteFile(filepath.Join(dir, ".github", "workflows", "ci.yml"), []byte("on: push\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ".github", "workflows", "notes.txt"), []byte("x"), 0o644)
	run("add", ".")
	run("commit", "-qm", "init")
	info := Discover(context.Background(), dir)
	if len(info.SHA) != 40 || info.Ref != "refs/heads/main" || info.Repository != "acme/widgets" || info.Actor != "Ada" {
		t.Fatalf("Discover = %+v", info)
	}
	files, err := WorkflowFiles(dir, nil)
	if err != nil || len(files) != 1 || filepath.Base(files[0]) != "ci.yml" {
		t.Fatalf("WorkflowFiles = %v, %v", files, err)
	}
	if _, err := WorkflowFiles(dir, []string{filepath.Join(dir, "missing.yml")}); err == nil {
		t.Fatal("want error for a missing explicit file")
	}
	empty := Discover(context.Background(), t.TempDir())
	if empty.SHA != strings.Repeat("0", 40) {
		t.Fatalf("non-git dir: %+v", empty)
	}
}
