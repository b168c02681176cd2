package exec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/cache"
	"github.com/conveyor-ci/conveyor/internal/glob"
)

func cacheStore(t *testing.T) *cache.Store {
	t.Helper()
	d, err := cache.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return cache.NewStore(d, 0)
}

// The native actions/cache saves in the post step of one run and hits in
// the next: workspace paths with globs and an exclusion, ~ and an absolute
// path outside the workspace (stored under anchors, restored in place).
func TestNativeCacheSaveThenHit(t *testing.T) {
	store := cacheStore(t)
	home := t.TempDir()
	outside := filepath.Join(t.TempDir(), "outside")
	src := `
on: push
jobs:
  build:
    runs-on: x
    steps:
      - id: c
        uses: actions/cache@v4
        with:
          key: deps-${{ runner.os }}-1
          restore-keys: deps-
          path: |
            deps/**/*.txt
            !deps/skip.txt
            ~/.toolcache-test
            ` + outside + `
      - run: |
          echo "hit=${{ steps.c.outputs.cache-hit }}"
          if [ "${{ steps.c.outputs.cache-hit }}" = true ]; then
            set -e
            test "$(cat deps/a/one.txt)" = one
            test "$(cat deps/two.txt)" = two
            test ! -e deps/skip.txt
            test "$(cat ~/.toolcache-test/t)" = tool
            test "$(cat ` + outside + `/o)" = out
            test -L deps/a/link.txt && test "$(cat deps/a/link.txt)" = one
            echo restored-ok
          else
            mkdir -p deps/a ~/.toolcache-test ` + outside + `
            echo one > deps/a/one.txt; echo two > deps/two.txt; echo skip > deps/skip.txt
            ln -s one.txt deps/a/link.txt
            echo tool > ~/.toolcache-test/t; echo out > ` + outside + `/o
          fi
`
	opts := func() Options {
		return Options{Cache: Cache{Store: store, Home: home}, Env: map[string]string{"HOME": home}}
	}
	res, rec := run(t, nil, src, opts())
	if resultOf(res, "build") != Success || !rec.hasOutput("build", "hit=") {
		t.Fatalf("first run: %s\n%s", resultsString(res), rec.dump())
	}
	if !strings.Contains(rec.dump(), "Cache saved with key: deps-Linux-1") {
		t.Fatalf("first run did not save:\n%s", rec.dump())
	}
	// The next run starts from scratch: the files come from the cache only.
	os.RemoveAll(filepath.Join(home, ".toolcache-test"))
	os.RemoveAll(outside)
	res, rec = run(t, nil, src, opts())
	if resultOf(res, "build") != Success || !rec.hasOutput("build", "hit=true") || !rec.hasOutput("build", "restored-ok") {
		t.Fatalf("second run: %s\n%s", resultsString(res), rec.dump())
	}
	if !strings.Contains(rec.dump(), "Cache hit occurred on the primary key deps-Linux-1, not saving cache.") {
		t.Fatalf("second run saved again:\n%s", rec.dump())
	}
}

