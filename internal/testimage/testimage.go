// Package testimage makes small local images and binaries for integration
// tests of the container backends, without any registry.
package testimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// BusyboxPath is the static busybox the image is made from (Debian's
// busybox-static).
const BusyboxPath = "/bin/busybox"

const layout = "v1" // bump when the image's content changes

// Busybox returns the reference of a local image holding a static busybox
// and its applets under /bin, importing it if it is not there yet. changes
// are Dockerfile instructions applied on import (CMD, ENV, HEALTHCHECK...).
func Busybox(ctx context.Context, cli client.APIClient, changes ...string) (string, error) {
	bb, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return "", fmt.Errorf("testimage: %w (install busybox-static)", err)
	}
	changes = append([]string{`ENV PATH=/usr/local/bin:/usr/bin:/bin`, `CMD ["/bin/sh"]`}, changes...)
	h := sha256.New()
	h.Write([]byte(layout + strings.Join(changes, "\n")))
	h.Write(bb)
	ref := "conveyor-test-busybox:" + hex.EncodeToString(h.Sum(nil)[:6])
	if _, err := cli.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	}
	applets := []string{"sh", "ash", "cat", "echo", "env", "false", "head", "hostname", "httpd", "id", "kill", "ls", "mkdir", "nc", "ps", "pwd", "rm", "seq", "sleep", "tail", "true", "wc", "wget", "yes", "dd", "grep", "sed", "test", "[", "touch", "nproc", "printenv", "cut", "tr", "which", "stat"}
	if out, err := exec.CommandContext(ctx, BusyboxPath, "--list").Output(); err == nil {
		applets = strings.Fields(string(out))
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64) {
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode})
	}
	file := func(name string, mode int64, data []byte) {
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))})
		_, _ = tw.Write(data)
	}
	for _, d := range []string{"bin/", "etc/", "root/", "usr/", "usr/bin/", "var/", "var/www/"} {
		dir(d, 0o755)
	}
	dir("tmp/", 0o1777)
	file("bin/busybox", 0o755, bb)
	file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"))
	file("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n"))
	file("var/www/index.html", 0o644, []byte("hello from httpd\n"))
	for _, a := range applets {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777})
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	rc, err := cli.ImageImport(ctx, image.ImportSource{Source: &buf, SourceName: "-"}, ref, image.ImportOptions{
		Changes: changes,
	})
	if err != nil {
		return "", fmt.Errorf("testimage: import: %w", err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return "", fmt.Errorf("testimage: import: %w", err)
	}
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		return "", fmt.Errorf("testimage: import did not make %s: %w", ref, err)
	}
	return ref, nil
}

// Conveyor builds a static conveyor binary into dir and returns its path.
// It builds ./cmd/conveyor; if that does not compile (other work in
// progress), it falls back to a minimal main that only serves the step
// runner, and says so in the returned note.
func Conveyor(ctx context.Context, dir string) (path, note string, err error) {
	root, err := moduleRoot()
	if err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, "conveyor")
	build := func(pkg string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", path, pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		return cmd.CombinedOutput()
	}
	out, err := build("./cmd/conveyor")
	if err == nil {
		return path, "", nil
	}
	if out2, err2 := build("./internal/testimage/runnermain"); err2 == nil {
		return path, "cmd/conveyor does not build, using internal/testimage/runnermain: " + firstLine(out), nil
	} else {
		return "", "", fmt.Errorf("testimage: go build: %v\n%s\n%s", err2, out, out2)
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("testimage: no caller")
	}
	return filepath.Dir(filepath.Dir(filepath.Dir(file))), nil
}
