package jobspec

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		v    int
		want string // "" for served
	}{
		{0, ""}, // an agent older than the versioned contract: version 1's wire format
		{1, ""},
		{Version, ""},
		{Version + 1, "upgrade the server"},
		{-3, ""},
	} {
		err := Check(c.v)
		if (c.want == "") != (err == nil) || (err != nil && (!strings.Contains(err.Error(), c.want) || errs.KindOf(err) != errs.Invalid)) {
			t.Errorf("Check(%d) = %v, want %q", c.v, err, c.want)
		}
	}
	if err := CheckAssignment(Version + 1); err == nil || !strings.Contains(err.Error(), "upgrade the agent") {
		t.Errorf("CheckAssignment(next) = %v", err)
	}
	if err := CheckAssignment(0); err != nil {
		t.Errorf("CheckAssignment(0) = %v (an older server sends none)", err)
	}
}

// The encoding is the contract: these field names are what agents and
// servers of version 1 read. Changing one breaks them: bump Version.
func TestEncodingIsStable(t *testing.T) {
	r := Report{Version: 1, Status: Success, Outputs: map[string]string{"k": "v"}, Error: "e", BuildMS: 5,
		Results: []Instance{{Workflow: "W", Job: "j", Name: "n", Result: Failure, Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			Duration: 1500 * time.Millisecond, Outputs: map[string]string{"o": "1"}, Error: "x", Reused: true}}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":1,"status":"success","outputs":{"k":"v"},"results":[{"workflow":"W","job":"j","name":"n","result":"failure",` +
		`"started":"2026-01-02T03:04:05Z","duration":1500000000,"outputs":{"o":"1"},"error":"x","reused":true}],"error":"e","build_ms":5}`
	if string(b) != want {
		t.Errorf("report:\n%s\nwant\n%s", b, want)
	}
	a := Assignment{Version: 1, JobID: 1, LeaseToken: 2, LeaseTTLMS: 3, Key: "k", Name: "n", Attempt: 1, Labels: []string{"l"},
		Run: Run{ID: 4, Number: 5, Attempt: 1, Repository: "o/r", Workflow: "w.yml", WorkflowYAML: "on: push", Event: "push",
			EventJSON: json.RawMessage(`{}`), SHA: "abc", Ref: "refs/heads/main", Inputs: map[string]string{"i": "1"}},
		Needs:   map[string]Need{"d": {Result: Success, Outputs: map[string]string{"x": "y"}}},
		Grants:  Grants{CacheToken: "c", Secrets: map[string]string{"S": "s"}, Vars: map[string]string{"V": "v"}, MaxTimeoutMinutes: 9},
		Sandbox: Sandbox{NetworkPolicy: "no-private", Runtime: "runsc"}}
	b, err = json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	want = `{"version":1,"job_id":1,"lease_token":2,"lease_ttl_ms":3,"key":"k","name":"n","attempt":1,"labels":["l"],` +
		`"run":{"id":4,"number":5,"attempt":1,"repository":"o/r","workflow":"w.yml","workflow_yaml":"on: push","event":"push",` +
		`"event_json":{},"sha":"abc","ref":"refs/heads/main","inputs":{"i":"1"}},"needs":{"d":{"result":"success","outputs":{"x":"y"}}},` +
		`"cache_token":"c","secrets":{"S":"s"},"vars":{"V":"v"},"max_timeout_minutes":9,` +
		`"network_policy":"no-private","runtime":"runsc"}`
	if string(b) != want {
		t.Errorf("assignment:\n%s\nwant\n%s", b, want)
	}
	if got := DecodeInstances(EncodeInstances(r.Results)); len(got) != 1 || got[0].Duration != r.Results[0].Duration {
		t.Errorf("instances round trip: %+v", got)
	}
	if DecodeInstances([]byte("not json")) != nil || EncodeInstances(nil) != nil {
		t.Error("empty or unreadable instances")
	}
}

// The compiled job's encoding is part of the contract (version 2): these
// names are what servers store and workers read.
func TestJobEncodingIsStable(t *testing.T) {
	j := &Job{Version: 2, Workflow: Workflow{File: "ci.yml", Name: "CI", Env: []KV{{Key: "A", Value: "1", Pos: Pos{3, 3}}},
		Trigger: &Trigger{Event: "workflow_dispatch", Inputs: []Input{{Name: "n", Type: "number", Default: "2", HasDefault: true}}}},
		ID: "build", Pos: Pos{5, 3}, Needs: []Ref{{ID: "dep", Pos: Pos{6, 12}}}, If: Text{Text: "always()", Pos: Pos{7, 9}},
		Steps: []Step{{ID: "s", Pos: Pos{9, 9}, Run: Text{Text: "echo ${{ matrix.v }}", Pos: Pos{9, 14}}, Shell: "bash"}},
		Settings: Settings{RunsOn: &RunsOn{Labels: []string{"linux"}}, TimeoutMinutes: "5",
			Strategy: &Strategy{Matrix: &Node{Kind: Mapping, Content: []Node{{Kind: Scalar, Tag: "!!str", Value: "v"},
				{Kind: Sequence, Content: []Node{{Kind: Scalar, Tag: "!!int", Value: "1"}}}}}},
			Permissions: &Permissions{Scopes: map[string]string{}}}}
	b, err := EncodeJob(j)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":2,"workflow":{"file":"ci.yml","name":"CI","env":[{"key":"A","value":"1","pos":{"line":3,"col":3}}],` +
		`"trigger":{"event":"workflow_dispatch","inputs":[{"name":"n","type":"number","default":"2","has-default":true}]}},` +
		`"id":"build","pos":{"line":5,"col":3},"needs":[{"id":"dep","pos":{"line":6,"col":12}}],"if":{"text":"always()","pos":{"line":7,"col":9}},` +
		`"steps":[{"id":"s","pos":{"line":9,"col":9},"run":{"text":"echo ${{ matrix.v }}","pos":{"line":9,"col":14}},"shell":"bash"}],` +
		`"runs-on":{"labels":["linux"]},"strategy":{"matrix":{"kind":"mapping","content":[{"kind":"scalar","tag":"!!str","value":"v"},` +
		`{"kind":"sequence","content":[{"kind":"scalar","tag":"!!int","value":"1"}]}]}},"timeout-minutes":"5","permissions":{"scopes":{}}}`
	if string(b) != want {
		t.Errorf("job:\n%s\nwant\n%s", b, want)
	}
	got, err := DecodeJob(b)
	if err != nil || got.Steps[0].Run.Text != "echo ${{ matrix.v }}" || got.Strategy.Matrix.Content[1].Content[0].Value != "1" {
		t.Errorf("decode: %+v, %v", got, err)
	}
}

// A compiled job of a contract version this build does not read, or no
// compiled job at all, is refused (Invalid): the caller compiles again.
func TestDecodeJobRefuses(t *testing.T) {
	for _, in := range []string{`{"version":1,"id":"a"}`, `{"version":` + strconv.Itoa(Version+1) + `,"id":"a"}`, `{"version":2}`, `[]`, `not json`, ``} {
		if _, err := DecodeJob([]byte(in)); errs.KindOf(err) != errs.Invalid {
			t.Errorf("DecodeJob(%s) = %v, want Invalid", in, err)
		}
	}
}

// An assignment is encoded in the version of the worker that leases it:
// version 1 gets the workflow file only, version 2 the compiled job only.
func TestAssignmentFor(t *testing.T) {
	a := Assignment{Version: Version, Key: "b", Run: Run{WorkflowYAML: "on: push"}, Job: &Job{Version: Version, ID: "b"}}
	for _, v := range []int{0, 1} {
		if got := a.For(v); got.Version != 1 || got.Job != nil || got.Run.WorkflowYAML != "on: push" {
			t.Errorf("For(%d) = %+v", v, got)
		}
	}
	for _, v := range []int{2, Version, Version + 5} {
		if got := a.For(v); got.Version != min(v, Version) || got.Job == nil || got.Run.WorkflowYAML != "" {
			t.Errorf("For(%d) = %+v", v, got)
		}
	}
	if a.Job == nil || a.Run.WorkflowYAML == "" {
		t.Error("For changed the assignment it was called on")
	}
	noJob := Assignment{Run: Run{WorkflowYAML: "on: push"}}
	if got := noJob.For(Version); got.Run.WorkflowYAML != "on: push" {
		t.Errorf("without a compiled job the file stays: %+v", got)
	}
}
