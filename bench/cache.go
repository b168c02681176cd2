package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// cacheMB is the size of the cache case's tree (CI runs a small one).
var cacheMB = flag.Int("cache-mb", 1024, "size in MB of the tree the cache case saves and restores (many ~16 KB files)")

// cacheRuns bounds the cache case's rounds: a 1 GB round takes a while.
const cacheRuns = 3

// cacheCase: `conveyor run` of a job that saves a tree with the native
// actions/cache/save and restores it in place with actions/cache/restore
// (tar+zstd into the local cache store and back), against
// `tar | zstd` to a file and `zstd -d | tar -x` back over the same tree.
func cacheCase(h *harness) []row {
	if _, err := exec.LookPath("zstd"); err != nil {
		h.fail("the floor needs the zstd command (apt-get install zstd)")
	}
	tree := filepath.Join(h.tmp, "cache-tree")
	files, bytes := makeTree(h, tree, int64(*cacheMB)<<20)
	dir := h.repo(workflow{})
	wf := fmt.Sprintf(`on: push
jobs:
  cache:
    runs-on: ubuntu-latest
    steps:
      - id: k
        run: echo "key=bench-$(date +%%s%%N)" >> "$GITHUB_OUTPUT"
      - uses: actions/cache/save@v4
        with: {path: %q, key: "${{ steps.k.outputs.key }}"}
      - uses: actions/cache/restore@v4
        with: {path: %q, key: "${{ steps.k.outputs.key }}", fail-on-cache-miss: true}
`, tree, tree)
	if err := os.WriteFile(filepath.Join(dir, ".github", "workflows", "bench.yml"), []byte(wf), 0o644); err != nil {
		h.fail("%v", err)
	}
	run := conveyorRun{dir: dir, args: []string{"run", "--no-color", "--backend", "host",
		"--cache-dir", filepath.Join(h.tmp, "cache-store"), "--cache-size-limit", strconv.Itoa(3*(*cacheMB)) + "m"}}
	archive := filepath.Join(h.tmp, "cache-floor.tar.zst")
	floor := func() time.Duration {
		t0 := time.Now()
		sh := fmt.Sprintf("set -e; tar -C %q -cf - . | zstd -q -f -o %q; zstd -q -dc %q | tar -C %q -xf -", tree, archive, archive, tree)
		if out, err := exec.CommandContext(h.ctx, "sh", "-c", sh).CombinedOutput(); err != nil {
			h.fail("floor: %v\n%s", err, out)
		}
		return time.Since(t0)
	}
	n := h.n
	h.n = min(h.n, cacheRuns)
	r := h.timings("cache", func() time.Duration { return h.exec(run, false).wall }, floor)
	h.n = n
	ours, fl := median(r[0]), median(r[1])
	size := ""
	if fi, err := os.Stat(archive); err == nil {
		size = fmt.Sprintf(", %s compressed", fmtMB(fi.Size()))
	}
	return []row{{name: fmt.Sprintf("cache save+restore %d MB", *cacheMB), ours: fmtDur(ours), floor: fmtDur(fl) + " (tar|zstd)",
		ratio: fmtRatio(ours, fl), target: "<= 2x", ok: okIf(ours <= 2*fl),
		comment: fmt.Sprintf("%d files, %s%s; ours is the whole `conveyor run` (host) of a job that saves with actions/cache/save and restores in place with actions/cache/restore; floor: tar -c | zstd -3 to a file, zstd -d | tar -x back over the tree",
			files, fmtMB(bytes), size)}}
}

// makeTree writes about total bytes as files of 4–28 KB, 256 to a folder,
// half-compressible (16 symbols a byte), from a fixed seed.
func makeTree(h *harness, dir string, total int64) (files int, written int64) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 28<<10)
	for written < total {
		size := 4<<10 + rng.IntN(24<<10)
		for i := range buf[:size] {
			buf[i] = 'a' + byte(rng.IntN(16))
		}
		p := filepath.Join(dir, fmt.Sprintf("d%04d", files/256), fmt.Sprintf("f%05d.txt", files))
		if files%256 == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				h.fail("%v", err)
			}
		}
		if err := os.WriteFile(p, buf[:size], 0o644); err != nil {
			h.fail("%v", err)
		}
		files++
		written += int64(size)
	}
	return files, written
}
