package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// `conveyor run` twice with one --cache-dir: the first run saves (native
// actions/cache), the second hits; an @actions/cache client in a step
// finds the protocol's env. With S3 settings the same holds against the
// test S3 server.
func TestRunCache(t *testing.T) {
	t.Run("dir", func(t *testing.T) { runCacheTwice(t, []string{"--cache-dir", t.TempDir()}) })
	t.Run("s3", func(t *testing.T) {
		url, ak, sk := testenv.S3(t)
		t.Setenv("CONVEYOR_CACHE_S3_ACCESS_KEY", ak)
		t.Setenv("CONVEYOR_CACHE_S3_SECRET_KEY", sk)
		runCacheTwice(t, []string{"--cache-dir", t.TempDir(), "--cache-s3-url", url, "--cache-s3-bucket", "conveyor-run-test",
			"--cache-s3-prefix", fmt.Sprintf("run-test-%d", time.Now().UnixNano()), "--cache-s3-region", "us-east-1"})
	})
}

func runCacheTwice(t *testing.T, args []string) {
	dir := writeWorkflow(t, `on: push
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - id: c
        uses: actions/cache@v4
        with: {path: out, key: run-cache-1}
      - run: |
          echo "hit=${{ steps.c.outputs.cache-hit }} protocol=${ACTIONS_CACHE_URL:+set}${ACTIONS_RUNTIME_TOKEN:+,token}"
          if [ "${{ steps.c.outputs.cache-hit }}" = true ]; then cat out/f; else mkdir -p out && echo from-first-run > out/f; fi
`)
	for i, want := range []string{"hit= protocol=set,token", "from-first-run"} {
		var out, errOut bytes.Buffer
		code := runMain(context.Background(), append([]string{"-C", dir, "--backend", "host"}, args...), &out, &errOut)
		if code != 0 || !strings.Contains(out.String(), want) {
			t.Fatalf("run %d: exit %d, want %q in\n%s\n%s", i+1, code, want, out.String(), errOut.String())
		}
	}
	os.RemoveAll(filepath.Join(dir, "out"))
}
