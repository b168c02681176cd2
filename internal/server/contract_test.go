package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/jobspec"
)

// An agent older than the versioned job contract sends no version: its
// wire format is version 1's, so it is served, end to end. One of a
// future contract is refused at registration with a message saying what
// to upgrade.
func TestAgentContractVersions(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: Config{Workers: -1, AgentPoll: 300 * time.Millisecond},
		files: map[string]string{".github/workflows/agents.yml": agentFlow}})
	_, tok := h.newAgent("old", "self-hosted", "linux")

	code, b, _ := h.agentCall("POST", "/api/agent/register", tok, []byte(`{"capacity":1,"version":"0.9","hostname":"old-box"}`))
	var reg api.AgentRegistered
	if code != 200 || json.Unmarshal(b, &reg) != nil || reg.Contract != jobspec.Version {
		t.Fatalf("register without a contract version: %d %s", code, b)
	}
	h.hook("push", h.push("main"), "d-1")
	var raw map[string]any
	var asg api.AgentAssignment
	waitFor(t, 20*time.Second, "a lease", func() bool {
		code, b, _ := h.agentCall("POST", "/api/agent/lease", tok, nil)
		return code == 200 && json.Unmarshal(b, &raw) == nil && json.Unmarshal(b, &asg) == nil
	})
	// The fields an old agent reads are where it reads them.
	run, _ := raw["run"].(map[string]any)
	if raw["job_id"] == nil || raw["lease_token"] == nil || raw["key"] != "lin" || run == nil ||
		!strings.Contains(run["workflow_yaml"].(string), "on-linux") || run["event_json"] == nil || asg.Version != jobspec.Version {
		t.Fatalf("assignment as an old agent reads it: %v", raw)
	}
	// An old agent's completion: results as the executor wrote them.
	old := []byte(`{"status":"success","outputs":{"k":"v"},"build_ms":5,
		"results":[{"workflow":"Agents","job":"lin","name":"lin","result":"success","started":"2026-12-01T10:00:00Z","duration":1500000000}]}`)
	if code, b, _ := h.agentCall("POST", "/api/agent/jobs/"+itoa(asg.JobID)+"/complete", tok, old, tokenHeader(asg.LeaseToken)...); code != http.StatusNoContent {
		t.Fatalf("old agent's completion: %d %s", code, b)
	}
	runs := h.waitRuns(1, 10*time.Second)
	j := h.jobs(runs[0].ID)["lin"]
	got := jobspec.DecodeInstances(j.Results)
	if runs[0].Status != "success" || j.Outputs["k"] != "v" || len(got) != 1 || got[0].Duration != 1500*time.Millisecond || got[0].Job != "lin" {
		t.Fatalf("run %s, job %+v, results %+v", runs[0].Status, j, got)
	}

	_, tok2 := h.newAgent("future", "self-hosted", "linux")
	code, b, _ = h.agentCall("POST", "/api/agent/register", tok2, api.AgentRegister{Capacity: 1, Version: "9.0", Contract: jobspec.Version + 1})
	if code != http.StatusBadRequest || !strings.Contains(string(b), fmt.Sprintf("job contract version %d", jobspec.Version+1)) || !strings.Contains(string(b), "upgrade the server") {
		t.Fatalf("register with a future contract: %d %s", code, b)
	}
}
