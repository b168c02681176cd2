package exec

import (
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/artifact"
	"github.com/conveyor-ci/conveyor/internal/backend/docker"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// On the docker backend the steps write in the container; upload and
// download work on the host side of the shared job directory, and
// absolute paths as the container sees them (github.workspace,
// runner.temp) are mapped to it.
func TestArtifactsDocker(t *testing.T) {
	image := testenv.Image(t)
	testenv.DockerAvailable(t)
	bin := filepath.Join(t.TempDir(), "conveyor")
	build := osexec.Command("go", "build", "-o", bin, "github.com/conveyor-ci/conveyor/cmd/conveyor")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the step runner: %v\n%s", err, out)
	}
	// Remote: the same engine, but the runner and the job folder are
	// copied in and out instead of bind-mounted.
	for _, eng := range []docker.Engine{docker.EngineLocal, docker.EngineRemote} {
		t.Run(string(eng), func(t *testing.T) { artifactsDocker(t, image, bin, eng) })
	}
}

func artifactsDocker(t *testing.T, image, bin string, eng docker.Engine) {
	d, err := docker.New(docker.Options{RunnerBinary: bin, Engine: eng})
	if err != nil {
		t.Fatal(err)
	}
	store := artifact.NewDir(t.TempDir(), 0)
	src := `
on: push
jobs:
  a:
    runs-on: x
    steps:
      - run: |
          mkdir -p out "$RUNNER_TEMP/t"
          echo in-container > out/f.txt
          printf '#!/bin/sh\necho x\n' > out/run.sh && chmod 755 out/run.sh
          echo temp > "$RUNNER_TEMP/t/t.txt"
          echo "greeting=hello" >> "$GITHUB_OUTPUT"
          echo "FROM_ENV_FILE=yes" >> "$GITHUB_ENV"
        id: w
      - uses: docker://` + image + `
        with:
          entrypoint: cp
          args: out/f.txt out/from-action.txt
      - run: |
          set -e
          test "${{ steps.w.outputs.greeting }}" = hello
          test "$FROM_ENV_FILE" = yes
          test "$(cat out/from-action.txt)" = in-container
      - uses: actions/upload-artifact@v4
        with: {name: ws, path: '${{ github.workspace }}/out'}
      - uses: actions/upload-artifact@v4
        with: {name: tmp, path: '${{ runner.temp }}/t/t.txt'}
  b:
    needs: a
    runs-on: x
    steps:
      - uses: actions/download-artifact@v4
        with: {path: '${{ runner.temp }}/all'}
      - run: |
          set -e
          test "$(cat "$RUNNER_TEMP/all/ws/f.txt")" = in-container
          test "$(cat "$RUNNER_TEMP/all/ws/from-action.txt")" = in-container
          test "$("$RUNNER_TEMP/all/ws/run.sh")" = x
          test "$(cat "$RUNNER_TEMP/all/tmp/t.txt")" = temp
          echo docker-ok
`
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, rec := run(t, ctx, src, Options{Backend: d, Platforms: map[string]string{"x": image}, Artifacts: store})
	if resultOf(res, "b") != Success || !rec.hasOutput("b", "docker-ok") {
		t.Fatalf("results: %s\n%s", resultsString(res), rec.dump())
	}
}
