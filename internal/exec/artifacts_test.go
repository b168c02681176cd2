package exec

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/artifact"
)

// A job uploads with globs, an exclusion, nested directories and an
// executable; the job that needs it downloads and checks every file.
func TestArtifactsUploadThenDownloadInNextJob(t *testing.T) {
	store := artifact.NewDir(t.TempDir(), 0)
	src := `
on: push
jobs:
  build:
    runs-on: x
    steps:
      - run: |
          mkdir -p out/bin out/lib/deep out/logs .secret
          echo hello > out/readme.txt
          printf '#!/bin/sh\necho run\n' > out/bin/tool && chmod 755 out/bin/tool
          echo deep > out/lib/deep/x.so
          echo noise > out/logs/debug.log
          echo skip > out/lib/skip.tmp
          echo hidden > out/.env
          echo single > one.txt
      - id: up
        uses: actions/upload-artifact@v4
        with:
          name: dist
          path: |
            out/**
            !out/logs
            !**/*.tmp
      - uses: actions/upload-artifact@v3
        with:
          name: single
          path: ${{ github.workspace }}/one.txt
      - run: echo "id=${{ steps.up.outputs.artifact-id }}"
  test:
    needs: build
    runs-on: x
    steps:
      - id: down
        uses: actions/download-artifact@v4
        with:
          name: dist
          path: got
      - uses: actions/download-artifact@main
        with:
          path: all
      - run: |
          set -e
          test "$(cat got/readme.txt)" = hello
          test -x got/bin/tool && test "$(got/bin/tool)" = run
          test "$(cat got/lib/deep/x.so)" = deep
          test ! -e got/logs && test ! -e got/lib/skip.tmp && test ! -e got/.env
          test "$(cat all/single/one.txt)" = single
          test -f all/dist/readme.txt
          echo "path=${{ steps.down.outputs.download-path }}"
          echo ok
`
	res, rec := run(t, nil, src, Options{Artifacts: store})
	if resultOf(res, "build") != Success || resultOf(res, "test") != Success {
		t.Fatalf("results: %s\n%s", resultsString(res), rec.dump())
	}
	if !rec.hasOutput("test", "ok") || !rec.hasOutput("build", "id=1") {
		t.Fatalf("output:\n%s", rec.dump())
	}
	var path string
	for _, l := range rec.output("test") {
		if p, ok := strings.CutPrefix(l, "path="); ok {
			path = p
		}
	}
	if !strings.HasSuffix(path, "/workspace/got") {
		t.Errorf("download-path = %q", path)
	}
	list, _ := store.List(context.Background())
	if len(list) != 2 || list[0].Name != "dist" || list[0].Job != "build" || list[1].Name != "single" {
		t.Fatalf("stored: %+v", list)
	}
}

func TestArtifactsIfNoFilesFoundAndOverwrite(t *testing.T) {
	store := artifact.NewDir(t.TempDir(), 0)
	src := `
on: push
jobs:
  a:
    runs-on: x
    steps:
      - run: echo 1 > f.txt
      - uses: actions/upload-artifact@v4
        with: {name: none-warn, path: nothing/*.txt}
      - uses: actions/upload-artifact@v4
        with: {name: none-ignore, path: nothing, if-no-files-found: ignore}
      - uses: actions/upload-artifact@v4
        with: {name: x, path: f.txt}
      - id: again
        continue-on-error: true
        uses: actions/upload-artifact@v4
        with: {name: x, path: f.txt}
      - run: echo 2 > f.txt
      - uses: actions/upload-artifact@v4
        with: {name: x, path: f.txt, overwrite: true}
      - id: none
        uses: actions/upload-artifact@v4
        with: {name: none-error, path: nothing, if-no-files-found: error}
      - if: always()
        run: echo "again=${{ steps.again.outcome }} none=${{ steps.none.outcome }}"
`
	res, rec := run(t, nil, src, Options{Artifacts: store})
	if resultOf(res, "a") != Failure || !rec.hasOutput("a", "again=failure none=failure") {
		t.Fatalf("results: %s\n%s", resultsString(res), rec.dump())
	}
	var warned, conflict, noneErr bool
	for _, ev := range rec.events() {
		if ev.Type != Annotation {
			continue
		}
		switch {
		case ev.Level == "warning" && strings.Contains(ev.Text, "No files were found with the provided path: nothing/*.txt"):
			warned = true
		case ev.Level == "error" && strings.Contains(ev.Text, `artifact named "x" already exists`):
			conflict = true
		case ev.Level == "error" && strings.Contains(ev.Text, "No files were found"):
			noneErr = true
		}
	}
	if !warned || !conflict || !noneErr {
		t.Fatalf("warned=%v conflict=%v error=%v\n%s", warned, conflict, noneErr, rec.dump())
	}
	list, _ := store.List(context.Background())
	if len(list) != 1 || list[0].Name != "x" {
		t.Fatalf("stored: %+v", list)
	}
	dir := t.TempDir()
	rc, err := store.Open(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := artifact.Extract(rc, dir, artifact.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "f.txt")); string(b) != "2\n" {
		t.Fatalf("overwritten content = %q", b)
	}
}

// An artifact with an entry that leaves the destination is refused and
// writes nothing outside it.
func TestArtifactsDownloadRefusesZipSlip(t *testing.T) {
	store := artifact.NewDir(t.TempDir(), 0)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "../../../escaped.txt", Mode: 0o644, Size: 3})
	tw.Write([]byte("bad"))
	tw.Close()
	gz.Close()
	if _, err := store.Put(context.Background(), artifact.Upload{Name: "evil"}, &buf); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	src := `
on: push
jobs:
  a:
    runs-on: x
    steps:
      - uses: actions/download-artifact@v4
        with: {name: evil, path: sub/dir}
      - uses: actions/download-artifact@v4
        with: {name: missing}
`
	res, rec := run(t, nil, src, Options{Artifacts: store, WorkDir: work})
	if resultOf(res, "a") != Failure {
		t.Fatalf("results: %s", resultsString(res))
	}
	if rec.index(func(ev Event2) bool {
		return ev.Type == Annotation && strings.Contains(ev.Text, "unsafe archive") && strings.Contains(ev.Text, "../../../escaped.txt")
	}) < 0 {
		t.Fatalf("no refusal:\n%s", rec.dump())
	}
	filepath.Walk(filepath.Dir(work), func(p string, _ os.FileInfo, _ error) error {
		if filepath.Base(p) == "escaped.txt" {
			t.Errorf("written outside: %s", p)
		}
		return nil
	})
}
