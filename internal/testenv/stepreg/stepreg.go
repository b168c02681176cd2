// Package stepreg is a test helper for the kubernetes backend's image
// steps: a container registry on 127.0.0.1 (in-process, real HTTP) with a
// small step image, and the same image imported into the test cluster's
// containerd under the same names (the kubelet never pulls). Used by the
// kubernetes package's and the server's tests.
package stepreg

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/conveyor-ci/conveyor/internal/imageconfig"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// Script is the step image's ENTRYPOINT: it says what it got,
// where it runs (PID 1 of its PID namespace: `conveyor step-wait` in a
// step container, the job container's step runner in an ephemeral one),
// writes its first argument to $GITHUB_OUTPUT and exits as asked.
const Script = `#!/bin/sh
echo "entry: $* | env: $FROM_IMAGE/$STEP_ENV/$INPUT_WHO | pwd: $PWD | pid1: $(tr '\0' ' ' </proc/1/cmdline)"
[ -n "$GITHUB_OUTPUT" ] && echo "said=$1" >>"$GITHUB_OUTPUT"
case $1 in exit) exit "$2" ;; esac
exit 0
`

var (
	imageOnce sync.Once
	imageErr  error
)

// imageBase is the step image in Docker: the busybox test image with
// an ENTRYPOINT, a CMD and an ENV of its own.
const imageBase = "conveyor-test/wait-step:1"

func buildImage(t testing.TB) {
	t.Helper()
	imageOnce.Do(func() {
		dir, err := os.MkdirTemp("", "conveyor-stepimg-")
		if err != nil {
			imageErr = err
			return
		}
		defer os.RemoveAll(dir)
		df := "FROM " + testenv.BusyboxImage(t) + "\nCOPY entry.sh /entry.sh\nENV FROM_IMAGE=image-env\nENTRYPOINT [\"/entry.sh\"]\nCMD [\"default-cmd\"]\n"
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
			imageErr = err
			return
		}
		if err := os.WriteFile(filepath.Join(dir, "entry.sh"), []byte(Script), 0o755); err != nil {
			imageErr = err
			return
		}
		imageErr = runCmd(t, "docker", "build", "-q", "-t", imageBase, dir)
	})
	if imageErr != nil {
		t.Fatal(imageErr)
	}
}

func runCmd(t testing.TB, argv ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return &cmdError{argv: argv, err: err, out: string(out)}
	}
	return nil
}

type cmdError struct {
	argv []string
	err  error
	out  string
}

func (e *cmdError) Error() string {
	return strings.Join(e.argv, " ") + ": " + e.err.Error() + ": " + strings.TrimSpace(e.out)
}

// Registry is a registry on 127.0.0.1 (in-process, real HTTP) with
// the step image, and the same image in the test cluster's containerd
// under the same names (the kubelet never pulls: PullNever).
type Registry struct {
	// Srv is the registry's server (a test may close it).
	Srv  *httptest.Server
	host string
	// Ref and Ref2 are the step image's names in the registry and the
	// cluster; NoNode is in the registry only.
	Ref, Ref2, NoNode string
}

// New starts the registry, pushes the step image and
// imports it into the cluster's containerd (next to the kubeconfig
// scripts/k8s/up.sh writes); all is removed when the test ends.
func New(t testing.TB) *Registry {
	t.Helper()
	buildImage(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	r := &Registry{Srv: srv, host: strings.TrimPrefix(srv.URL, "http://")}
	r.Ref = r.host + "/conveyor-test/wait-step:1"
	r.Ref2 = r.host + "/conveyor-test/wait-step:2"
	r.NoNode = r.host + "/conveyor-test/wait-step:nonode"
	for _, ref := range []string{r.Ref, r.Ref2} {
		if err := runCmd(t, "docker", "tag", imageBase, ref); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = runCmd(t, "docker", "rmi", r.Ref, r.Ref2) })
	tar := filepath.Join(t.TempDir(), "image.tar")
	if err := runCmd(t, "docker", "save", "-o", tar, r.Ref, r.Ref2); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{r.Ref, r.Ref2, r.NoNode} {
		src, err := name.NewTag(strings.Replace(ref, ":nonode", ":1", 1))
		if err != nil {
			t.Fatal(err)
		}
		img, err := tarball.ImageFromPath(tar, &src)
		if err != nil {
			t.Fatal(err)
		}
		dst, err := name.NewTag(ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(dst, img); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(filepath.Dir(testenv.Kubeconfig(t)), "containerd", "containerd.sock")
	ctr := []string{"ctr", "--address", sock, "-n", "k8s.io", "images"}
	if err := runCmd(t, append(ctr, "import", tar)...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = runCmd(t, append(ctr, "rm", r.Ref, r.Ref2)...) })
	return r
}

// Resolver is a lookup of the registry's image configs.
func (r *Registry) Resolver() *imageconfig.Resolver {
	return imageconfig.New(imageconfig.Options{Timeout: 5 * time.Second})
}
