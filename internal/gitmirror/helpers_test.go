package gitmirror

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// source is a real repository the tests mirror.
type source struct {
	t    testing.TB
	dir  string
	url  string
	main string // sha of main's first commit
	tag  string // sha v1 points to (main's first commit)
	feat string // sha of feature's head
}

func gitEnv() []string {
	return append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
}

func needGit(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
}

// git runs git in the source repository and returns its trimmed output.
func (s *source) git(args ...string) string {
	s.t.Helper()
	cmd := exec.Command("git", append([]string{"-C", s.dir}, args...)...)
	cmd.Env = gitEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (s *source) write(name, content string) {
	s.t.Helper()
	p := filepath.Join(s.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func (s *source) commit(msg string) string {
	s.t.Helper()
	s.git("add", "-A")
	s.git("commit", "-q", "-m", msg)
	return s.git("rev-parse", "HEAD")
}

// newSource makes a repository with workflows on main, a tag v1, and a
// feature branch one commit ahead.
func newSource(t testing.TB) *source {
	t.Helper()
	needGit(t)
	s := &source{t: t, dir: t.TempDir()}
	s.url = "file://" + s.dir
	s.git("init", "-q", "-b", "main")
	s.git("config", "uploadpack.allowAnySHA1InWant", "true")
	s.write(".github/workflows/ci.yml", "name: ci\non: push\n")
	s.write(".github/workflows/release.yaml", "name: release\n")
	s.write(".github/workflows/README.md", "not a workflow\n")
	s.write(".github/workflows/nested/deep.yml", "name: deep\n")
	s.write(".conveyor/deploy.yaml", "name: deploy\n")
	s.write("actions/hello/action.yml", "name: hello\n")
	s.write("script.sh", "#!/bin/sh\necho hi\n")
	if err := os.Chmod(filepath.Join(s.dir, "script.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("ci.yml", filepath.Join(s.dir, ".github/workflows/link.yml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../etc/passwd", filepath.Join(s.dir, ".github/workflows/escape.yml")); err != nil {
		t.Fatal(err)
	}
	s.main = s.commit("first")
	s.tag = s.main
	s.git("tag", "v1")
	s.git("checkout", "-q", "-b", "feature")
	s.write(".github/workflows/ci.yml", "name: ci feature\n")
	s.write("src/new.go", "package src\n")
	s.feat = s.commit("feature")
	s.git("checkout", "-q", "main")
	return s
}

// logs collects a Cache's log lines.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) add(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
}

// count returns how many lines hold every one of subs.
func (l *logs) count(subs ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
outer:
	for _, line := range l.lines {
		for _, s := range subs {
			if !strings.Contains(line, s) {
				continue outer
			}
		}
		n++
	}
	return n
}

func (l *logs) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func newCache(t testing.TB, opts Options) (*Cache, *logs) {
	t.Helper()
	l := &logs{}
	opts.AllowFileURLs = true
	opts.Logger = l.add
	return New(t.TempDir(), opts), l
}
