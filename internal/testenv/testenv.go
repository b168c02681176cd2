// Package testenv tells tests what their environment offers: the test images,
// a Docker engine, the third-party compatibility material.
//
// One rule for everything missing: under CI (env CI set and not "false"/"0")
// the test fails with the reason, because CI must run everything; elsewhere it
// is skipped with one line, so `go test ./...` works on a bare laptop.
// scripts/test.sh provides all of it.
package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// Environment variables set by scripts/test.sh.
const (
	EnvImage        = "CONVEYOR_TEST_IMAGE"         // Debian image with bash, python3, git, node
	EnvBusyboxImage = "CONVEYOR_TEST_BUSYBOX_IMAGE" // tiny image with busybox applets
	EnvCompatDir    = "CONVEYOR_COMPAT_DIR"         // root of the compat material
)

// tb is the part of testing.TB the helpers use, so their tests can record
// skips and failures without ending the test that checks them.
type tb interface {
	Helper()
	Skip(args ...any)
	Fatal(args ...any)
}

// InCI reports whether the tests run under CI, where nothing may be skipped.
func InCI() bool {
	switch os.Getenv("CI") {
	case "", "0", "false":
		return false
	}
	return true
}

// missing fails the test under CI and skips it elsewhere.
func missing(t tb, reason string) {
	t.Helper()
	if InCI() {
		t.Fatal(reason + " (required under CI; run ./scripts/test.sh)")
		return
	}
	t.Skip(reason)
}

// Image returns the Debian test image (bash, coreutils, python3, git, node).
func Image(t testing.TB) string { return image(t, EnvImage) }

// BusyboxImage returns the minimal busybox test image.
func BusyboxImage(t testing.TB) string { return image(t, EnvBusyboxImage) }

func image(t tb, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		missing(t, env+" not set; skipping (./scripts/test.sh builds the image and sets it)")
	}
	return v
}

// pingTimeout bounds the engine check; a dead socket must not hang tests.
const pingTimeout = 5 * time.Second

// ping asks the engine once per test binary: every test would get the same answer.
var ping = sync.OnceValue(func() error { return pingDocker(pingTimeout) })

func pingDocker(timeout time.Duration) error {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err = cli.Ping(ctx)
	return err
}

// DockerAvailable fails or skips the test unless a Docker engine answers
// (DOCKER_HOST and friends are honoured, as by the docker CLI).
func DockerAvailable(t testing.TB) { dockerAvailable(t, ping) }

func dockerAvailable(t tb, ping func() error) {
	t.Helper()
	if err := ping(); err != nil {
		missing(t, fmt.Sprintf("no Docker engine answers: %v; skipping", err))
	}
}

// CompatDir returns the folder sub (e.g. "expressions") of the compat
// material: $CONVEYOR_COMPAT_DIR, or ../shared/compat next to the repo root.
func CompatDir(t testing.TB, sub string) string { return compatDir(t, sub) }

func compatDir(t tb, sub string) string {
	t.Helper()
	root := os.Getenv(EnvCompatDir)
	if root == "" {
		repo, err := repoRoot()
		if err != nil {
			missing(t, fmt.Sprintf("compat material not found (%v); skipping conformance", err))
			return ""
		}
		root = filepath.Join(filepath.Dir(repo), "shared", "compat")
	}
	dir := filepath.Join(root, sub)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		missing(t, fmt.Sprintf("compat material not found at %s; skipping conformance", dir))
		return ""
	}
	return dir
}

// repoRoot walks up from the working directory (a package's folder under go
// test) to the folder holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Environment variables naming the test S3-compatible server (scripts/s3.sh).
const (
	EnvS3          = "CONVEYOR_TEST_S3"            // http://127.0.0.1:PORT
	EnvS3AccessKey = "CONVEYOR_TEST_S3_ACCESS_KEY" // its access key
	EnvS3SecretKey = "CONVEYOR_TEST_S3_SECRET_KEY" // its secret key
)

// S3 returns the test S3-compatible server's URL and credentials.
func S3(t testing.TB) (url, accessKey, secretKey string) {
	t.Helper()
	url = os.Getenv(EnvS3)
	if url == "" {
		missing(t, EnvS3+" not set; skipping (./scripts/test.sh starts an S3-compatible server and sets it)")
	}
	return url, os.Getenv(EnvS3AccessKey), os.Getenv(EnvS3SecretKey)
}

// EnvReport names a file where tests append the one-line results that CI
// must show (conformance counts); the test command prints it at the end.
const EnvReport = "CONVEYOR_TEST_REPORT"

// Report logs a result line and appends it to the report file, if any:
// go test hides the output of passing tests, the report file does not.
func Report(t testing.TB, line string) {
	t.Helper()
	t.Log(line)
	path := os.Getenv(EnvReport)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("report: %v", err)
		return
	}
	defer f.Close()
	if _, err := f.WriteString(line + "\n"); err != nil {
		t.Errorf("report: %v", err)
	}
}

// EnvPostgres is the DSN of a PostgreSQL the tests may create schemas in
// (scripts/postgres.sh starts one; scripts/test.sh sets it).
const EnvPostgres = "CONVEYOR_TEST_POSTGRES"

// Postgres returns the test PostgreSQL DSN; without one the test is skipped
// (failed under CI).
func Postgres(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvPostgres)
	if dsn == "" {
		missing(t, EnvPostgres+" is not set (scripts/postgres.sh starts a test PostgreSQL)")
	}
	return dsn
}

// EnvKubeconfig is the kubeconfig of a test Kubernetes cluster
// (scripts/k8s/up.sh starts one; scripts/test.sh sets it).
const EnvKubeconfig = "CONVEYOR_TEST_KUBECONFIG"

// Kubeconfig returns the test cluster's kubeconfig path; without one the
// test is skipped (failed under CI).
func Kubeconfig(t testing.TB) string {
	t.Helper()
	return kubeconfig(t)
}

func kubeconfig(t tb) string {
	t.Helper()
	p := os.Getenv(EnvKubeconfig)
	if p == "" {
		missing(t, EnvKubeconfig+" is not set (scripts/k8s/up.sh starts a test Kubernetes cluster)")
		return ""
	}
	if _, err := os.Stat(p); err != nil {
		missing(t, EnvKubeconfig+": "+err.Error())
		return ""
	}
	return p
}
