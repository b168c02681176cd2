package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/artifact"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// The build job runs on an agent and uploads; test runs on the server's
// own worker, downloads it and uploads its own; final runs on the agent
// again and downloads both. The API then lists and serves them.
const artifactFlow = `name: Artifacts
on: push
jobs:
  build:
    runs-on: [self-hosted, only-agent]
    steps:
      - run: |
          mkdir -p dist/bin
          echo from-agent > dist/readme.txt
          printf '#!/bin/sh\necho tool\n' > dist/bin/tool && chmod +x dist/bin/tool
      - id: up
        uses: actions/upload-artifact@v4
        with: {name: from-agent, path: dist/}
      - run: echo "url=${{ steps.up.outputs.artifact-url }}"
  test:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - uses: actions/download-artifact@v4
        with: {name: from-agent, path: got}
      - run: |
          set -e
          test "$(cat got/readme.txt)" = from-agent
          test "$(got/bin/tool)" = tool
          echo from-server > s.txt
      - uses: actions/upload-artifact@v4
        with: {name: from-server, path: s.txt}
  final:
    needs: test
    runs-on: [self-hosted, only-agent]
    steps:
      - uses: actions/download-artifact@v4
        with: {pattern: 'from-*', path: all, merge-multiple: true}
      - run: |
          set -e
          test "$(cat all/readme.txt)" = from-agent
          test "$(cat all/s.txt)" = from-server
          echo final-ok
`

func TestArtifactsAcrossAgentAndServer(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: Config{LeaseTTL: 5 * time.Second, AgentPoll: 2 * time.Second},
		files: map[string]string{".github/workflows/artifacts.yml": artifactFlow}})
	ag := h.startAgent("agent-a", 1, time.Minute, "self-hosted", "only-agent")

	h.hook("push", h.push("main"), "d-artifacts")
	var run *store.Run
	waitFor(t, 60*time.Second, "the run to finish", func() bool {
		runs, _ := h.st.ListRuns(context.Background(), 1, store.RunFilter{})
		if len(runs) == 0 {
			return false
		}
		run = runs[0]
		return store.Terminal(run.Status)
	})
	jobs := h.jobs(run.ID)
	if run.Status != store.StatusSuccess {
		for k := range jobs {
			t.Logf("%s (%s):\n%s", k, jobs[k].Status, h.jobLog(run.ID, k))
		}
		t.Fatalf("run %s", run.Status)
	}
	if jobs["build"].LeaseOwner != ag.owner() || jobs["final"].LeaseOwner != ag.owner() || jobs["test"].LeaseOwner == ag.owner() {
		t.Errorf("build on %s, test on %s, final on %s", jobs["build"].LeaseOwner, jobs["test"].LeaseOwner, jobs["final"].LeaseOwner)
	}
	if l := h.jobLog(run.ID, "build"); !bytes.Contains([]byte(l), []byte("url="+h.url+"/api/runs/"+itoa(run.ID)+"/artifacts/from-agent")) {
		t.Errorf("build log has no artifact-url:\n%s", l)
	}

	var list api.ArtifactList
	h.api("GET", "/api/runs/"+itoa(run.ID)+"/artifacts", nil, 200, &list)
	if len(list.Artifacts) != 2 || list.Artifacts[0].Name != "from-agent" || list.Artifacts[0].Job != "build" ||
		list.Artifacts[1].Name != "from-server" || list.Artifacts[1].Job != "test" || list.Artifacts[0].Size == 0 {
		t.Fatalf("artifacts: %+v", list.Artifacts)
	}
	code, body, hdr := h.agentCall("GET", "/api/runs/"+itoa(run.ID)+"/artifacts/from-agent", h.token, nil)
	if code != 200 || hdr.Get("Content-Type") != "application/gzip" || int64(len(body)) != list.Artifacts[0].Size {
		t.Fatalf("download: %d %s %d bytes", code, hdr.Get("Content-Type"), len(body))
	}
	dir := t.TempDir()
	if _, err := artifact.Extract(bytes.NewReader(body), dir, artifact.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "readme.txt")); string(b) != "from-agent\n" {
		t.Errorf("readme.txt = %q", b)
	}
	if fi, err := os.Stat(filepath.Join(dir, "bin", "tool")); err != nil || fi.Mode()&0o100 == 0 {
		t.Errorf("bin/tool lost its exec bit: %v", err)
	}
	if code, b, _ := h.agentCall("GET", "/api/runs/"+itoa(run.ID)+"/artifacts/nope", h.token, nil); code != 404 {
		t.Errorf("missing artifact: %d %s", code, b)
	}

	// Another organisation's token sees none of it.
	other := h.otherOrgToken("other")
	for _, p := range []string{"/artifacts", "/artifacts/from-agent"} {
		if code, b, _ := h.agentCall("GET", "/api/runs/"+itoa(run.ID)+p, other, nil); code != 404 {
			t.Errorf("another organisation: GET %s: %d %s", p, code, b)
		}
	}
}

