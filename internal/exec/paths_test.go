package exec

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/docker"
	"github.com/conveyor-ci/conveyor/internal/backend/fake"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

func TestCheckoutDir(t *testing.T) {
	for _, tc := range []struct{ p, want, err string }{
		{"", "/h/ws", ""},
		{"sub/dir", "/h/ws/sub/dir", ""},
		{"./a/../b", "/h/ws/b", ""},
		{"/__w/ws/src/github.com/x/y", "/h/ws/src/github.com/x/y", ""},
		{"/__w/ws", "/h/ws", ""},
		{"../outside", "", "Repository path '/__w/outside' is not under '/__w/ws'"},
		{"/etc", "", "Repository path '/etc' is not under '/__w/ws'"},
		{"/__w/wsx", "", "is not under"},
	} {
		got, err := checkoutDir("/h/ws", "/__w/ws", tc.p)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.p, err, tc.err)
			}
			continue
		}
		if err != nil || got != filepath.FromSlash(tc.want) {
			t.Errorf("%q: %q, %v; want %q", tc.p, got, err, tc.want)
		}
	}
}

// pathsWorkflow checks out into a GOPATH layout with an absolute path
// under the workspace, then runs a step in a missing working-directory.
const pathsWorkflow = `
on: push
jobs:
  gopath:
    runs-on: x
    steps:
      - uses: actions/checkout@v4
        with:
          path: ${{ github.workspace }}/src/github.com/octo/repo
      - run: test -f marker.txt && echo gopath-ok
        working-directory: ${{ github.workspace }}/src/github.com/octo/repo
  outside:
    runs-on: x
    steps:
      - uses: actions/checkout@v4
        with:
          path: ../../elsewhere
  nowd:
    runs-on: x
    steps:
      - run: echo never
        working-directory: nope/missing
`

func checkPaths(t *testing.T, opts Options) {
	t.Helper()
	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, "marker.txt"), []byte("m"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts.RepoDir = repo
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, rec := run(t, ctx, pathsWorkflow, opts)
	if resultOf(res, "gopath") != Success || !rec.hasOutput("gopath", "gopath-ok") {
		t.Errorf("gopath: %s\n%s", resultsString(res), rec.dump())
	}
	dump := rec.dump()
	if resultOf(res, "outside") != Failure || !strings.Contains(dump, "is not under") {
		t.Errorf("outside: %s\n%s", resultsString(res), dump)
	}
	if resultOf(res, "nowd") != Failure || !strings.Contains(dump, `working-directory \"nope/missing\" does not exist`) || strings.Contains(dump, "fork/exec") {
		t.Errorf("nowd: %s\n%s", resultsString(res), dump)
	}
}

func TestCheckoutPathAndWorkingDirectoryHost(t *testing.T) {
	checkPaths(t, Options{})
}

func TestCheckoutPathAndWorkingDirectoryDocker(t *testing.T) {
	image := testenv.Image(t)
	testenv.DockerAvailable(t)
	bin := buildRunner(t)
	d, err := docker.New(docker.Options{RunnerBinary: bin})
	if err != nil {
		t.Fatal(err)
	}
	var b backend.Backend = d
	checkPaths(t, Options{Backend: b, Platforms: map[string]string{"x": image}})
}

// An image the engine cannot find or pull suggests -P for the job's label.
func TestMissingImageSuggestsPlatform(t *testing.T) {
	b := fake.New(nil)
	b.SetupErr = func(job *backend.JobSpec) error {
		return errs.E("docker: image", errs.NotFound, "image %q is not available locally and could not be pulled", job.Image)
	}
	src := "on: push\njobs:\n  a:\n    runs-on: ubuntu-22.04\n    steps:\n      - run: 'true'\n"
	res, rec := run(t, nil, src, Options{Backend: b, Platforms: map[string]string{"ubuntu-22.04": "my/img:1"}})
	j := jobResult(res, "a")
	if j == nil || j.Result != Failure || !strings.Contains(j.Error, "-P ubuntu-22.04=IMAGE") || !strings.Contains(j.Error, `"my/img:1" is not available`) {
		t.Fatalf("%+v\n%s", j, rec.dump())
	}
}
