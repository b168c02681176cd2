package exec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLocalUsesConfinedToRepository: a local uses: of a step or a job that
// names a path or a link out of the repository fails its job without
// reading the file, whatever it holds (a key, /dev/zero).
func TestLocalUsesConfinedToRepository(t *testing.T) {
	base := t.TempDir()
	repo := filepath.Join(base, "repo")
	const secret = "PRIVATE-KEY-MATERIAL-42"
	outside := filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(repo, "ok"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		filepath.Join(outside, "action.yml"):    "name: " + secret + "\nruns: {using: composite, steps: [{run: echo " + secret + ", shell: bash}]}\n",
		filepath.Join(outside, "wf.yml"):        "on: {workflow_call: {}}\njobs: {x: {runs-on: ubuntu-latest, steps: [{run: echo " + secret + "}]}}\n# " + secret + "\n",
		filepath.Join(base, "id_rsa"):           secret + "\n",
		filepath.Join(repo, "ok", "action.yml"): "runs: {using: composite, steps: [{run: echo fine, shell: bash}]}\n",
	}
	for p, c := range files {
		if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"evil": outside, "evil.yml": filepath.Join(outside, "wf.yml"), "zero.yml": "/dev/zero"} {
		if err := os.Symlink(target, filepath.Join(repo, link)); err != nil {
			t.Fatal(err)
		}
	}
	src := `on: push
jobs:
  good:
    runs-on: ubuntu-latest
    steps:
      - uses: ./ok
  step-dotdot:
    runs-on: ubuntu-latest
    steps:
      - uses: ./../outside
  step-link:
    runs-on: ubuntu-latest
    steps:
      - uses: ./evil
  call-dotdot:
    uses: ./../id_rsa
  call-deep:
    uses: ./../../../../../../../../etc/passwd
  call-link:
    uses: ./evil.yml
  call-zero:
    uses: ./zero.yml
`
	res, rec := run(t, nil, src, Options{RepoDir: repo})
	if got := resultOf(res, "good"); got != Success {
		t.Errorf("good = %s\n%s", got, rec.dump())
	}
	for _, j := range []string{"step-dotdot", "step-link", "call-dotdot", "call-deep", "call-link", "call-zero"} {
		if got := resultOf(res, j); got != Failure {
			t.Errorf("%s = %s, want failure", j, got)
		}
	}
	all := rec.dump()
	for _, j := range res.Jobs {
		all += j.Error
	}
	if strings.Contains(all, secret) || strings.Contains(all, "root:x:0:0") {
		t.Errorf("a file outside the repository reached the output:\n%s", all)
	}
	if !strings.Contains(all, "leaves the repository") {
		t.Errorf("no error says the path leaves the repository:\n%s", all)
	}
}