// restore-keys, the restore/save sub-actions, lookup-only,
// fail-on-cache-miss, and no save when the job fails.
func TestNativeCacheInputs(t *testing.T) {
	store := cacheStore(t)
	opts := Options{Cache: Cache{Store: store}}
	save := `
on: push
jobs:
  j:
    runs-on: x
    steps:
      - run: mkdir -p d && echo v1 > d/f
      - uses: actions/cache/save@v4
        with: {path: d, key: k-1}
      - run: echo v2 > d/f
      - uses: actions/cache/save@v4
        with: {path: d, key: k-2}
`
	if res, rec := run(t, nil, save, opts); resultOf(res, "j") != Success {
		t.Fatalf("save: %s\n%s", resultsString(res), rec.dump())
	}
	restore := `
on: push
jobs:
  j:
    runs-on: x
    steps:
      - id: r
        uses: actions/cache/restore@v4
        with: {path: d, key: k-3, restore-keys: "k-"}
      - id: l
        uses: actions/cache/restore@v4
        with: {path: other, key: k-1, lookup-only: true}
      - id: m
        uses: actions/cache/restore@v4
        with: {path: d, key: k-1, lookup-only: true}
      - run: |
          echo "r=${{ steps.r.outputs.cache-hit }},${{ steps.r.outputs.cache-primary-key }},${{ steps.r.outputs.cache-matched-key }},$(cat d/f)"
          echo "l=${{ steps.l.outputs.cache-hit }}"
          echo "m=${{ steps.m.outputs.cache-hit }},${{ steps.m.outputs.cache-matched-key }}"
`
	res, rec := run(t, nil, restore, opts)
	if resultOf(res, "j") != Success || !rec.hasOutput("j", "r=false,k-3,k-2,v2") || !rec.hasOutput("j", "l=") || !rec.hasOutput("j", "m=true,k-1") {
		t.Fatalf("restore: %s\n%s", resultsString(res), rec.dump())
	}
	miss := `
on: push
jobs:
  j:
    runs-on: x
    steps:
      - uses: actions/cache@v4
        with: {path: d, key: none, fail-on-cache-miss: true}
      - run: echo not-reached
`
	res, rec = run(t, nil, miss, opts)
	if resultOf(res, "j") != Failure || rec.hasOutput("j", "not-reached") || !strings.Contains(rec.dump(), "fail-on-cache-miss") {
		t.Fatalf("fail-on-cache-miss: %s\n%s", resultsString(res), rec.dump())
	}
	failed := `
on: push
jobs:
  j:
    runs-on: x
    steps:
      - uses: actions/cache@v4
        with: {path: d, key: failed-job}
      - run: mkdir -p d && echo x > d/f && exit 1
`
	run(t, nil, failed, opts)
	res, rec = run(t, nil, strings.ReplaceAll(miss, "key: none", "key: failed-job"), opts)
	if resultOf(res, "j") != Failure {
		t.Fatalf("a failed job saved its cache: %s\n%s", resultsString(res), rec.dump())
	}
}

func TestNativeAction(t *testing.T) {
	for uses, want := range map[string]bool{
		"actions/cache@v4": true, "actions/cache/restore@v4": true, "Actions/Cache/Save@main": true,
		"actions/checkout@v4": true, "actions/upload-artifact@v4": true,
		"actions/setup-node@v4": false, "actions/cache-other@v1": false, "./.github/actions/cache": false,
	} {
		if got := NativeAction(uses); got != want {
			t.Errorf("NativeAction(%q) = %v, want %v", uses, got, want)
		}
	}
}

// Archive names map back only under the step's own paths; anchors name
// the workspace, the home folder and folders above the workspace.
func TestCachePathsNames(t *testing.T) {
	root := t.TempDir()
	ws := filepath.Join(root, "jobs", "1", "workspace")
	home := filepath.Join(root, "home")
	pats, err := glob.Parse("deps\n~/.npm\n"+filepath.Join(root, "opt", "tool")+"\n!deps/skip", ws, home)
	if err != nil {
		t.Fatal(err)
	}
	cp := &cachePaths{ws: ws, home: home, patterns: pats}
	for _, p := range pats {
		if !p.Negate {
			cp.roots = append(cp.roots, p.Root())
		}
	}
	for host, name := range map[string]string{
		filepath.Join(ws, "deps", "a"):            "ws/deps/a",
		filepath.Join(home, ".npm"):               "home/.npm",
		filepath.Join(root, "opt", "tool", "bin"): "up3/opt/tool/bin",
	} {
		got, err := cp.name(host)
		if err != nil || got != name {
			t.Errorf("name(%s) = %q, %v; want %q", host, got, err, name)
		}
		dir, rel, err := cp.mapper(name)
		if err != nil || filepath.Join(dir, filepath.FromSlash(rel)) != host {
			t.Errorf("mapper(%q) = %s %s %v; want %s", name, dir, rel, err, host)
		}
	}
	for _, bad := range []string{"ws/other/x", "home/.ssh/id_rsa", "up3/etc/passwd", "up0/x", "up99/x", "zz/deps", "ws"} {
		if _, _, err := cp.mapper(bad); err == nil {
			t.Errorf("mapper(%q) accepted a name outside the step's paths", bad)
		}
	}
}
