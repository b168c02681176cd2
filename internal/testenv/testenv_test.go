package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder notes a skip or failure instead of ending the test.
type recorder struct{ skipped, fatal string }

func (r *recorder) Helper()           {}
func (r *recorder) Skip(args ...any)  { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatal(args ...any) { r.fatal = fmt.Sprint(args...) }

func TestMissingSkipsOutsideCIAndFailsUnderCI(t *testing.T) {
	for _, tc := range []struct {
		ci        string
		wantFatal bool
	}{{"", false}, {"false", false}, {"0", false}, {"true", true}, {"1", true}} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			t.Setenv(EnvImage, "")
			var r recorder
			if got := image(&r, EnvImage); got != "" {
				t.Fatalf("image = %q, want empty", got)
			}
			if tc.wantFatal && (r.fatal == "" || r.skipped != "") {
				t.Fatalf("want fatal only, got fatal=%q skipped=%q", r.fatal, r.skipped)
			}
			if !tc.wantFatal && (r.skipped == "" || r.fatal != "") {
				t.Fatalf("want skip only, got fatal=%q skipped=%q", r.fatal, r.skipped)
			}
			if msg := r.fatal + r.skipped; !strings.Contains(msg, EnvImage) {
				t.Errorf("reason %q does not name %s", msg, EnvImage)
			}
		})
	}
}

func TestImageFromEnv(t *testing.T) {
	t.Setenv(EnvImage, "img:1")
	t.Setenv(EnvBusyboxImage, "bb:1")
	if got := Image(t); got != "img:1" {
		t.Errorf("Image = %q", got)
	}
	if got := BusyboxImage(t); got != "bb:1" {
		t.Errorf("BusyboxImage = %q", got)
	}
}

func TestDockerAvailable(t *testing.T) {
	t.Setenv("CI", "")
	var r recorder
	dockerAvailable(&r, func() error { return errors.New("connection refused") })
	if !strings.Contains(r.skipped, "connection refused") {
		t.Errorf("skip reason = %q, want the ping error", r.skipped)
	}
	r = recorder{}
	dockerAvailable(&r, func() error { return nil })
	if r.skipped != "" || r.fatal != "" {
		t.Errorf("engine answered but got %+v", r)
	}
}

// TestDockerPing checks the real engine when there is one (always under CI).
func TestDockerPing(t *testing.T) {
	DockerAvailable(t)
}

func TestCompatDir(t *testing.T) {
	t.Setenv("CI", "")
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "expressions"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvCompatDir, root)

	var r recorder
	if got, want := compatDir(&r, "expressions"), filepath.Join(root, "expressions"); got != want || r.skipped != "" {
		t.Errorf("compatDir = %q (skip %q), want %q", got, r.skipped, want)
	}

	r = recorder{}
	compatDir(&r, "nope")
	want := "compat material not found at " + filepath.Join(root, "nope") + "; skipping conformance"
	if r.skipped != want {
		t.Errorf("skip = %q, want %q", r.skipped, want)
	}
}

func TestCompatDirDefault(t *testing.T) {
	t.Setenv(EnvCompatDir, "")
	t.Setenv("CI", "")
	repo, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(filepath.Dir(repo), "shared", "compat")
	var r recorder
	got := compatDir(&r, "")
	if r.skipped != "" {
		if !strings.Contains(r.skipped, want) {
			t.Errorf("skip %q does not name the default %s", r.skipped, want)
		}
		return
	}
	if got != want {
		t.Errorf("compatDir = %q, want %q", got, want)
	}
}

func TestReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report.txt")
	t.Setenv(EnvReport, path)
	Report(t, "one: 1/1")
	Report(t, "two: 2/2")
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "one: 1/1\ntwo: 2/2\n" {
		t.Fatalf("report file = %q, %v", b, err)
	}
}

func TestKubeconfig(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		t.Setenv(EnvKubeconfig, "")
		var r recorder
		kubeconfig(&r)
		if (ci == "" && r.skipped == "") || (ci != "" && r.fatal == "") {
			t.Errorf("CI=%q, unset: skipped %q, fatal %q", ci, r.skipped, r.fatal)
		}
		t.Setenv(EnvKubeconfig, "/no/such/kubeconfig")
		r = recorder{}
		kubeconfig(&r)
		if r.skipped == "" && r.fatal == "" {
			t.Errorf("CI=%q, missing file accepted", ci)
		}
	}
	f := t.TempDir() + "/kc"
	if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvKubeconfig, f)
	var r recorder
	if got := kubeconfig(&r); got != f || r.skipped != "" || r.fatal != "" {
		t.Errorf("got %q, %+v", got, r)
	}
}

func TestChromium(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "chromium")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvChromium, exe)
	if got := Chromium(t); got != exe {
		t.Errorf("Chromium = %q, want %s", got, exe)
	}
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		t.Setenv(EnvChromium, filepath.Join(t.TempDir(), "none"))
		var r recorder
		chromium(&r)
		if ci == "" && (r.skipped == "" || r.fatal != "") || ci != "" && (r.fatal == "" || r.skipped != "") {
			t.Errorf("CI=%q, missing browser: skipped=%q fatal=%q", ci, r.skipped, r.fatal)
		}
	}
	t.Setenv("CI", "")
	t.Setenv(EnvChromium, "")
	t.Setenv("PATH", t.TempDir())
	var r recorder
	if got := chromium(&r); got != "" || !strings.Contains(r.skipped, EnvChromium) {
		t.Errorf("no browser on PATH: %q, skipped=%q", got, r.skipped)
	}
}
