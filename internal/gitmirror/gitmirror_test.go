package gitmirror

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

const key = "github.com/acme/widgets"

func mirrorGit(t *testing.T, c *Cache, args ...string) (string, error) {
	t.Helper()
	dir, _ := c.repoDir("test", key)
	cmd := exec.Command("git", append([]string{"--git-dir", dir}, args...)...)
	cmd.Env = gitEnv()
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestSyncAndReadFiles(t *testing.T) {
	src := newSource(t)
	c, _ := newCache(t, Options{})
	ctx := context.Background()
	if err := c.Sync(ctx, key, src.url, Credentials{}); err != nil {
		t.Fatal(err)
	}
	got, err := c.ReadFiles(ctx, key, src.main, ".github/workflows", ".conveyor/", "missing")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		".github/workflows/ci.yml":       "name: ci\non: push\n",
		".github/workflows/release.yaml": "name: release\n",
		".github/workflows/link.yml":     "name: ci\non: push\n", // a link within the tree is followed
		".conveyor/deploy.yaml":          "name: deploy\n",
	}
	if len(got) != len(want) {
		t.Errorf("got files %v, want %v", keys(got), want)
	}
	for p, w := range want {
		if string(got[p]) != w {
			t.Errorf("%s = %q, want %q", p, got[p], w)
		}
	}
	// Branches and tags are mirrored.
	for _, ref := range []string{"refs/heads/main", "refs/heads/feature", "refs/tags/v1"} {
		if _, err := mirrorGit(t, c, "rev-parse", "--verify", ref); err != nil {
			t.Errorf("mirror lacks %s", ref)
		}
	}
	feat, err := c.ReadFiles(ctx, key, src.feat, ".github/workflows")
	if err != nil || string(feat[".github/workflows/ci.yml"]) != "name: ci feature\n" {
		t.Errorf("feature ci.yml = %q, %v", feat[".github/workflows/ci.yml"], err)
	}
	if _, err := c.ReadFiles(ctx, key, src.main, "../etc"); !errs.Is(err, errs.Invalid) {
		t.Errorf("ReadFiles(../etc) = %v, want Invalid", err)
	}
	if _, err := c.ReadFiles(ctx, key, strings.Repeat("ab", 20), ".github/workflows"); !errs.Is(err, errs.NotFound) {
		t.Errorf("unknown sha: %v, want NotFound", err)
	}
	// A tree of the mirror is not a commit: it reads as missing, as
	// callers fetch on NotFound.
	if tree := src.git("rev-parse", src.main+"^{tree}"); tree == "" {
		t.Fatal("no tree")
	} else if _, err := c.ReadFiles(ctx, key, tree, ".github/workflows"); !errs.Is(err, errs.NotFound) {
		t.Errorf("ReadFiles(a tree id) = %v, want NotFound", err)
	}
	if _, err := c.ReadFiles(ctx, "other/repo", src.main, ".github/workflows"); !errs.Is(err, errs.NotFound) {
		t.Errorf("unmirrored repo: %v, want NotFound", err)
	}
	root, err := c.ReadFiles(ctx, key, src.main, ".")
	if err != nil || len(root) != 0 {
		t.Errorf("root = %v, %v; want no YAML files", keys(root), err)
	}
}

func keys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestReadFilesSizeCap(t *testing.T) {
	src := newSource(t)
	src.write(".github/workflows/big.yml", strings.Repeat("x", 300))
	sha := src.commit("big")
	c, _ := newCache(t, Options{MaxFileSize: 100})
	ctx := context.Background()
	if err := c.Sync(ctx, key, src.url, Credentials{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.ReadFiles(ctx, key, sha, ".github/workflows")
	if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), ".github/workflows/big.yml (300 bytes)") {
		t.Errorf("err = %v, want Invalid naming big.yml", err)
	}
	if _, err := c.ReadFile(ctx, key, sha, ".github/workflows/big.yml"); !errs.Is(err, errs.Invalid) {
		t.Errorf("ReadFile big = %v, want Invalid", err)
	}
}

