package jobspec

import (
	"encoding/json"
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
