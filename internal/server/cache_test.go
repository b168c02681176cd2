package server

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/cache"
	"github.com/conveyor-ci/conveyor/internal/exec"
	"github.com/conveyor-ci/conveyor/internal/store"
)

const cacheFlow = `name: cached
on: push
jobs:
  build:
    runs-on: RUNS_ON
    steps:
      - id: c
        uses: actions/cache@v4
        with: {path: out, key: server-cache-1}
      - run: |
          echo "hit=${{ steps.c.outputs.cache-hit }}"
          if [ "${{ steps.c.outputs.cache-hit }}" = true ]; then cat out/f; else mkdir -p out && echo saved-by-run-1 > out/f; fi
          python3 - <<'PY'
          import os, urllib.request, urllib.error
          base = os.environ["ACTIONS_CACHE_URL"]
          req = urllib.request.Request(base + "_apis/artifactcache/cache?keys=nothing&version=v",
              headers={"Authorization": "Bearer " + os.environ["ACTIONS_RUNTIME_TOKEN"]})
          print("protocol status", urllib.request.urlopen(req).status)
          try:
              urllib.request.urlopen(urllib.request.Request(req.full_url, headers={"Authorization": "Bearer wrong"}))
          except urllib.error.HTTPError as e:
              print("wrong token status", e.code)
          PY
`

// The server's jobs share one cache: the first run saves, the second hits;
// the protocol is mounted at the server's URL and needs the job's token.
func TestServerCache(t *testing.T) {
	h := newHarness(t, harnessOpts{
		files: map[string]string{".github/workflows/ci.yml": strings.ReplaceAll(cacheFlow, "RUNS_ON", "ubuntu-latest"), "README.md": "hi\n"},
		cache: testCache(t),
	})
	cacheTwice(t, h)
}

// Caches belong to an organisation's repository, not to a name: another
// organisation's repository of the same name (same source even) neither
// hits nor poisons the first one's caches.
func TestCacheApartAcrossOrgs(t *testing.T) {
	var st *cache.Store
	tc := testCache(t)
	h := newHarness(t, harnessOpts{
		files: map[string]string{".github/workflows/ci.yml": strings.ReplaceAll(cacheFlow, "RUNS_ON", "ubuntu-latest"), "README.md": "hi\n"},
		cache: func(baseURL string) (exec.Cache, http.Handler, *cache.Tokens) {
			c, svc, tokens := tc(baseURL)
			st = c.Store.(*cache.Store)
			return c, svc, tokens
		},
	})
	cacheTwice(t, h) // organisation 1 saved, then hit
	ctx := context.Background()
	o, err := h.st.EnsureOrg(ctx, "tenant-b")
	if err != nil {
		t.Fatal(err)
	}
	twin := &store.Repo{OrgID: o.ID, Name: "octo/repo", URL: h.repo.URL, Forge: "github", Secret: "twin-secret", Branch: "main"}
	if err := h.st.CreateRepo(ctx, twin); err != nil {
		t.Fatal(err)
	}
	h.repo = twin
	if code, body := h.hook("push", h.push("main", "README.md"), "d-twin"); code != http.StatusAccepted {
		t.Fatalf("push to the twin: %d %s", code, body)
	}
	var run *store.Run
	waitFor(t, 60*time.Second, "the twin's run", func() bool {
		runs, _ := h.st.ListRuns(ctx, o.ID, store.RunFilter{Limit: 10})
		if len(runs) == 1 && store.Terminal(runs[0].Status) {
			run = runs[0]
		}
		return run != nil
	})
	log := h.jobLogIn(o.ID, run.ID, "build")
	if run.Status != store.StatusSuccess || !strings.Contains(log, "hit=\n") || strings.Contains(log, "saved-by-run-1") {
		t.Fatalf("the other organisation's run (%s) must miss:\n%s", run.Status, log)
	}
	for _, org := range []int64{1, o.ID} {
		if es, err := st.Entries(ctx, cache.TenantRepo(org, "octo/repo")); err != nil || len(es) != 1 {
			t.Errorf("organisation %d: %d entries, %v; want its own one", org, len(es), err)
		}
	}
	if es, _ := st.Entries(ctx, "octo/repo"); len(es) != 0 {
		t.Errorf("%d entries under the bare name", len(es))
	}
}