func TestReadFile(t *testing.T) {
	src := newSource(t)
	c, _ := newCache(t, Options{})
	ctx := context.Background()
	if err := c.Sync(ctx, key, src.url, Credentials{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want string
		kind errs.Kind
	}{
		{"actions/hello/action.yml", "name: hello\n", 0},
		{"./actions/hello/../hello/action.yml", "name: hello\n", 0},
		{".github/workflows/link.yml", "name: ci\non: push\n", 0},
		{"actions/hello/action.yaml", "", errs.NotFound},
		{"actions/hello", "", errs.NotFound},
		{".github/workflows/escape.yml", "", errs.NotFound},
		{"../outside", "", errs.Invalid},
		{"/etc/passwd", "", errs.Invalid},
		{"", "", errs.Invalid},
	} {
		got, err := c.ReadFile(ctx, key, src.main, tc.path)
		if tc.kind != 0 {
			if !errs.Is(err, tc.kind) {
				t.Errorf("ReadFile(%q) = %q, %v; want %v", tc.path, got, err, tc.kind)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("ReadFile(%q) = %q, %v; want %q", tc.path, got, err, tc.want)
		}
	}
}

func TestIncrementalFetchAndPrune(t *testing.T) {
	src := newSource(t)
	c, l := newCache(t, Options{})
	ctx := context.Background()
	if err := c.Sync(ctx, key, src.url, Credentials{}); err != nil {
		t.Fatal(err)
	}
	src.write(".conveyor/deploy.yaml", "name: deploy v2\n")
	next := src.commit("second")
	src.git("branch", "-D", "feature")
	if err := c.Sync(ctx, key, src.url, Credentials{}); err != nil {
		t.Fatal(err)
	}
	if n := l.count("fetch", "--prune"); n != 1 {
		t.Errorf("%d incremental fetches, want 1:\n%s", n, l.all())
	}
	got, err := c.ReadFile(ctx, key, next, ".conveyor/deploy.yaml")
	if err != nil || string(got) != "name: deploy v2\n" {
		t.Errorf("new commit: %q, %v", got, err)
	}
	if out, err := mirrorGit(t, c, "rev-parse", "--verify", "refs/heads/main"); err != nil || out != next {
		t.Errorf("main = %s, %v; want %s", out, err, next)
	}
	if _, err := mirrorGit(t, c, "rev-parse", "--verify", "refs/heads/feature"); err == nil {
		t.Error("deleted branch feature was not pruned")
	}
}

func TestEnsureCommitOffline(t *testing.T) {
	src := newSource(t)
	c, l := newCache(t, Options{})
	ctx := context.Background()
	if err := c.Sync(ctx, key, src.url, Credentials{}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(src.dir); err != nil {
		t.Fatal(err)
	}
	before := l.count("fetch")
	for _, sha := range []string{src.main, src.feat} {
		if err := c.EnsureCommit(ctx, key, src.url, Credentials{}, sha); err != nil {
			t.Errorf("EnsureCommit(%s) with the remote gone: %v", sha, err)
		}
	}
	if n := l.count("fetch"); n != before {
		t.Errorf("EnsureCommit of present commits fetched %d times", n-before)
	}
	if err := c.EnsureCommit(ctx, key, src.url, Credentials{}, strings.Repeat("1", 40)); err == nil {
		t.Error("EnsureCommit of an unknown commit with the remote gone succeeded")
	}
	if err := c.EnsureCommit(ctx, key, src.url, Credentials{}, "HEAD"); !errs.Is(err, errs.Invalid) {
		t.Errorf("EnsureCommit(HEAD) = %v, want Invalid", err)
	}
}

func TestEnsureCommitFetchesBySHA(t *testing.T) {
	src := newSource(t)
	c, _ := newCache(t, Options{})
	ctx := context.Background()
	if err := c.Sync(ctx, key, src.url, Credentials{}); err != nil {
		t.Fatal(err)
	}
	// A commit no ref reaches, like a fork's pull request head.
	src.write("orphan.txt", "x\n")
	orphan := src.commit("orphan")
	src.git("reset", "-q", "--hard", "HEAD~1")
	if err := c.EnsureCommit(ctx, key, src.url, Credentials{}, orphan); err != nil {
		t.Fatalf("EnsureCommit(unreachable commit): %v", err)
	}
	if got, err := c.ReadFile(ctx, key, orphan, "orphan.txt"); err != nil || string(got) != "x\n" {
		t.Errorf("orphan.txt = %q, %v", got, err)
	}
	err := c.EnsureCommit(ctx, key, src.url, Credentials{}, strings.Repeat("e", 40))
	if !errs.Is(err, errs.NotFound) {
		t.Errorf("EnsureCommit(absent) = %v, want NotFound", err)
	}
	// A fresh cache clones on demand.
	c2, _ := newCache(t, Options{})
	if err := c2.EnsureCommit(ctx, key, src.url, Credentials{}, src.feat); err != nil {
		t.Errorf("EnsureCommit on an empty cache: %v", err)
	}
}

func TestChangedFiles(t *testing.T) {
	src := newSource(t)
	c, _ := newCache(t, Options{})
	ctx := context.Background()
	if err := c.Sync(ctx, key, src.url, Credentials{}); err != nil {
		t.Fatal(err)
	}
	got, err := c.ChangedFiles(ctx, key, src.main, src.feat)
	if want := []string{".github/workflows/ci.yml", "src/new.go"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ChangedFiles = %q, %v; want %q", got, err, want)
	}
	got, err = c.ChangedFiles(ctx, key, strings.Repeat("0", 40), src.feat)
	if err != nil || got != nil {
		t.Errorf("new branch: %q, %v; want nil, nil", got, err)
	}
	got, err = c.ChangedFiles(ctx, key, src.main, src.main)
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("no change: %#v, %v; want empty, non-nil", got, err)
	}
	if _, err := c.ChangedFiles(ctx, key, strings.Repeat("f", 40), src.main); !errs.Is(err, errs.NotFound) {
		t.Errorf("rewritten before: %v, want NotFound", err)
	}
}

func TestCheckout(t *testing.T) {
	src := newSource(t)
	c, _ := newCache(t, Options{})
	ctx := context.Background()
	if err := c.Sync(ctx, key, src.url, Credentials{}); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "ws")
	var wg sync.WaitGroup
	for _, d := range []string{dest, dest + "2"} { // in parallel: no shared index
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Checkout(ctx, key, src.feat, d); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if b, err := os.ReadFile(filepath.Join(dest, "src/new.go")); err != nil || string(b) != "package src\n" {
		t.Errorf("src/new.go = %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(dest, "script.sh")); err != nil || fi.Mode()&0o100 == 0 {
		t.Errorf("script.sh not executable: %v %v", fi, err)
	}
	if target, err := os.Readlink(filepath.Join(dest, ".github/workflows/link.yml")); err != nil || target != "ci.yml" {
		t.Errorf("link.yml -> %q, %v", target, err)
	}
	if _, err := os.Stat(filepath.Join(dest, "HEAD")); err == nil {
		t.Error("git metadata in the workspace")
	}
	if err := c.Checkout(ctx, key, strings.Repeat("a", 40), dest); !errs.Is(err, errs.NotFound) {
		t.Errorf("Checkout(absent) = %v, want NotFound", err)
	}
	if err := c.Checkout(ctx, key, "main", dest); !errs.Is(err, errs.Invalid) {
		t.Errorf("Checkout(a branch name) = %v, want Invalid", err)
	}
	// Into a folder that has files: those of the tree are overwritten,
	// the others left.
	if err := os.WriteFile(filepath.Join(dest, "src/new.go"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dest, "extra.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Checkout(ctx, key, src.feat, dest); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "src/new.go")); err != nil || string(b) != "package src\n" {
		t.Errorf("src/new.go after a second checkout = %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "extra.txt")); err != nil || string(b) != "mine" {
		t.Errorf("extra.txt after a second checkout = %q, %v", b, err)
	}
}

func TestConcurrentSyncCoalesces(t *testing.T) {
	src := newSource(t)
	other := newSource(t)
	c, l := newCache(t, Options{})
	ctx := context.Background()
	const n = 16
	start := make(chan struct{})
	var wg sync.WaitGroup
	errc := make(chan error, 2*n)
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			errc <- c.Sync(ctx, key, src.url, Credentials{})
		}()
		go func() {
			defer wg.Done()
			<-start
			errc <- c.Sync(ctx, "other", other.url, Credentials{})
		}()
	}
	close(start)
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Error(err)
		}
	}
	dir, _ := c.repoDir("", key)
	if f := l.count("fetch", filepath.Base(dir)); f >= n || f < 1 {
		t.Errorf("%d fetches for %d concurrent Syncs, want coalescing:\n%s", f, n, l.all())
	}
	if _, err := c.ReadFile(ctx, "other", other.main, ".conveyor/deploy.yaml"); err != nil {
		t.Error(err)
	}
	// A canceled caller returns at once; the shared sync still completes.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Sync(cctx, key, src.url, Credentials{}); !errs.Is(err, errs.Canceled) {
		t.Errorf("canceled Sync = %v", err)
	}
}

