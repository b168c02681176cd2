package exec

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend/docker"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// On the Docker backend: the native actions/cache saves and hits
// (workspace and runner.temp paths, packed on the host side of the job
// folder), and the real actions/cache in the container reaches the cache
// service at the bridge's address.
func TestCacheDocker(t *testing.T) {
	image := testenv.Image(t)
	testenv.DockerAvailable(t)
	bin := buildRunner(t)
	d, err := docker.New(docker.Options{RunnerBinary: bin})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	gw, err := d.HostAddress(ctx)
	if err != nil {
		t.Fatal(err)
	}
	store := cacheStore(t)
	rt := cacheService(t, store, net.JoinHostPort(gw, "0"))
	repo := cacheActionRepo(t, "v4")
	opts := func() Options {
		return Options{Backend: d, Platforms: map[string]string{"x": image}, RepoDir: repo, Cache: Cache{Store: store, Runtime: rt}}
	}
	src := `
on: push
jobs:
  native:
    runs-on: x
    steps:
      - id: c
        uses: actions/cache@v4
        with:
          key: native-1
          path: |
            out
            ${{ runner.temp }}/t
      - run: |
          echo "hit=${{ steps.c.outputs.cache-hit }}"
          if [ "${{ steps.c.outputs.cache-hit }}" = true ]; then
            test "$(cat out/f)" = in-container && test "$(cat "$RUNNER_TEMP/t/g")" = temp && test -x out/run.sh && echo native-ok
          else
            mkdir -p out "$RUNNER_TEMP/t"; echo in-container > out/f; echo temp > "$RUNNER_TEMP/t/g"
            printf '#!/bin/sh\n' > out/run.sh && chmod 755 out/run.sh
          fi
` + strings.TrimPrefix(realCacheWorkflow, "\non: push\njobs:\n")
	res, rec := run(t, ctx, src, opts())
	if resultOf(res, "native") != Success || resultOf(res, "build") != Success {
		t.Fatalf("first run: %s\n%s", resultsString(res), rec.dump())
	}
	res, rec = run(t, ctx, src, opts())
	if !rec.hasOutput("native", "native-ok") || !rec.hasOutput("build", "restored-ok") {
		t.Fatalf("second run: %s\n%s", resultsString(res), rec.dump())
	}
}
