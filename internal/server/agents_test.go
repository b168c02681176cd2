package server

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
)

const agentFlow = `name: Agents
on: push
jobs:
  lin:
    runs-on: [self-hosted, linux]
    steps:
      - run: echo on-linux
`

// agentCall calls the API with token and returns the status, body and
// headers; hdr are name, value pairs.
func (h *harness) agentCall(method, path, token string, body any, hdr ...string) (int, []byte, http.Header) {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, h.url+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// newAgent creates an agent with the admin token and returns its id and
// token.
func (h *harness) newAgent(name string, labels ...string) (int64, string) {
	h.t.Helper()
	var out api.AgentCreated
	h.api("POST", "/api/agents", api.AgentInput{Name: name, Labels: labels}, http.StatusCreated, &out)
	if out.Token == "" || out.Agent.ID == 0 {
		h.t.Fatalf("agent created without a token: %+v", out)
	}
	return out.Agent.ID, out.Token
}

func tokenHeader(tok int64) []string { return []string{api.LeaseHeader, itoa(tok)} }

func TestAgentProtocolIsFencedAndSeparate(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: Config{Workers: -1, AgentPoll: 500 * time.Millisecond},
		files: map[string]string{".github/workflows/agents.yml": agentFlow, "README.md": "hello from the repo\n"}})
	_, tokA := h.newAgent("a", "self-hosted", "linux")
	_, tokB := h.newAgent("b", "self-hosted", "linux")

	// Tokens stay on their side: API tokens never reach the agent
	// protocol, agent tokens reach nothing else.
	for _, c := range []struct {
		method, path, token string
		want                int
	}{
		{"POST", "/api/agent/lease", h.token, http.StatusForbidden},
		{"POST", "/api/agent/lease", "", http.StatusUnauthorized},
		{"POST", "/api/agent/lease", "cva_not-a-token", http.StatusUnauthorized},
		{"GET", "/api/runs", tokA, http.StatusForbidden},
		{"POST", "/api/agents", tokA, http.StatusForbidden},
		{"POST", "/api/agents/1/drain", tokA, http.StatusForbidden},
		{"GET", "/api/agents", tokA, http.StatusForbidden},
	} {
		if code, b, _ := h.agentCall(c.method, c.path, c.token, nil); code != c.want {
			t.Errorf("%s %s with %.8s...: %d %s, want %d", c.method, c.path, c.token, code, b, c.want)
		}
	}
	if code, b, _ := h.agentCall("POST", "/api/agent/register", tokA, api.AgentRegister{Capacity: 1, Version: "t", Hostname: "host-a"}); code != 200 {
		t.Fatalf("register: %d %s", code, b)
	}

	// Nothing queued: the lease request waits, then answers 204.
	start := time.Now()
	if code, b, _ := h.agentCall("POST", "/api/agent/lease", tokA, nil); code != http.StatusNoContent || time.Since(start) < 400*time.Millisecond {
		t.Fatalf("empty lease: %d %s after %s", code, b, time.Since(start))
	}
	h.hook("push", h.push("main"), "d-1")
	var asg api.AgentAssignment
	waitFor(t, 20*time.Second, "a lease", func() bool {
		code, b, _ := h.agentCall("POST", "/api/agent/lease", tokA, nil)
		return code == 200 && json.Unmarshal(b, &asg) == nil
	})
	if asg.Key != "lin" || asg.Run.Repository != "octo/repo" || !strings.Contains(asg.Run.WorkflowYAML, "on-linux") || asg.LeaseToken == 0 {
		t.Fatalf("assignment: %+v", asg)
	}
	job := "/api/agent/jobs/" + itoa(asg.JobID)
	// Handed back and leased again: the first token is stale now.
	if code, b, _ := h.agentCall("POST", job+"/release", tokA, api.AgentRelease{Reason: "testing"}, tokenHeader(asg.LeaseToken)...); code != http.StatusNoContent {
		t.Fatalf("release: %d %s", code, b)
	}
	stale := tokenHeader(asg.LeaseToken)
	if code, b, _ := h.agentCall("POST", "/api/agent/lease", tokA, nil); code != 200 || json.Unmarshal(b, &asg) != nil || asg.Attempt != 2 {
		t.Fatalf("lease after release: %d %s", code, b)
	}
	for _, c := range []struct {
		name  string
		token string
		hdr   []string
		want  int
	}{
		{"another agent", tokB, tokenHeader(asg.LeaseToken), http.StatusConflict},
		{"stale token", tokA, stale, http.StatusConflict},
		{"no token", tokA, nil, http.StatusBadRequest},
		{"API token", h.token, tokenHeader(asg.LeaseToken), http.StatusForbidden},
	} {
		for _, verb := range []string{"heartbeat", "logs", "complete", "release"} {
			var body any
			switch verb {
			case "complete":
				body = api.AgentCompletion{Status: "success"}
			case "logs":
				body = []byte("forged line\n")
			}
			code, b, _ := h.agentCall("POST", job+"/"+verb, c.token, body, c.hdr...)
			if code != c.want {
				t.Errorf("%s: %s: %d %s, want %d", c.name, verb, code, b, c.want)
			}
		}
		if code, b, _ := h.agentCall("GET", job+"/source", c.token, nil, c.hdr...); code != c.want {
			t.Errorf("%s: source: %d %s, want %d", c.name, code, b, c.want)
		}
	}

	good := tokenHeader(asg.LeaseToken)
	if code, b, _ := h.agentCall("POST", job+"/heartbeat", tokA, nil, good...); code != 200 || !strings.Contains(string(b), `"cancel": false`) {
		t.Errorf("heartbeat: %d %s", code, b)
	}
	if code, b, _ := h.agentCall("POST", job+"/logs", tokA, []byte("line from the agent\n"), good...); code != http.StatusNoContent {
		t.Errorf("logs: %d %s", code, b)
	}
	code, src, hdr := h.agentCall("GET", job+"/source", tokA, nil, good...)
	if code != 200 || hdr.Get("Content-Type") != "application/gzip" {
		t.Fatalf("source: %d %s", code, src)
	}
	if files := untar(t, src); files["README.md"] != "hello from the repo\n" || files[".github/workflows/agents.yml"] != agentFlow {
		t.Errorf("source files: %v", files)
	}
	if code, b, _ := h.agentCall("POST", job+"/complete", tokA, api.AgentCompletion{Status: "running"}, good...); code != http.StatusBadRequest {
		t.Errorf("complete as running: %d %s", code, b)
	}
	if code, b, _ := h.agentCall("POST", job+"/complete", tokA, api.AgentCompletion{Status: "success", Outputs: map[string]string{"k": "v"}}, good...); code != http.StatusNoContent {
		t.Fatalf("complete: %d %s", code, b)
	}
	if code, b, _ := h.agentCall("POST", job+"/complete", tokA, api.AgentCompletion{Status: "failure"}, good...); code != http.StatusConflict || !strings.Contains(string(b), "already ended") {
		t.Errorf("second complete: %d %s", code, b)
	}
	runs := h.waitRuns(1, 10*time.Second)
	if runs[0].Status != "success" {
		t.Errorf("run: %s", runs[0].Status)
	}
	var d api.RunDetail
	h.api("GET", "/api/runs/"+itoa(runs[0].ID), nil, 200, &d)
	if j := d.Jobs[0]; len(j.Interrupted) != 1 || !strings.Contains(j.Interrupted[0].Reason, "handed back by agent a: testing") || j.Outputs["k"] != "v" {
		t.Errorf("job: %+v", j)
	}
	if l := h.jobLog(runs[0].ID, "lin"); l != "line from the agent\n" {
		t.Errorf("log: %q (forged chunks must not be stored)", l)
	}
}