func TestStaleLocksAndTempDirs(t *testing.T) {
	src := newSource(t)
	c, _ := newCache(t, Options{})
	ctx := context.Background()
	dir, _ := c.repoDir("", key)
	// A first Sync that crashed midway.
	stale := filepath.Join(c.dir, ".tmp-"+filepath.Base(dir)+"-123")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx, key, src.url, Credentials{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("stale temporary clone left behind")
	}
	// A fetch that died holding the ref locks.
	for _, p := range []string{"packed-refs.lock", "refs/heads/main.lock"} {
		if err := os.WriteFile(filepath.Join(dir, p), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src.write("x", "y")
	src.commit("after crash")
	if err := c.Sync(ctx, key, src.url, Credentials{}); err != nil {
		t.Errorf("Sync after a crash: %v", err)
	}
}

func TestKeySanitising(t *testing.T) {
	c := New(filepath.Join(t.TempDir(), "git"), Options{})
	seen := map[string]string{}
	for _, k := range []string{"../x", "../../etc", "/abs/path", "a/b", "a_b", "..", ".", "-rf", "ünï cödé", strings.Repeat("long", 50)} {
		dir, err := c.repoDir("test", k)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(dir)
		if filepath.Dir(dir) != c.dir || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "-") || len(name) > 100 {
			t.Errorf("key %q -> %q escapes or is unsafe", k, dir)
		}
		if prev, ok := seen[name]; ok {
			t.Errorf("keys %q and %q share %q", prev, k, name)
		}
		seen[name] = k
	}
	if _, err := c.repoDir("test", ""); !errs.Is(err, errs.Invalid) {
		t.Errorf("empty key: %v", err)
	}
	src := newSource(t)
	c2, _ := newCache(t, Options{})
	if err := c2.Sync(context.Background(), "../../escape", src.url, Credentials{}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(c2.dir)
	if len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), "escape-") {
		t.Errorf("cache holds %v", entries)
	}
}

