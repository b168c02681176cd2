package exec

import (
	"context"
	"net"
	"net/http"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/cache"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// cacheService serves GitHub's cache protocol over store on addr
// ("127.0.0.1:0", or the Docker bridge's address) until the test ends.
func cacheService(t *testing.T, store *cache.Store, addr string) *cache.Runtime {
	t.Helper()
	tokens := cache.NewTokens()
	svc, err := cache.NewService(store, tokens, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: svc, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	u := "http://" + ln.Addr().String()
	return cache.NewRuntime(tokens, u, u)
}

// cacheActionRepo is a repository holding the real actions/cache (tag ref)
// as the local action ./.github/actions/cache.
func cacheActionRepo(t *testing.T, ref string) string {
	t.Helper()
	src := filepath.Join(testenv.CompatDir(t, "actions"), "actions", "cache.git")
	repo := t.TempDir()
	out, err := osexec.Command("git", "clone", "-q", "--depth", "1", "--branch", ref, "file://"+src, filepath.Join(repo, ".github", "actions", "cache")).CombinedOutput()
	if err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	return repo
}

const realCacheWorkflow = `
on: push
jobs:
  build:
    runs-on: x
    steps:
      - id: c
        uses: ./.github/actions/cache
        with:
          path: deps
          key: real-${{ runner.os }}-1
      - run: |
          echo "hit=${{ steps.c.outputs.cache-hit }}"
          if [ "${{ steps.c.outputs.cache-hit }}" = true ]; then
            test "$(cat deps/sub/lib.txt)" = cached && echo restored-ok
          else
            mkdir -p deps/sub && echo cached > deps/sub/lib.txt
          fi
`

// The real actions/cache (its dist, run by node as a local action) saves
// through the cache service in one run and hits in the next.
func TestRealCacheActionHost(t *testing.T) {
	if _, err := osexec.LookPath("node"); err != nil {
		if testenv.InCI() {
			t.Fatal("node is not installed (required under CI)")
		}
		t.Skip("node is not installed")
	}
	repo := cacheActionRepo(t, "v4")
	store := cacheStore(t)
	rt := cacheService(t, store, "127.0.0.1:0")
	opts := func() Options {
		return Options{RepoDir: repo, Cache: Cache{Store: store, Runtime: rt}}
	}
	res, rec := run(t, nil, realCacheWorkflow, opts())
	if resultOf(res, "build") != Success || !strings.Contains(rec.dump(), "Cache saved with key: real-Linux-1") {
		t.Fatalf("first run: %s\n%s", resultsString(res), rec.dump())
	}
	res, rec = run(t, nil, realCacheWorkflow, opts())
	if resultOf(res, "build") != Success || !rec.hasOutput("build", "hit=true") || !rec.hasOutput("build", "restored-ok") {
		t.Fatalf("second run: %s\n%s", resultsString(res), rec.dump())
	}
	for _, e := range mustEntries(t, store) {
		if e.Repo != "octo/repo" || e.Ref != "refs/heads/main" {
			t.Errorf("entry scoped to %s %s, want the job's repository and ref", e.Repo, e.Ref)
		}
	}
}

func mustEntries(t *testing.T, s *cache.Store) []*cache.Entry {
	t.Helper()
	es, err := s.Entries(context.Background(), "octo/repo")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 0 {
		t.Fatal("no cache entry stored")
	}
	return es
}