func TestAgentAdmin(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: Config{Workers: -1, AgentPoll: 300 * time.Millisecond}})
	id, tok := h.newAgent("gpu-box", "GPU", "self-hosted", "gpu")
	var list api.AgentList
	h.api("GET", "/api/agents", nil, 200, &list)
	if len(list.Agents) != 1 || list.Agents[0].State != api.AgentOffline || strings.Join(list.Agents[0].Labels, ",") != "gpu,self-hosted" {
		t.Fatalf("list before register: %+v", list)
	}
	h.agentCall("POST", "/api/agent/register", tok, api.AgentRegister{Capacity: 2, Version: "v9", Hostname: "box"})
	h.api("GET", "/api/agents", nil, 200, &list)
	if a := list.Agents[0]; a.State != api.AgentIdle || a.Version != "v9" || a.Hostname != "box" || a.Capacity != 2 {
		t.Fatalf("after register: %+v", a)
	}
	var ag api.Agent
	h.api("POST", "/api/agents/"+itoa(id)+"/drain", nil, 200, &ag)
	if ag.State != api.AgentDraining {
		t.Errorf("drained: %+v", ag)
	}
	if code, _, hdr := h.agentCall("POST", "/api/agent/lease", tok, nil); code != http.StatusNoContent || hdr.Get(api.DrainingHeader) != "true" {
		t.Errorf("lease while draining: %d %v", code, hdr)
	}
	h.api("POST", "/api/agents/"+itoa(id)+"/resume", nil, 200, &ag)
	if ag.State != api.AgentIdle {
		t.Errorf("resumed: %+v", ag)
	}
	h.api("POST", "/api/agents", api.AgentInput{Name: "gpu-box"}, http.StatusConflict, nil)
	h.api("POST", "/api/agents", api.AgentInput{Name: " "}, http.StatusBadRequest, nil)
	h.api("POST", "/api/agents", api.AgentInput{Name: "x", Labels: []string{"two words"}}, http.StatusBadRequest, nil)
	h.api("DELETE", "/api/agents/"+itoa(id), nil, http.StatusNoContent, nil)
	if code, b, _ := h.agentCall("POST", "/api/agent/lease", tok, nil); code != http.StatusUnauthorized {
		t.Errorf("revoked token: %d %s", code, b)
	}
	h.api("GET", "/api/agents", nil, 200, &list)
	if len(list.Agents) != 0 {
		t.Errorf("revoked agents are listed: %+v", list)
	}
	h.api("DELETE", "/api/agents/999", nil, http.StatusNotFound, nil)
}