func TestParseRemote(t *testing.T) {
	c := New(t.TempDir(), Options{})
	for _, tc := range []struct {
		in, url, scope, user, pass string
		bad                        bool
	}{
		{in: "https://github.com/a/b.git", url: "https://github.com/a/b.git"},
		{in: "https://u:s3cret@github.com/a/b", url: "https://github.com/a/b", scope: "https://github.com", user: "u", pass: "s3cret"},
		{in: "https://tok@host:8443/a", url: "https://host:8443/a", scope: "https://host:8443", user: "tok"},
		{in: "ssh://git:pw@host/a/b", url: "ssh://git@host/a/b"},
		{in: "git@github.com:a/b.git", url: "git@github.com:a/b.git"},
		{in: "git://host/a", url: "git://host/a"},
		{in: "file:///srv/a", bad: true},
		{in: "ext::sh -c touch% /tmp/pwned", bad: true},
		{in: "-oProxyCommand=x", bad: true},
		{in: "/local/path", bad: true},
		{in: "ftp://host/a", bad: true},
		{in: "https://host/a\nb", bad: true},
	} {
		r, err := c.parseRemote("test", tc.in, Credentials{})
		if tc.bad {
			if !errs.Is(err, errs.Invalid) {
				t.Errorf("%q: %+v, %v; want Invalid", tc.in, r, err)
			}
			continue
		}
		if err != nil || r.url != tc.url || r.scope != tc.scope || r.cred.Username != tc.user || r.cred.Password != tc.pass {
			t.Errorf("%q: %+v, %v", tc.in, r, err)
		}
	}
	r, _ := c.parseRemote("test", "https://host/a", Credentials{Password: "tok"})
	if r.cred.Username != "x-access-token" || r.scope != "https://host" {
		t.Errorf("token only: %+v", r)
	}
	if s := (Credentials{Username: "u", Password: "hunter2"}).String(); strings.Contains(s, "hunter2") {
		t.Errorf("Credentials.String leaks: %s", s)
	}
}

