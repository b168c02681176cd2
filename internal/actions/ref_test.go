package actions

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

func TestParse(t *testing.T) {
	good := map[string]Ref{
		"actions/setup-go@v5":                          {Owner: "actions", Repo: "setup-go", Version: "v5"},
		"github/codeql-action/init@v3":                 {Owner: "github", Repo: "codeql-action", Path: "init", Version: "v3"},
		"o/r/.github/workflows/ci.yml@main":            {Owner: "o", Repo: "r", Path: ".github/workflows/ci.yml", Version: "main"},
		"o/r@release/v1.2":                             {Owner: "o", Repo: "r", Version: "release/v1.2"},
		"o/r@0123456789abcdef0123456789abcdef01234567": {Owner: "o", Repo: "r", Version: "0123456789abcdef0123456789abcdef01234567"},
	}
	for in, want := range good {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if got.String() != in {
			t.Errorf("String() = %q, want %q", got.String(), in)
		}
	}
	bad := []string{"", "actions/setup-go", "actions@v1", "o/r@", "../r@v1", "o/..@v1", "o/r/../../x@v1", "o/r/a//b@v1",
		"o/r@-upload-pack=x", "o/r@a..b", "o/r@v1 x", "o/r@v1:x", "o r/x@v1", "o/r@refs/../x", "./x@v1", "o/r@v1.lock"}
	for _, in := range bad {
		if _, err := Parse(in); !errs.Is(err, errs.Invalid) {
			t.Errorf("Parse(%q) = %v, want an invalid error", in, err)
		}
	}
	if r, _ := Parse("o/r/.github/workflows/x.yaml@v1"); !r.IsWorkflow() {
		t.Error("a workflow ref is not seen as one")
	}
	if r, _ := Parse("o/r/sub@v1"); r.IsWorkflow() || r.IsSHA() {
		t.Error("an action ref is seen as a workflow or a SHA")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"actions/setup-go@v5", "a/b/c/d@main", "o/r@" + strings.Repeat("a", 40), "o/r/../x@v", "@", "/@/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		// What parses is safe to put in a cache path and a git command.
		for _, p := range strings.Split(r.Name(), "/") {
			if p == ".." || p == "." || p == "" {
				t.Fatalf("%q: unsafe path part in %+v", s, r)
			}
		}
		if strings.HasPrefix(r.Version, "-") || strings.ContainsAny(r.Version, " \x00\n") {
			t.Fatalf("%q: unsafe version %q", s, r.Version)
		}
		if again, err := Parse(r.String()); err != nil || again != r {
			t.Fatalf("%q: round trip %+v %v", s, again, err)
		}
	})
}

func TestLoadAction(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, s string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("ok/action.yaml", "name: ok\nruns:\n  using: node20\n  main: x.js\n")
	write("future/action.yml", "name: f\nruns:\n  using: node99\n  main: x.js\n")
	write("nomain/action.yml", "name: f\nruns:\n  using: node20\n")
	write("big/action.yml", "name: big\n#"+strings.Repeat("x", MaxFileSize)+"\nruns:\n  using: composite\n  steps: []\n")
	os.MkdirAll(filepath.Join(dir, "isdir", "action.yml"), 0o755)
	os.MkdirAll(filepath.Join(dir, "out"), 0o755)
	secret := filepath.Join(t.TempDir(), "secret.yml")
	os.WriteFile(secret, []byte("name: s\nruns:\n  using: composite\n  steps: []\n"), 0o644)
	os.Symlink(secret, filepath.Join(dir, "out", "action.yml"))
	os.MkdirAll(filepath.Join(dir, "fifo"), 0o755)
	syscall.Mkfifo(filepath.Join(dir, "fifo", "action.yml"), 0o644)

	if a, err := LoadAction(dir, "ok", "o/r/ok@v1"); err != nil || a.Runs.Main != "x.js" {
		t.Fatalf("ok: %+v %v", a, err)
	}
	cases := map[string]errs.Kind{"future": errs.Invalid, "nomain": errs.Invalid, "big": errs.TooLarge, "isdir": errs.Invalid,
		"out": errs.Invalid, "fifo": errs.Invalid, "missing": errs.NotFound}
	for sub, kind := range cases {
		_, err := LoadAction(dir, sub, "o/r/"+sub+"@v1")
		if err == nil || errs.KindOf(err) != kind || !strings.Contains(err.Error(), "o/r/"+sub+"@v1") {
			t.Errorf("%s: %v (kind %v), want kind %v naming the action", sub, err, errs.KindOf(err), kind)
		}
	}
	_, err := LoadAction(dir, "future", "o/r/future@v1")
	if !strings.Contains(err.Error(), "node99") || !strings.Contains(err.Error(), "node20") {
		t.Errorf("unknown using does not say what is supported: %v", err)
	}
}
