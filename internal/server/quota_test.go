package server

import (
	"crypto/sha256"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/store"
)

const quotaFlow = `name: Quota
on: [push, workflow_dispatch]
jobs:
  a:
    runs-on: ubuntu-latest
    timeout-minutes: 600
    steps:
      - run: sleep 0.4
  b:
    runs-on: ubuntu-latest
    steps:
      - run: sleep 0.4
  c:
    runs-on: ubuntu-latest
    steps:
      - run: sleep 0.4
`

func ptr[T any](v T) *T { return &v }

// TestQuotaOnTheServer: with a maximum of one concurrent job the run's
// other jobs wait as queued: quota and never run together; the timeout is
// capped and the log says so; the build seconds of the finished jobs add up
// to the month's usage; over the monthly limit, dispatch and re-run answer
// 403 with the reason and a push stores a failed run with it.
func TestQuotaOnTheServer(t *testing.T) {
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/q.yml": quotaFlow}})
	var q api.Quota
	h.api("PUT", "/api/orgs/default/quota", api.QuotaInput{MaxConcurrentJobs: ptr(1), MaxTimeoutMinutes: ptr(5)}, http.StatusOK, &q)
	if q.MaxConcurrentJobs != 1 || q.MaxTimeoutMinutes != 5 || q.Org != "default" {
		t.Fatalf("quota set: %+v", q)
	}
	if code, body := h.hook("push", h.push("main"), "d-quota-1"); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	var runID int64
	sawQuota := false
	waitFor(t, 60*time.Second, "the run to finish", func() bool {
		runs, _ := h.st.ListRuns(t.Context(), 1, store.RunFilter{})
		if len(runs) == 0 {
			return false
		}
		runID = runs[0].ID
		var d api.RunDetail
		h.api("GET", "/api/runs/"+itoa(runID), nil, http.StatusOK, &d)
		running := 0
		for _, j := range d.Jobs {
			if j.Status == store.StatusRunning {
				running++
			}
			if j.Status == store.StatusQueued && j.Queue == "quota" {
				sawQuota = sawQuota || strings.HasPrefix(j.WaitingReason, "queued: quota")
			}
		}
		if running > 1 {
			t.Fatalf("%d jobs running at once under a quota of 1", running)
		}
		return store.Terminal(d.Run.Status)
	})
	if !sawQuota {
		t.Error("no job was ever shown as queued: quota")
	}
	var d api.RunDetail
	h.api("GET", "/api/runs/"+itoa(runID), nil, http.StatusOK, &d)
	if d.Run.Status != store.StatusSuccess {
		t.Fatalf("run %s: %+v", d.Run.Status, d.Jobs)
	}
	if l := h.jobLog(runID, "a"); !strings.Contains(l, "timeout of 10h0m0s is capped to 5m0s") {
		t.Errorf("job a's log does not say its timeout was capped:\n%s", l)
	}
	if l := h.jobLog(runID, "b"); !strings.Contains(l, "timeout of 6h0m0s is capped to 5m0s") {
		t.Errorf("job b's log does not say the default timeout was capped:\n%s", l)
	}
	var sum float64
	for _, j := range d.Jobs {
		if j.BuildSeconds < 0.4 {
			t.Errorf("job %s metered %.3f build seconds, less than its sleep", j.Key, j.BuildSeconds)
		}
		sum += j.BuildSeconds
	}
	var u api.Usage
	h.api("GET", "/api/usage", nil, http.StatusOK, &u)
	// Whole milliseconds, as stored: a sum of float seconds is not exact.
	if u.Jobs != 3 || math.Round(u.BuildSeconds*1000) != math.Round(sum*1000) || u.Month != store.Month(time.Now()) {
		t.Fatalf("usage %+v, want 3 jobs and %.3f s (the jobs' sum)", u, sum)
	}

	// Over the monthly limit: new runs are refused with the reason.
	h.api("PUT", "/api/orgs/default/quota", api.QuotaInput{MonthlyBuildSeconds: ptr(int64(1))}, http.StatusOK, &q)
	if q.MaxConcurrentJobs != 1 || q.MonthlyBuildSeconds != 1 {
		t.Fatalf("quota after setting only the monthly limit: %+v", q)
	}
	code, b, _ := h.agentCall("POST", "/api/repos/"+itoa(h.repo.ID)+"/dispatch", h.token, api.DispatchInput{Workflow: "q.yml"})
	if code != http.StatusForbidden || !strings.Contains(string(b), "monthly build-seconds limit reached") {
		t.Errorf("dispatch over the limit: %d %s", code, b)
	}
	code, b, _ = h.agentCall("POST", "/api/runs/"+itoa(runID)+"/rerun", h.token, api.RerunInput{})
	if code != http.StatusForbidden || !strings.Contains(string(b), "monthly build-seconds limit reached") {
		t.Errorf("re-run over the limit: %d %s", code, b)
	}
	h.git.commit("another", nil)
	if code, body := h.hook("push", h.push("main"), "d-quota-2"); code != http.StatusAccepted {
		t.Fatalf("push over the limit: %d %s", code, body)
	}
	runs := h.waitRuns(2, 30*time.Second)
	refused := runs[0]
	if refused.Status != store.StatusFailure || !strings.HasPrefix(refused.Error, "monthly build-seconds limit reached") {
		t.Fatalf("run over the limit: %s %q", refused.Status, refused.Error)
	}
	if js := h.jobs(refused.ID); len(js) != 0 {
		t.Errorf("the refused run has %d jobs", len(js))
	}
	// Another organisation's admin learns nothing of this one's usage or quota.
	other, err := h.st.CreateOrg(t.Context(), "other", 0)
	if err != nil {
		t.Fatal(err)
	}
	u2 := &store.User{Name: "other-admin"}
	if err := h.st.CreateUser(t.Context(), u2); err != nil {
		t.Fatal(err)
	}
	if err := h.st.SetMember(t.Context(), other.ID, u2.ID, store.OrgAdmin); err != nil {
		t.Fatal(err)
	}
	sum2 := sha256.Sum256([]byte("cvy_other_admin"))
	if err := h.st.CreateToken(t.Context(), &store.Token{OrgID: other.ID, UserID: u2.ID, Name: "o", Role: store.RoleAdmin, Hash: sum2[:]}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/usage?org=default", "/api/orgs/default/quota"} {
		if code, b, _ := h.agentCall("GET", path, "cvy_other_admin", nil); code != http.StatusNotFound || strings.Contains(string(b), "build_seconds") {
			t.Errorf("GET %s as another organisation's admin: %d %s; want 404", path, code, b)
		}
	}
	var own api.Usage
	if code, b, _ := h.agentCall("GET", "/api/usage", "cvy_other_admin", nil); code != http.StatusOK ||
		json.Unmarshal(b, &own) != nil || own.Org != "other" || own.Jobs != 0 {
		t.Errorf("GET /api/usage of its own organisation: %d %s", code, b)
	}
	var audit api.AuditList
	h.api("GET", "/api/audit", nil, http.StatusOK, &audit)
	n := 0
	for _, e := range audit.Entries {
		if e.Action == "quota.set" && e.Target == "org default" {
			n++
		}
	}
	if n != 2 {
		b, _ := json.Marshal(audit)
		t.Errorf("%d quota.set audit entries, want 2: %s", n, b)
	}
}