func TestRedact(t *testing.T) {
	in := "fatal: unable to access 'https://user:pa55@host/x': error; also http://tok@h2/y and git@github.com:a/b"
	want := "fatal: unable to access 'https://***@host/x': error; also http://***@h2/y and git@github.com:a/b"
	if got := redact(in); got != want {
		t.Errorf("redact =\n%s\nwant\n%s", got, want)
	}
}

func BenchmarkReadFiles(b *testing.B) {
	src := newSource(b)
	for i := 0; i < 20; i++ {
		src.write(".github/workflows/w"+string(rune('a'+i))+".yml", strings.Repeat("step: x\n", 200))
	}
	sha := src.commit("many")
	c, _ := newCache(b, Options{})
	ctx := context.Background()
	if err := c.Sync(ctx, key, src.url, Credentials{}); err != nil {
		b.Fatal(err)
	}
	// ReadFiles of commits whose workflow folders are read already (the
	// common case: a push that changed no workflow), against the floor of
	// starting one git process per event as the reader did before.
	b.Run("read", func(b *testing.B) {
		for b.Loop() {
			files, err := c.ReadFiles(ctx, key, sha, ".github/workflows", ".conveyor")
			if err != nil || len(files) != 24 {
				b.Fatalf("%d files, %v", len(files), err)
			}
		}
	})
	dir, err := c.existing("bench", key)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("floor-one-git-process", func(b *testing.B) {
		for b.Loop() {
			if err := exec.Command("git", "--git-dir", dir, "rev-parse", "--verify", "-q", sha).Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestTimeout(t *testing.T) {
	src := newSource(t)
	c, _ := newCache(t, Options{Timeout: time.Nanosecond})
	if err := c.Sync(context.Background(), key, src.url, Credentials{}); !errs.Is(err, errs.Timeout) {
		t.Errorf("Sync = %v, want Timeout", err)
	}
}

func TestResolve(t *testing.T) {
	src := newSource(t)
	c, _ := newCache(t, Options{})
	ctx := context.Background()
	if err := c.Sync(ctx, "r", src.url, Credentials{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ref, sha, full string }{
		{"main", src.main, "refs/heads/main"},
		{"feature", src.feat, "refs/heads/feature"},
		{"v1", src.tag, "refs/tags/v1"},
		{"refs/heads/main", src.main, "refs/heads/main"},
		{src.feat, src.feat, src.feat},
	} {
		sha, full, err := c.Resolve(ctx, "r", tc.ref)
		if err != nil || sha != tc.sha || full != tc.full {
			t.Errorf("Resolve(%q) = %q %q %v, want %q %q", tc.ref, sha, full, err, tc.sha, tc.full)
		}
	}
	for _, bad := range []string{"nope", "-x", "a b", ""} {
		if _, _, err := c.Resolve(ctx, "r", bad); err == nil {
			t.Errorf("Resolve(%q): no error", bad)
		}
	}
}

// A Sync whose caller gave up goes on in the background; Close ends it and
// waits, so that nothing writes into the cache's folder after Close (the
// server's data folder, removed after it stops).
func TestCloseEndsBackgroundSyncs(t *testing.T) {
	src := newSource(t)
	slow := filepath.Join(t.TempDir(), "slow-git")
	if err := os.WriteFile(slow, []byte("#!/bin/sh\nsleep 0.5\nexec git \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, _ := newCache(t, Options{GitPath: slow})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := c.Sync(ctx, key, src.url, Credentials{}); !errs.Is(err, errs.Timeout) && !errs.Is(err, errs.Canceled) {
		t.Fatalf("Sync past its deadline = %v", err)
	}
	c.Close()
	if err := os.RemoveAll(c.dir); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the slow git would have woken by now
	if _, err := os.Stat(c.dir); !os.IsNotExist(err) {
		t.Errorf("the cache's folder came back after Close: %v", err)
	}
	if err := c.Sync(context.Background(), key, src.url, Credentials{}); !errs.Is(err, errs.Unavailable) {
		t.Errorf("Sync after Close = %v, want Unavailable", err)
	}
}
