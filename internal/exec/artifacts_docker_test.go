package exec

import (
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/artifact"
	"github.com/conveyor-ci/conveyor/internal/backend/docker"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// buildRunner builds the static conveyor binary the docker backend mounts
// into job containers as their step runner.
func buildRunner(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "conveyor")
	build := osexec.Command("go", "build", "-o", bin, "github.com/conveyor-ci/conveyor/cmd/conveyor")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the step runner: %v\n%s", err, out)
	}
	return bin
}

// On the docker backend the steps write in the container; upload and
// download work on the host side of the shared job directory, and
// absolute paths as the container sees them (github.workspace,
// runner.temp) are mapped to it.
func TestArtifactsDocker(t *testing.T) {
	image := testenv.Image(t)
	testenv.DockerAvailable(t)
	bin := buildRunner(t)
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

// The default shell is resolved in the container, in the step's PATH: bash
// -e where the image has bash, sh -e where it has not, and a bash put on
// the PATH by GITHUB_PATH counts from the next step on.
func TestDefaultShellDocker(t *testing.T) {
	debian, busybox := testenv.Image(t), testenv.BusyboxImage(t)
	testenv.DockerAvailable(t)
	bin := buildRunner(t)
	d, err := docker.New(docker.Options{RunnerBinary: bin})
	if err != nil {
		t.Fatal(err)
	}
	src := `
on: push
jobs:
  deb:
    runs-on: deb
    steps:
      - run: test -n "$BASH_VERSION" && echo "deb bash" || echo "deb sh"
      - run: |
          false
          echo errexit-not-applied
        continue-on-error: true
  bb:
    runs-on: bb
    steps:
      - run: test -n "$BASH_VERSION" && echo "bb bash" || echo "bb sh"
      - run: |
          mkdir -p "$RUNNER_TEMP/fake"
          printf '#!/bin/sh\necho fake-bash-ran "$@"\n' > "$RUNNER_TEMP/fake/bash"
          chmod +x "$RUNNER_TEMP/fake/bash"
          echo "$RUNNER_TEMP/fake" >> "$GITHUB_PATH"
      - run: echo not-shown-by-the-fake-bash
`
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, rec := run(t, ctx, src, Options{Backend: d, Platforms: map[string]string{"deb": debian, "bb": busybox}})
	if resultOf(res, "deb") != Success || resultOf(res, "bb") != Success {
		t.Fatalf("results: %s\n%s", resultsString(res), rec.dump())
	}
	if !rec.hasOutput("deb", "deb bash") || rec.hasOutput("deb", "errexit-not-applied") {
		t.Errorf("debian: %q", rec.output("deb"))
	}
	out := rec.output("bb")
	if len(out) != 2 || out[0] != "bb sh" || !strings.HasPrefix(out[1], "fake-bash-ran -e ") {
		t.Errorf("busybox: %q", out)
	}
}
