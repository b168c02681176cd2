package actions

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// remote is a git repository served as BaseURL/owner/repo through file://.
type remote struct {
	t    *testing.T
	base string // file:// URL of the folder holding owner/repo
	dir  string // the repository's working tree
}

func newRemote(t *testing.T, owner, repo string) *remote {
	t.Helper()
	root := t.TempDir()
	r := &remote{t: t, base: "file://" + root, dir: filepath.Join(root, owner, repo)}
	r.git("init", "-q", "-b", "main", r.dir)
	r.commit("action.yml", "name: a\nruns:\n  using: node20\n  main: index.js\n")
	return r
}

func (r *remote) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	if args[0] != "init" {
		cmd.Dir = r.dir
	}
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes one file and commits it; it returns the commit SHA.
func (r *remote) commit(name, content string) string {
	r.t.Helper()
	p := filepath.Join(r.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.git("add", "-A")
	r.git("commit", "-q", "-m", "change "+name)
	return r.git("rev-parse", "HEAD")
}

// clock is a settable time for ref TTL tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newCache(t *testing.T, dir, base string, clk *clock) *Cache {
	t.Helper()
	opts := Options{Dir: dir, BaseURL: base}
	if clk != nil {
		opts.Now = clk.Now
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustParse(t *testing.T, uses string) Ref {
	t.Helper()
	r, err := Parse(uses)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResolveTagFetchesOnceThenUsesTheCache(t *testing.T) {
	rm := newRemote(t, "acme", "hello")
	sha := rm.commit("index.js", "console.log('v1')\n")
	rm.git("tag", "v1")
	dir := t.TempDir()
	c := newCache(t, dir, rm.base, nil)
	ctx := context.Background()

	res, err := c.Resolve(ctx, mustParse(t, "acme/hello@v1"))
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA != sha || !res.Fetched {
		t.Fatalf("got %s fetched=%v, want %s fetched", res.SHA, res.Fetched, sha)
	}
	if b, err := os.ReadFile(filepath.Join(res.Dir, "index.js")); err != nil || string(b) != "console.log('v1')\n" {
		t.Fatalf("tree: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(res.Dir, ".git")); !os.IsNotExist(err) {
		t.Fatalf("the cached tree keeps .git: %v", err)
	}
	again, err := c.Resolve(ctx, mustParse(t, "acme/hello@v1"))
	if err != nil || again.Fetched || again.SHA != sha {
		t.Fatalf("second resolve: %+v %v", again, err)
	}
	// A new process within the TTL does not touch the network either.
	c2 := newCache(t, dir, rm.base, nil)
	if _, err := c2.Resolve(ctx, mustParse(t, "acme/hello@v1")); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st != (Stats{Fetches: 1}) {
		t.Fatalf("first cache: %+v, want one fetch", st)
	}
	if st := c2.Stats(); st != (Stats{}) {
		t.Fatalf("second process hit the network: %+v", st)
	}
	// Another mirror is not trusted with the first one's resolution.
	rm2 := newRemote(t, "acme", "hello")
	other := rm2.commit("index.js", "console.log('mirror')\n")
	rm2.git("tag", "v1")
	c3 := newCache(t, dir, rm2.base, nil)
	res3, err := c3.Resolve(ctx, mustParse(t, "acme/hello@v1"))
	if err != nil || res3.SHA != other {
		t.Fatalf("other mirror: %+v %v, want %s", res3, err, other)
	}
}

func TestMovedTagIsResolvedAgainAfterTheTTL(t *testing.T) {
	rm := newRemote(t, "acme", "hello")
	first := rm.commit("index.js", "1\n")
	rm.git("tag", "v1")
	clk := &clock{now: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	c := newCache(t, t.TempDir(), rm.base, clk)
	ctx := context.Background()
	ref := mustParse(t, "acme/hello@v1")
	if res, err := c.Resolve(ctx, ref); err != nil || res.SHA != first {
		t.Fatalf("%+v %v", res, err)
	}
	second := rm.commit("index.js", "2\n")
	rm.git("tag", "-f", "v1")

	clk.add(4 * time.Minute)
	if res, err := c.Resolve(ctx, ref); err != nil || res.SHA != first {
		t.Fatalf("within the TTL: %+v %v, want the first commit", res, err)
	}
	if st := c.Stats(); st.Resolves != 0 {
		t.Fatalf("within the TTL the remote was asked: %+v", st)
	}
	clk.add(2 * time.Minute)
	res, err := c.Resolve(ctx, ref)
	if err != nil || res.SHA != second || !res.Fetched {
		t.Fatalf("after the TTL: %+v %v, want %s fetched", res, err, second)
	}
	if b, _ := os.ReadFile(filepath.Join(res.Dir, "index.js")); string(b) != "2\n" {
		t.Fatalf("new tree holds %q", b)
	}
	if st := c.Stats(); st != (Stats{Resolves: 1, Fetches: 2}) {
		t.Fatalf("stats %+v", st)
	}
	// Moved back to a commit the cache has: resolved, not fetched.
	rm.git("tag", "-f", "v1", first)
	clk.add(6 * time.Minute)
	res, err = c.Resolve(ctx, ref)
	if err != nil || res.SHA != first || res.Fetched {
		t.Fatalf("moved back: %+v %v", res, err)
	}
	if st := c.Stats(); st != (Stats{Resolves: 2, Fetches: 2}) {
		t.Fatalf("stats %+v", st)
	}
}

func TestUnreachableRemoteKeepsTheStaleResolution(t *testing.T) {
	rm := newRemote(t, "acme", "hello")
	sha := rm.commit("index.js", "1\n")
	rm.git("tag", "v1")
	clk := &clock{now: time.Now()}
	dir := t.TempDir()
	c := newCache(t, dir, rm.base, clk)
	ref := mustParse(t, "acme/hello@v1")
	if _, err := c.Resolve(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	clk.add(time.Hour)
	// An unreachable http remote: the stale commit is used, with a warning.
	c2, err := New(Options{Dir: dir, BaseURL: "http://127.0.0.1:1", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	// (the record is per base URL: copy it over as if this mirror had served it)
	os.WriteFile(c2.recordPath(ref), []byte(`{"sha":"`+sha+`","resolved":"2000-01-01T00:00:00Z","url":"http://127.0.0.1:1"}`), 0o644)
	res, err := c2.Resolve(context.Background(), ref)
	if err != nil || res.SHA != sha || res.Warning == "" {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestSHAIsNeverFetchedTwice(t *testing.T) {
	rm := newRemote(t, "acme", "hello")
	sha := rm.commit("index.js", "x\n")
	rm.commit("index.js", "later\n") // the SHA is not a branch tip any more
	dir := t.TempDir()
	ctx := context.Background()
	c := newCache(t, dir, rm.base, nil)
	res, err := c.Resolve(ctx, mustParse(t, "acme/hello@"+sha))
	if err != nil || res.SHA != sha || !res.Fetched {
		t.Fatalf("%+v %v", res, err)
	}
	if b, _ := os.ReadFile(filepath.Join(res.Dir, "index.js")); string(b) != "x\n" {
		t.Fatalf("tree holds %q", b)
	}
	for i := 0; i < 2; i++ {
		c2 := newCache(t, dir, rm.base, nil)
		if res, err := c2.Resolve(ctx, mustParse(t, "acme/hello@"+sha)); err != nil || res.Fetched {
			t.Fatalf("%+v %v", res, err)
		}
		if st := c2.Stats(); st != (Stats{}) {
			t.Fatalf("a cached SHA went to the network: %+v", st)
		}
	}
	// Offline, a cached SHA resolves.
	off, _ := New(Options{Dir: dir, BaseURL: rm.base, Offline: true})
	if _, err := off.Resolve(ctx, mustParse(t, "acme/hello@"+sha)); err != nil {
		t.Fatal(err)
	}
}

func TestOfflineUsesOnlyTheCache(t *testing.T) {
	rm := newRemote(t, "acme", "hello")
	rm.git("tag", "v1")
	dir := t.TempDir()
	clk := &clock{now: time.Now()}
	off, err := New(Options{Dir: dir, BaseURL: rm.base, Offline: true, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = off.Resolve(context.Background(), mustParse(t, "acme/hello@v1"))
	if !errs.Is(err, errs.NotFound) || !strings.Contains(err.Error(), "acme/hello@v1") || !strings.Contains(err.Error(), "--offline") {
		t.Fatalf("offline, not cached: %v", err)
	}
	if _, err := newCache(t, dir, rm.base, clk).Resolve(context.Background(), mustParse(t, "acme/hello@v1")); err != nil {
		t.Fatal(err)
	}
	clk.add(24 * time.Hour) // offline, an old resolution is still used
	if _, err := off.Resolve(context.Background(), mustParse(t, "acme/hello@v1")); err != nil {
		t.Fatal(err)
	}
	if st := off.Stats(); st != (Stats{}) {
		t.Fatalf("offline touched the network: %+v", st)
	}
}

func TestConcurrentResolvesFetchOnce(t *testing.T) {
	rm := newRemote(t, "acme", "hello")
	rm.git("tag", "v1")
	dir := t.TempDir()
	// Two caches over one folder stand for two processes (the file lock);
	// goroutines on each for one process (singleflight).
	caches := []*Cache{newCache(t, dir, rm.base, nil), newCache(t, dir, rm.base, nil)}
	var wg sync.WaitGroup
	shas := make(chan string, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(c *Cache) {
			defer wg.Done()
			res, err := c.Resolve(context.Background(), mustParse(t, "acme/hello@v1"))
			if err != nil {
				t.Error(err)
				return
			}
			shas <- res.SHA
		}(caches[i%2])
	}
	wg.Wait()
	close(shas)
	seen := map[string]bool{}
	for s := range shas {
		seen[s] = true
	}
	if len(seen) != 1 {
		t.Fatalf("different answers: %v", seen)
	}
	total := caches[0].Stats().Fetches + caches[1].Stats().Fetches
	if total != 1 {
		t.Fatalf("%d fetches, want 1", total)
	}
}

// A fetch that is killed mid-way leaves no tree: the tree is renamed into
// place only once whole.
func TestKilledFetchLeavesNoTree(t *testing.T) {
	rm := newRemote(t, "acme", "hello")
	rm.git("tag", "v1")
	bin := t.TempDir()
	marker := filepath.Join(bin, "cloned")
	realGit, _ := exec.LookPath("git")
	// A git that clones, then hangs: the checkout is on disk, the fetch
	// not done.
	script := "#!/bin/sh\n\"" + realGit + "\" \"$@\" || exit $?\ncase \"$1\" in clone) touch '" + marker + "'; exec sleep 30;; esac\n"
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c, err := New(Options{Dir: dir, BaseURL: rm.base, Git: filepath.Join(bin, "git")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Resolve(ctx, mustParse(t, "acme/hello@v1"))
		done <- err
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the clone never finished")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The clone is in tmp/, not in trees/.
	if ents, _ := os.ReadDir(filepath.Join(dir, "trees")); len(ents) != 0 {
		t.Fatalf("trees/ holds %v before the fetch finished", ents)
	}
	cancel()
	if err := <-done; !errs.Is(err, errs.Canceled) {
		t.Fatalf("cancelled resolve: %v", err)
	}
	// A later resolve by a working git fetches the whole tree.
	c2 := newCache(t, dir, rm.base, nil)
	res, err := c2.Resolve(context.Background(), mustParse(t, "acme/hello@v1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(res.Dir, "action.yml")); err != nil {
		t.Fatal(err)
	}
}

func TestStaleTempFoldersAreRemoved(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "tmp", "fetch-old")
	if err := os.MkdirAll(filepath.Join(old, "tree"), 0o755); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-24 * time.Hour)
	os.Chtimes(old, past, past)
	recent := filepath.Join(dir, "tmp", "fetch-recent")
	os.MkdirAll(recent, 0o755)
	newCache(t, dir, "file:///nowhere", nil)
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatal("an old temporary folder stayed")
	}
	if _, err := os.Stat(recent); err != nil {
		t.Fatal("a recent temporary folder (another process's fetch) was removed")
	}
}

func TestMissingRepositoryOrRefSaysWhich(t *testing.T) {
	rm := newRemote(t, "acme", "hello")
	c := newCache(t, t.TempDir(), rm.base, nil)
	for _, uses := range []string{"acme/nothere@v1", "acme/hello@v9"} {
		_, err := c.Resolve(context.Background(), mustParse(t, uses))
		if err == nil || !strings.Contains(err.Error(), uses) || !errs.Is(err, errs.NotFound) {
			t.Errorf("%s: %v (kind %v)", uses, err, errs.KindOf(err))
		}
	}
}

func TestShortSHASaysToUseTheFullOne(t *testing.T) {
	rm := newRemote(t, "acme", "hello")
	sha := rm.git("rev-parse", "HEAD")
	c := newCache(t, t.TempDir(), rm.base, nil)
	_, err := c.Resolve(context.Background(), mustParse(t, "acme/hello@"+sha[:7]))
	if err == nil || !strings.Contains(err.Error(), "full 40-character SHA") {
		t.Fatalf("short SHA: %v", err)
	}
}

func TestBranchWithSlashAndAnnotatedTag(t *testing.T) {
	rm := newRemote(t, "acme", "hello")
	rm.git("checkout", "-q", "-b", "release/v2")
	onBranch := rm.commit("index.js", "branch\n")
	rm.git("tag", "-a", "-m", "annotated", "v2.0.0")
	clk := &clock{now: time.Now()}
	c := newCache(t, t.TempDir(), rm.base, clk)
	for _, uses := range []string{"acme/hello@release/v2", "acme/hello@v2.0.0"} {
		res, err := c.Resolve(context.Background(), mustParse(t, uses))
		if err != nil || res.SHA != onBranch {
			t.Fatalf("%s: %+v %v, want %s", uses, res, err, onBranch)
		}
	}
	clk.add(time.Hour) // ls-remote path: the peeled commit of the annotated tag
	res, err := c.Resolve(context.Background(), mustParse(t, "acme/hello@v2.0.0"))
	if err != nil || res.SHA != onBranch || res.Fetched {
		t.Fatalf("%+v %v", res, err)
	}
}

// The token goes to git through its environment, never its arguments.
func TestTokenIsNeverOnTheCommandLine(t *testing.T) {
	rm := newRemote(t, "acme", "hello")
	rm.git("tag", "v1")
	bin := t.TempDir()
	logf := filepath.Join(bin, "log")
	realGit, _ := exec.LookPath("git")
	script := "#!/bin/sh\necho \"ARGS $*\" >> '" + logf + "'\nenv | grep '^GIT_CONFIG' >> '" + logf + "'\nexec \"" + realGit + "\" \"$@\"\n"
	os.WriteFile(filepath.Join(bin, "git"), []byte(script), 0o755)
	const token = "s3cr3t-token-value"
	c, err := New(Options{Dir: t.TempDir(), BaseURL: rm.base, Token: token, Git: filepath.Join(bin, "git")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Resolve(context.Background(), mustParse(t, "acme/hello@v1")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(logf)
	log := string(b)
	enc := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + token))
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, "ARGS") && (strings.Contains(l, token) || strings.Contains(l, enc)) {
			t.Fatalf("token on a command line: %s", l)
		}
	}
	if !strings.Contains(log, "http."+rm.base+"/.extraheader") || !strings.Contains(log, "AUTHORIZATION: basic "+enc) {
		t.Fatalf("no extraheader in git's environment:\n%s", log)
	}
}