// The jobs of agents use the server's cache: the native steps through the
// protocol (cache.Remote) with a token the server issued for the job, and
// the protocol's env points at the server.
func TestAgentCache(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: Config{Workers: -1},
		files: map[string]string{".github/workflows/ci.yml": strings.ReplaceAll(cacheFlow, "RUNS_ON", "[self-hosted, linux]"), "README.md": "hi\n"},
		cache: testCache(t),
	})
	h.startAgent("agent-c", 1, time.Minute, "self-hosted", "linux")
	cacheTwice(t, h)
}

func testCache(t *testing.T) func(string) (exec.Cache, http.Handler, *cache.Tokens) {
	return func(baseURL string) (exec.Cache, http.Handler, *cache.Tokens) {
		d, err := cache.NewDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		st := cache.NewStore(d, 0)
		tokens := cache.NewTokens()
		svc, err := cache.NewService(st, tokens, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return exec.Cache{Store: st, Runtime: cache.NewRuntime(tokens, baseURL, "")}, svc, tokens
	}
}

func cacheTwice(t *testing.T, h *harness) {
	t.Helper()
	for i, want := range []string{"hit=", "saved-by-run-1"} {
		if i > 0 {
			h.git.commit("second", map[string]string{"README.md": "again\n"})
		}
		if code, body := h.hook("push", h.push("main", "README.md"), "d-"+string(rune('1'+i))); code != http.StatusAccepted {
			t.Fatalf("push: %d %s", code, body)
		}
		runs := h.waitRuns(i+1, 60*time.Second)
		r := runs[len(runs)-1]
		for _, x := range runs {
			if x.Number == int64(i+1) {
				r = x
			}
		}
		log := h.jobLog(r.ID, "build")
		if r.Status != store.StatusSuccess || !strings.Contains(log, want) || !strings.Contains(log, "protocol status 204") ||
			!strings.Contains(log, "wrong token status 401") {
			t.Fatalf("run %d: %s\n%s", i+1, r.Status, log)
		}
	}
}

// TestCacheRetention: caches of a repository with a caches retention that
// were not used within it are evicted by the sweep, a repository's setting
// over its organisation's; a repository without one keeps its caches.
func TestCacheRetention(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	var st *cache.Store
	h := newHarness(t, harnessOpts{cfg: Config{Now: func() time.Time { return time.Unix(0, now.Load()) }},
		files: map[string]string{"README.md": "hi\n"},
		cache: func(baseURL string) (exec.Cache, http.Handler, *cache.Tokens) {
			d, err := cache.NewDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			st = cache.NewStore(d, 0)
			return exec.Cache{Store: st}, nil, nil
		}})
	ctx := context.Background()
	save := func(repo, key string) {
		t.Helper()
		if _, err := st.Save(ctx, cache.Entry{Repo: repo, Ref: "refs/heads/main", Key: key, Version: "v"}, strings.NewReader(key), -1); err != nil {
			t.Fatal(err)
		}
	}
	other := &store.Repo{OrgID: 1, Name: "octo/other", URL: "https://example.com/octo/other", Forge: "github", Secret: "s", Branch: "main"}
	if err := h.st.CreateRepo(ctx, other); err != nil {
		t.Fatal(err)
	}
	save(cache.TenantRepo(1, "octo/repo"), "old")
	save(cache.TenantRepo(1, "octo/other"), "old")
	save(cache.TenantRepo(1, "octo/unset"), "old") // no repository of that name: no setting
	h.api("PUT", "/api/retention", store.Retention{CachesDays: ptr(7)}, http.StatusOK, nil)
	h.api("PUT", "/api/repos/"+itoa(other.ID)+"/retention", store.Retention{CachesDays: ptr(30)}, http.StatusOK, nil)
	keys := func(repo string) int {
		es, err := st.Entries(ctx, cache.TenantRepo(1, repo))
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	h.srv.sweepCaches(ctx)
	if keys("octo/repo") != 1 || keys("octo/other") != 1 {
		t.Fatal("fresh caches were evicted")
	}
	now.Add(int64(8 * 24 * time.Hour))
	h.srv.sweepCaches(ctx)
	if keys("octo/repo") != 0 || keys("octo/other") != 1 || keys("octo/unset") != 1 {
		t.Errorf("after 8 days: repo %d (7 days: want 0), other %d (30 days: want 1), unset %d (want 1)",
			keys("octo/repo"), keys("octo/other"), keys("octo/unset"))
	}
	now.Add(int64(30 * 24 * time.Hour))
	h.srv.sweepCaches(ctx)
	if keys("octo/other") != 0 {
		t.Error("after 38 days the 30-day repository kept its cache")
	}
}
