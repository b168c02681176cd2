package server

import (
	dbsql "database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/jobspec"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// An agent older than the versioned job contract sends no version: its
// wire format is version 1's, so it is served, end to end. One of a
// future contract is refused at registration with a message saying what
// to upgrade.
func TestAgentContractVersions(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "conveyor.db")
	h := newHarness(t, harnessOpts{cfg: Config{Workers: -1, AgentPoll: 300 * time.Millisecond}, dsn: dsn,
		files: map[string]string{".github/workflows/agents.yml": agentFlow}})
	db, err := dbsql.Open("sqlite", dsn+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
	// The fields an old agent reads are where it reads them, in version 1
	// (no compiled job: it runs the file).
	run, _ := raw["run"].(map[string]any)
	if raw["job_id"] == nil || raw["lease_token"] == nil || raw["key"] != "lin" || run == nil ||
		!strings.Contains(run["workflow_yaml"].(string), "on-linux") || run["event_json"] == nil || asg.Version != 1 ||
		raw["job"] != nil {
		t.Fatalf("assignment as an old agent reads it: %v", raw)
	}
	// The job's compiled form was stored when the run was made.
	first := storedSpec(t, db, asg.JobID)
	if first.ID != "lin" || first.Version != jobspec.Version || len(first.Steps) != 1 ||
		first.Steps[0].Run.Text != "echo on-linux" || first.Steps[0].Run.Pos.Line != 7 || first.Workflow.Name != "Agents" {
		t.Fatalf("stored compiled job: %+v", first)
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

	// An agent of the previous contract version says so, and is served.
	_, tok1 := h.newAgent("v1", "self-hosted", "linux")
	code, b, _ = h.agentCall("POST", "/api/agent/register", tok1, api.AgentRegister{Capacity: 1, Version: "1.0", Contract: jobspec.Version - 1})
	if code != 200 || json.Unmarshal(b, &reg) != nil || reg.Contract != jobspec.Version {
		t.Fatalf("register with the previous contract: %d %s", code, b)
	}
	_, tok3 := h.newAgent("v2", "self-hosted", "linux")
	code, b, _ = h.agentCall("POST", "/api/agent/register", tok3, api.AgentRegister{Capacity: 1, Version: "2.0", Contract: jobspec.Version})
	if code != 200 {
		t.Fatalf("register with this contract: %d %s", code, b)
	}

	// A job stored without its compiled form (made by an older server) is
	// compiled when it is leased.
	h.git.commit("again", map[string]string{"README.md": "again\n"})
	h.hook("push", h.push("main"), "d-2")
	waitFor(t, 20*time.Second, "the second run's job", func() bool {
		res, err := db.Exec(`UPDATE jobs SET spec = NULL WHERE status = 'queued'`)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := res.RowsAffected()
		return n == 1
	})
	// An agent of this version says so when it leases: it gets the
	// compiled job and no workflow file.
	var second api.AgentAssignment
	waitFor(t, 20*time.Second, "a second lease", func() bool {
		code, b, _ := h.agentCall("POST", "/api/agent/lease", tok3, nil, api.ContractHeader, strconv.Itoa(jobspec.Version))
		return code == 200 && json.Unmarshal(b, &second) == nil
	})
	var raw2 []byte
	if err := db.QueryRow(`SELECT spec FROM jobs WHERE id = $1`, second.JobID).Scan(&raw2); err != nil || raw2 != nil {
		t.Fatalf("the job kept its compiled form: %q, %v", raw2, err)
	}
	if second.Version != jobspec.Version || second.Run.WorkflowYAML != "" || !reflect.DeepEqual(second.Job, first) {
		t.Fatalf("version %d, file %q, compiled at lease: %+v\nwant %+v", second.Version, second.Run.WorkflowYAML, second.Job, first)
	}

	_, tok2 := h.newAgent("future", "self-hosted", "linux")
	code, b, _ = h.agentCall("POST", "/api/agent/register", tok2, api.AgentRegister{Capacity: 1, Version: "9.0", Contract: jobspec.Version + 1})
	if code != http.StatusBadRequest || !strings.Contains(string(b), fmt.Sprintf("job contract version %d", jobspec.Version+1)) || !strings.Contains(string(b), "upgrade the server") {
		t.Fatalf("register with a future contract: %d %s", code, b)
	}
}

// storedSpec is the compiled job stored with job id.
func storedSpec(t *testing.T, db *dbsql.DB, id int64) *jobspec.Job {
	t.Helper()
	var raw []byte
	if err := db.QueryRow(`SELECT spec FROM jobs WHERE id = $1`, id).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	spec, err := jobspec.DecodeJob(raw)
	if err != nil {
		t.Fatalf("stored compiled job %q: %v", raw, err)
	}
	return spec
}

const compiledFlow = `name: Compiled
on: push
env:
  WHO: world
jobs:
  first:
    runs-on: [self-hosted, linux]
    outputs:
      word: ${{ steps.w.outputs.word }}
    steps:
      - id: w
        run: echo "word=hello" >> "$GITHUB_OUTPUT"
  second:
    needs: first
    runs-on: [self-hosted, linux]
    strategy:
      matrix:
        n: [1, 2]
    steps:
      - run: echo "leg ${{ matrix.n }} says ${{ needs.first.outputs.word }} $WHO"
`

// Agents run the jobs of a run from their compiled form: the workflow
// file stored with the run is garbage by the time they lease them, and
// the run succeeds all the same (no worker reads the file).
func TestAgentRunsTheCompiledJob(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "conveyor.db")
	h := newHarness(t, harnessOpts{cfg: Config{Workers: -1, AgentPoll: 300 * time.Millisecond}, dsn: dsn,
		files: map[string]string{".github/workflows/compiled.yml": compiledFlow}})
	db, err := dbsql.Open("sqlite", dsn+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h.hook("push", h.push("main"), "d-compiled")
	waitFor(t, 20*time.Second, "the run", func() bool {
		res, err := db.Exec(`UPDATE runs SET workflow_yaml = $1`, []byte("jobs: [not: {a workflow"))
		if err != nil {
			t.Fatal(err)
		}
		n, _ := res.RowsAffected()
		return n == 1
	})
	h.startAgent("compiled", 2, time.Minute, "self-hosted", "linux")
	runs := h.waitRuns(1, 60*time.Second)
	if runs[0].Status != store.StatusSuccess {
		t.Fatalf("run %s: %s\nfirst:\n%s\nsecond:\n%s", runs[0].Status, runs[0].Error, h.jobLog(runs[0].ID, "first"), h.jobLog(runs[0].ID, "second"))
	}
	if l := h.jobLog(runs[0].ID, "second"); !strings.Contains(l, "leg 1 says hello world") || !strings.Contains(l, "leg 2 says hello world") {
		t.Errorf("log of second:\n%s", l)
	}
}
