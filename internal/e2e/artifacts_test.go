package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestArtifactsThroughTheCLI: a run on the real server uploads an artifact
// in one job and downloads it in the next; `conveyor artifacts` lists it
// and `conveyor artifacts download` extracts it with its content and mode.
func TestArtifactsThroughTheCLI(t *testing.T) {
	skipShort(t)
	t.Parallel()
	flow := `on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: |
          mkdir -p dist/bin
          echo "built $GITHUB_SHA" > dist/report.txt
          printf '#!/bin/sh\necho tool\n' > dist/bin/tool && chmod +x dist/bin/tool
      - uses: actions/upload-artifact@v4
        with:
          name: dist
          path: dist/
  use:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - uses: actions/download-artifact@v4
        with:
          name: dist
          path: got
      - run: cat got/report.txt && got/bin/tool
`
	const secret = "artifacts-secret"
	g := newGitRepo(t, map[string]string{".github/workflows/a.yml": flow})
	sha := g.git("rev-parse", "HEAD")
	s := startServer(t, "artifacts", t.TempDir(), true, "--poll", "100ms")
	c := client{t: t, url: s.url, token: s.token}
	repoID := c.addRepo(g.dir, secret)
	if code, body, err := hook(s.url, repoID, secret, "push", "art-1", pushBody(g.dir, "main", sha, "go")); err != nil || code != http.StatusAccepted {
		t.Fatalf("push: %d %s %v", code, body, err)
	}
	runs := c.waitRuns(1, 60*time.Second)
	if runs[0].Status != "success" {
		t.Fatalf("run: %+v\nuse log:\n%s", runs[0], c.text("/api/runs/"+fmt.Sprint(runs[0].ID)+"/jobs/use/logs"))
	}
	if l := c.text("/api/runs/" + fmt.Sprint(runs[0].ID) + "/jobs/use/logs"); !strings.Contains(l, "built "+sha) || !strings.Contains(l, "tool") {
		t.Errorf("use log:\n%s", l)
	}
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, append(args, "--server", s.url, "--token", s.token)...)
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("conveyor %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := cli("artifacts", fmt.Sprint(runs[0].ID)); !strings.Contains(out, "dist") || !strings.Contains(out, "build") {
		t.Errorf("conveyor artifacts:\n%s", out)
	}
	dir := t.TempDir()
	cli("artifacts", "download", fmt.Sprint(runs[0].ID), "dist", "-o", dir)
	b, err := os.ReadFile(filepath.Join(dir, "report.txt"))
	if err != nil || string(b) != "built "+sha+"\n" {
		t.Errorf("downloaded report.txt: %q, %v", b, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "bin", "tool"))
	if err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("downloaded bin/tool: %v, %v (want executable)", fi, err)
	}
}