func untar(t *testing.T, b []byte) map[string]string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string]string{}
	for {
		hd, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if hd.Typeflag == tar.TypeReg {
			data, _ := io.ReadAll(tr)
			files[hd.Name] = string(data)
		}
	}
}

// TestAgentAllowedLabels: an agent whose token allows some labels cannot
// claim others: what it reports beyond them is dropped (and said so), and
// jobs that need a dropped label never reach it.
func TestAgentAllowedLabels(t *testing.T) {
	flow := "on: push\njobs:\n  gpu:\n    runs-on: [self-hosted, gpu]\n    steps:\n      - run: echo gpu\n" +
		"  lin:\n    runs-on: [self-hosted, linux]\n    steps:\n      - run: echo lin\n"
	h := newHarness(t, harnessOpts{cfg: Config{Workers: -1, AgentPoll: 300 * time.Millisecond},
		files: map[string]string{".github/workflows/l.yml": flow}})
	h.api("POST", "/api/agents", api.AgentInput{Name: "bad", Labels: []string{"gpu"}, AllowedLabels: []string{"linux"}}, http.StatusBadRequest, nil)
	h.api("POST", "/api/agents", api.AgentInput{Name: "bad", AllowedLabels: []string{"two words"}}, http.StatusBadRequest, nil)
	var out api.AgentCreated
	h.api("POST", "/api/agents", api.AgentInput{Name: "lin", AllowedLabels: []string{"Self-Hosted", "linux"}}, http.StatusCreated, &out)
	if strings.Join(out.Agent.AllowedLabels, ",") != "self-hosted,linux" {
		t.Fatalf("created: %+v", out.Agent)
	}
	code, b, _ := h.agentCall("POST", "/api/agent/register", out.Token, api.AgentRegister{Labels: []string{"self-hosted", "linux", "GPU"}, Capacity: 2})
	var reg api.AgentRegistered
	if code != 200 || json.Unmarshal(b, &reg) != nil || strings.Join(reg.Labels, ",") != "self-hosted,linux" || strings.Join(reg.RefusedLabels, ",") != "gpu" {
		t.Fatalf("register: %d %s", code, b)
	}
	var list api.AgentList
	h.api("GET", "/api/agents", nil, 200, &list)
	if a := list.Agents[0]; strings.Join(a.Labels, ",") != "self-hosted,linux" || strings.Join(a.AllowedLabels, ",") != "self-hosted,linux" {
		t.Fatalf("listed: %+v", a)
	}
	h.hook("push", h.push("main"), "allowed-1")
	var asg api.AgentAssignment
	waitFor(t, 20*time.Second, "the linux job's lease", func() bool {
		code, b, _ := h.agentCall("POST", "/api/agent/lease", out.Token, nil)
		return code == 200 && json.Unmarshal(b, &asg) == nil
	})
	if asg.Key != "lin" {
		t.Fatalf("leased %q, want lin (the gpu job needs a label the token does not allow)", asg.Key)
	}
	if code, b, _ := h.agentCall("POST", "/api/agent/lease", out.Token, nil); code != http.StatusNoContent {
		t.Fatalf("second lease: %d %s (the gpu job must not come to this agent)", code, b)
	}
}