// otherOrgToken makes a read token of a new organisation.
func (h *harness) otherOrgToken(org string) string {
	h.t.Helper()
	o, err := h.st.EnsureOrg(context.Background(), org)
	if err != nil {
		h.t.Fatal(err)
	}
	secret := "cvt_other_" + org
	sum := sha256.Sum256([]byte(secret))
	u := &store.User{Name: "u-" + org}
	if err := h.st.CreateUser(context.Background(), u); err != nil {
		h.t.Fatal(err)
	}
	if err := h.st.SetMember(context.Background(), o.ID, u.ID, store.OrgViewer); err != nil {
		h.t.Fatal(err)
	}
	if err := h.st.CreateToken(context.Background(), &store.Token{OrgID: o.ID, UserID: u.ID, Name: "t", Role: store.RoleRead, Hash: sum[:]}); err != nil {
		h.t.Fatal(err)
	}
	return secret
}

// The agent artifact routes directly: fenced, limited in size, names
// unique without overwrite.
func TestAgentArtifactProtocol(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: Config{Workers: -1, AgentPoll: 500 * time.Millisecond, MaxArtifactSize: 64 << 10},
		files: map[string]string{".github/workflows/agents.yml": agentFlow}})
	_, tok := h.newAgent("a", "self-hosted", "linux")
	_, tokB := h.newAgent("b", "self-hosted", "linux")
	h.hook("push", h.push("main"), "d-1")
	var asg api.AgentAssignment
	waitFor(t, 20*time.Second, "a lease", func() bool {
		code, b, _ := h.agentCall("POST", "/api/agent/lease", tok, nil)
		return code == 200 && json.Unmarshal(b, &asg) == nil
	})
	job := "/api/agent/jobs/" + itoa(asg.JobID)
	lease := tokenHeader(asg.LeaseToken)
	small := packed(t, map[string]string{"a.txt": "hello"})
	put := func(name, query, token string, body []byte, hdr []string) (int, string) {
		code, b, _ := h.agentCall("PUT", job+"/artifacts/"+name+query, token, body, append(hdr, "Content-Type", "application/gzip")...)
		return code, string(b)
	}
	if code, b := put("logs", "?retention_days=3", tok, small, lease); code != http.StatusCreated {
		t.Fatalf("put: %d %s", code, b)
	}
	if code, b := put("logs", "", tok, small, lease); code != http.StatusConflict {
		t.Errorf("same name: %d %s", code, b)
	}
	if code, b := put("logs", "?overwrite=true", tok, small, lease); code != http.StatusCreated {
		t.Errorf("overwrite: %d %s", code, b)
	}
	noise := make([]byte, 100<<10)
	rand.Read(noise)
	if code, b := put("big", "", tok, packed(t, map[string]string{"noise": hex.EncodeToString(noise)}), lease); code != http.StatusRequestEntityTooLarge ||
		!bytes.Contains([]byte(b), []byte("64.0 KiB")) {
		t.Errorf("too large: %d %s", code, b)
	}
	if code, b := put("x", "", tokB, small, lease); code != http.StatusConflict {
		t.Errorf("another agent: %d %s", code, b)
	}
	if code, b := put("x", "", tok, small, tokenHeader(asg.LeaseToken+1000)); code != http.StatusConflict {
		t.Errorf("stale token: %d %s", code, b)
	}
	if code, b := put("x", "", h.token, small, lease); code != http.StatusForbidden {
		t.Errorf("API token: %d %s", code, b)
	}
	code, b, _ := h.agentCall("GET", job+"/artifacts", tok, nil, lease...)
	var list api.ArtifactList
	if code != 200 || json.Unmarshal(b, &list) != nil || len(list.Artifacts) != 1 || list.Artifacts[0].Name != "logs" ||
		list.Artifacts[0].Job != "lin" || list.Artifacts[0].RetentionDays != 0 {
		t.Errorf("list: %d %s", code, b)
	}
	if code, b, _ := h.agentCall("GET", job+"/artifacts/logs", tok, nil, lease...); code != 200 || !bytes.Equal(b, small) {
		t.Errorf("get: %d, %d bytes", code, len(b))
	}
	// Once the job has ended, its token no longer uploads.
	if code, b, _ := h.agentCall("POST", job+"/complete", tok, api.AgentCompletion{Status: "success"}, lease...); code != http.StatusNoContent {
		t.Fatalf("complete: %d %s", code, b)
	}
	if code, b := put("late", "", tok, small, lease); code != http.StatusConflict {
		t.Errorf("after the job ended: %d %s", code, b)
	}
}

// packed is the content of an artifact holding files.
func packed(t *testing.T, files map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	var list []artifact.File
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		list = append(list, artifact.File{Path: p, Name: name})
	}
	var buf bytes.Buffer
	if err := artifact.Pack(context.Background(), &buf, list); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
