package exec

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/conveyor-ci/conveyor/internal/backend/docker"
	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

func dockerClient(t *testing.T) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// runThrowaway runs cmd in a container of image with mounts and removes
// it; with commit, the container is first committed as that image tag.
func runThrowaway(t *testing.T, ctx context.Context, cli *client.Client, image string, cmd []string, mounts []mount.Mount, commit string) {
	t.Helper()
	c, err := cli.ContainerCreate(ctx, &container.Config{Image: image, Entrypoint: []string{}, Cmd: cmd},
		&container.HostConfig{Mounts: mounts}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.ContainerRemove(context.WithoutCancel(ctx), c.ID, container.RemoveOptions{Force: true})
	if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitC, errC := cli.ContainerWait(ctx, c.ID, container.WaitConditionNotRunning)
	select {
	case w := <-waitC:
		if w.StatusCode != 0 {
			logs, _ := cli.ContainerLogs(ctx, c.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
			var b strings.Builder
			if logs != nil {
				io.Copy(&b, logs)
				logs.Close()
			}
			t.Fatalf("%v exited with %d: %s", cmd, w.StatusCode, b.String())
		}
	case err := <-errC:
		t.Fatal(err)
	}
	if commit != "" {
		if _, err := cli.ContainerCommit(ctx, c.ID, container.CommitOptions{Reference: commit}); err != nil {
			t.Fatal(err)
		}
	}
}

// toolCacheVolume makes a volume of its own for the test, filled with the
// machine's toolchains by a throwaway container (the product's volume is
// docker.DefaultToolCacheVolume, filled by setup-* actions).
func toolCacheVolume(t *testing.T, ctx context.Context, cli *client.Client, image string, tc toolchains) string {
	t.Helper()
	var b [4]byte
	rand.Read(b[:])
	name := "conveyor-test-toolcache-" + hex.EncodeToString(b[:])
	if _, err := cli.VolumeCreate(ctx, volume.CreateOptions{Name: name}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.VolumeRemove(context.Background(), name, true) })
	d := docker.ToolCacheDir
	goDir := fmt.Sprintf("%s/go/%s/x64", d, tc.goVersion)
	nodeDir := fmt.Sprintf("%s/node/%s/x64", d, tc.nodeVersion)
	script := fmt.Sprintf(`set -e
mkdir -p %[1]s/go/%[2]s %[3]s/bin
cp -a /src/go %[4]s
cp /src/node %[3]s/bin/node
touch %[4]s.complete %[3]s.complete`, d, tc.goVersion, nodeDir, goDir)
	runThrowaway(t, ctx, cli, image, []string{"sh", "-c", script}, []mount.Mount{
		{Type: mount.TypeBind, Source: tc.goRoot, Target: "/src/go", ReadOnly: true},
		{Type: mount.TypeBind, Source: tc.nodePath, Target: "/src/node", ReadOnly: true},
		{Type: mount.TypeVolume, Source: name, Target: d},
	}, "")
	return name
}

// noNodeImage is the Debian test image without node: built once per base
// image, by a throwaway container that removes it, committed.
func noNodeImage(t *testing.T, ctx context.Context, cli *client.Client, base string) string {
	t.Helper()
	info, err := cli.ImageInspect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	tag := "conveyor-test/no-node:" + strings.TrimPrefix(info.ID, "sha256:")[:12]
	if _, err := cli.ImageInspect(ctx, tag); err == nil {
		return tag
	}
	runThrowaway(t, ctx, cli, base, []string{"sh", "-c", "rm -f /usr/bin/node /usr/bin/nodejs && ! command -v node"}, nil, tag)
	return tag
}

// In job containers, setup-go and setup-node find the toolchains in the
// tool cache volume at /opt/hostedtoolcache and put them first on PATH,
// offline. The Debian image's node is 18: node20 and node24 actions run on
// the node Conveyor provides (the host's 20). Without it, the node20 ones
// (setup-go v5, setup-node v4) run on the image's 18, within the
// tolerance, and the node24 job fails before its first step.
func TestSetupActionsDocker(t *testing.T) {
	image := testenv.Image(t)
	testenv.DockerAvailable(t)
	tc := hostToolchains(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cli := dockerClient(t)
	vol := toolCacheVolume(t, ctx, cli, image, tc)
	repo := t.TempDir()
	cloneSetupActions(t, repo)
	bin := buildRunner(t)
	// Remote: the same engine, with Conveyor's node copied in instead of
	// bind-mounted (the tool cache is a volume either way).
	for _, eng := range []docker.Engine{docker.EngineLocal, docker.EngineRemote} {
		t.Run(string(eng), func(t *testing.T) {
			d, err := docker.New(docker.Options{RunnerBinary: bin, Engine: eng, Node: tc.nodePath, ToolCache: vol})
			if err != nil {
				t.Fatal(err)
			}
			res, rec := run(t, ctx, setupActionsWorkflow(tc, "x"), Options{Backend: d, Platforms: map[string]string{"x": image}, RepoDir: repo})
			checkSetupActions(t, res, rec, tc, docker.ToolCacheDir)
		})
	}

	t.Run("image-node-18", func(t *testing.T) {
		d, err := docker.New(docker.Options{RunnerBinary: bin, ToolCache: vol})
		if err != nil {
			t.Fatal(err)
		}
		res, rec := run(t, ctx, setupActionsWorkflow(tc, "x"), Options{Backend: d, Platforms: map[string]string{"x": image}, RepoDir: repo})
		if resultOf(res, "node24") != Failure || !strings.Contains(jobResult(res, "node24").Error, "setup-go-v6 (runs.using: node24) needs Node.js 24 (20 or newer may do)") {
			t.Errorf("node24 job: %s", resultsString(res))
		}
		out := jobOutput(rec, "node20")
		for _, want := range []string{"go at " + docker.ToolCacheDir + "/go/" + tc.goVersion + "/x64/bin/go", "node says v" + tc.nodeVersion} {
			if !strings.Contains(out, want) {
				t.Errorf("node20 job: missing %q in\n%s", want, rec.dump())
			}
		}
	})
}

// Which node runs a JavaScript action in a container: the image's when it
// is of the version asked for (node16 on Debian's 18); Conveyor's when the
// image's is older (node20) or missing; in an image without glibc
// (busybox) Conveyor's through the loader and C library it brings; on a
// local engine (bind mounts) and a remote one (copied in). Without
// Conveyor's node, a job whose image has none fails before its first step.
func TestNodeProvidedDocker(t *testing.T) {
	image := testenv.Image(t)
	busybox := testenv.BusyboxImage(t)
	testenv.DockerAvailable(t)
	tc := hostToolchains(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	noNode := noNodeImage(t, ctx, dockerClient(t), image)
	bin := buildRunner(t)
	repo := t.TempDir()
	files := map[string]string{}
	for _, v := range []string{"16", "20"} {
		files[".github/actions/js"+v+"/action.yml"] = "name: js\nruns:\n  using: node" + v + "\n  main: main.js\n  post: post.js\n"
		files[".github/actions/js"+v+"/main.js"] = `console.log("node " + process.version + " at " + process.execPath)`
		files[".github/actions/js"+v+"/post.js"] = `console.log("post on node " + process.version + " at " + process.execPath)`
	}
	writeFiles(t, repo, files)
	src := `on: push
jobs:
  image-node:
    runs-on: debian
    steps:
      - uses: ./.github/actions/js16
  newer:
    runs-on: debian
    steps:
      - uses: ./.github/actions/js20
  no-node:
    runs-on: no-node
    steps:
      - uses: ./.github/actions/js20
  busybox:
    runs-on: busybox
    steps:
      - run: echo FIRST STEP RAN
      - uses: ./.github/actions/js20
`
	for _, eng := range []docker.Engine{docker.EngineLocal, docker.EngineRemote} {
		t.Run(string(eng), func(t *testing.T) {
			d, err := docker.New(docker.Options{RunnerBinary: bin, Engine: eng, Node: tc.nodePath, NodeVersion: "v" + tc.nodeVersion})
			if err != nil {
				t.Fatal(err)
			}
			res, rec := run(t, ctx, src, Options{Backend: d, RepoDir: repo,
				Platforms: map[string]string{"debian": image, "no-node": noNode, "busybox": busybox}})
			provided := "node v" + tc.nodeVersion + " at /__conveyor/node/bin/node"
			loaded := "node v" + tc.nodeVersion + " at /__conveyor/node/lib/ld.so"
			for job, want := range map[string]string{"image-node": "node v18.", "newer": provided, "no-node": provided, "busybox": loaded} {
				if resultOf(res, job) != Success {
					t.Fatalf("%s: %s\n%s", job, resultsString(res), rec.dump())
				}
				out := jobOutput(rec, job)
				if !strings.Contains(out, ":"+want) || !strings.Contains(out, ":post on "+want) {
					t.Errorf("%s: missing %q (main and post) in\n%s", job, want, out)
				}
			}
			if out := jobOutput(rec, "image-node"); !strings.Contains(out, " at /usr/bin/node") {
				t.Errorf("image-node did not run the image's node:\n%s", out)
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		d, err := docker.New(docker.Options{RunnerBinary: bin})
		if err != nil {
			t.Fatal(err)
		}
		res, rec := run(t, ctx, src, Options{Backend: d, RepoDir: repo, Platforms: map[string]string{"debian": image, "no-node": noNode, "busybox": busybox}})
		for _, job := range []string{"no-node", "busybox"} {
			if resultOf(res, job) != Failure {
				t.Fatalf("%s: %s", job, resultsString(res))
			}
			if out := jobOutput(rec, job); strings.Contains(out, "FIRST STEP RAN") || strings.Contains(out, "node v") {
				t.Errorf("%s: a step ran:\n%s", job, out)
			}
			msg := jobResult(res, job).Error
			for _, want := range []string{"./.github/actions/js20 (runs.using: node20) needs Node.js 20", "(node: not found)", "--node PATH"} {
				if !strings.Contains(msg, want) {
					t.Errorf("%s: error %q lacks %q", job, msg, want)
				}
			}
		}
		if resultOf(res, "image-node") != Success || resultOf(res, "newer") != Success {
			// node20 on Debian's node 18: within the tolerance when there is no newer.
			t.Errorf("the image's node did not run: %s\n%s", resultsString(res), rec.dump())
		}
	})
}

// The tool cache outlives jobs and runs: what one run's job writes there,
// the next run's job finds, on the host (a folder) and in containers (a
// volume); RUNNER_TOOL_CACHE, AGENT_TOOLSDIRECTORY and runner.tool_cache
// all name it.
func TestToolCachePersists(t *testing.T) {
	image := testenv.Image(t)
	testenv.DockerAvailable(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cli := dockerClient(t)
	var b [4]byte
	rand.Read(b[:])
	vol := "conveyor-test-toolcache-" + hex.EncodeToString(b[:])
	t.Cleanup(func() { cli.VolumeRemove(context.Background(), vol, true) })
	d, err := docker.New(docker.Options{RunnerBinary: buildRunner(t), ToolCache: vol})
	if err != nil {
		t.Fatal(err)
	}
	hostDir := t.TempDir()
	for name, c := range map[string]struct {
		opts Options
		dir  string
	}{
		"host":   {Options{Backend: host.New(host.Options{ToolCache: hostDir})}, hostDir},
		"docker": {Options{Backend: d, Platforms: map[string]string{"x": image}}, docker.ToolCacheDir}, // the volume is made on first use
	} {
		t.Run(name, func(t *testing.T) {
			write := `on: push
jobs:
  j:
    runs-on: x
    steps:
      - run: |
          test "$RUNNER_TOOL_CACHE" = "${{ runner.tool_cache }}" && test "$AGENT_TOOLSDIRECTORY" = "$RUNNER_TOOL_CACHE"
          echo "tool cache at $RUNNER_TOOL_CACHE"
          mkdir -p "$RUNNER_TOOL_CACHE/mytool/1.0.0/x64" && echo kept > "$RUNNER_TOOL_CACHE/mytool/1.0.0/x64/f"
`
			read := `on: push
jobs:
  j:
    runs-on: x
    steps:
      - run: echo "found $(cat "$RUNNER_TOOL_CACHE/mytool/1.0.0/x64/f")"
`
			res, rec := run(t, ctx, write, c.opts)
			if resultOf(res, "j") != Success || !strings.Contains(jobOutput(rec, "j"), "tool cache at "+c.dir) {
				t.Fatalf("write: %s\n%s", resultsString(res), rec.dump())
			}
			res, rec = run(t, ctx, read, c.opts)
			if resultOf(res, "j") != Success || !strings.Contains(jobOutput(rec, "j"), "found kept") {
				t.Fatalf("read: %s\n%s", resultsString(res), rec.dump())
			}
		})
	}
}
