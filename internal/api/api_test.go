package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/store"
)

func TestAuth(t *testing.T) {
	e := newEnv(t)
	run := fmt.Sprintf("/api/runs/%d", e.run.ID)
	tests := []struct {
		name, method, path, token, auth string
		status                          int
		kind, msg                       string
	}{
		{"missing", "GET", "/api/runs", "", "", 401, "unauthorized", "missing Authorization"},
		{"not bearer", "GET", "/api/runs", "", "Basic YTpi", 401, "unauthorized", "Bearer"},
		{"empty bearer", "GET", "/api/runs", "", "Bearer ", 401, "unauthorized", "Bearer"},
		{"unknown", "GET", "/api/runs", "cvy_nope", "", 401, "unauthorized", "unknown"},
		{"read cannot cancel", "POST", run + "/cancel", e.read, "", 403, "forbidden", "needs role developer and a token of scope write"},
		{"read cannot dispatch", "POST", fmt.Sprintf("/api/repos/%d/dispatch", e.repo.ID), e.read, "", 403, "forbidden", "needs role developer"},
		{"write cannot add repos", "POST", "/api/repos", e.write, "", 403, "forbidden", "needs role maintainer and a token of scope admin"},
		{"admin's read token cannot cancel", "POST", run + "/cancel", e.readAdmin, "", 403, "forbidden", `token "ro-admin" has scope read`},
		{"other org run", "GET", run, e.other, "", 404, "not_found", fmt.Sprintf("run %d: not found", e.run.ID)},
		{"other org repo", "GET", fmt.Sprintf("/api/repos/%d", e.repo.ID), e.other, "", 404, "not_found", "not found"},
		{"other org cancel", "POST", run + "/cancel", e.other, "", 404, "not_found", "not found"},
		{"other org logs", "GET", run + "/jobs/build/logs", e.other, "", 404, "not_found", "not found"},
		{"other org dispatch", "POST", fmt.Sprintf("/api/repos/%d/dispatch", e.repo.ID), e.other, "", 404, "not_found", "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.auth != "" {
				hdr = []string{"Authorization", tt.auth}
			}
			body := ""
			if tt.name == "other org dispatch" {
				body = `{"workflow":"ci.yml"}`
			}
			resp, b := e.do(t, tt.method, tt.path, tt.token, body, hdr...)
			wantError(t, resp, b, tt.status, tt.kind, tt.msg)
			if tt.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	// The other org's own objects are not visible to org 1 either.
	resp, b := e.do(t, "GET", fmt.Sprintf("/api/runs/%d/jobs/%d/logs", e.otherRun.ID, e.otherJob.ID), e.admin, "")
	wantError(t, resp, b, 404, "not_found", "not found")
}

func TestWhoAmI(t *testing.T) {
	e := newEnv(t)
	for token, want := range map[string]api.WhoAmI{
		e.read:      {OrgID: 1, Token: "viewer", Role: "read", User: "viewer", OrgRole: "viewer", Version: "test"},
		e.readAdmin: {OrgID: 1, Token: "ro-admin", Role: "read", User: "ro-admin", OrgRole: "admin", Version: "test"},
		e.other:     {OrgID: 2, Token: "intruder", Role: "admin", User: "intruder", OrgRole: "admin", Version: "test"},
	} {
		var got api.WhoAmI
		resp, b := e.do(t, "GET", "/api/whoami", token, "")
		wantJSON(t, resp, b, 200, &got)
		if got != want {
			t.Errorf("whoami = %+v, want %+v", got, want)
		}
	}
}

func TestRepos(t *testing.T) {
	e := newEnv(t)
	var created api.RepoCreated
	resp, b := e.do(t, "POST", "/api/repos", e.admin, `{"url":"https://gitea.example/team/lib.git","forge":"gitea","branch":"dev","status_token":"tok-xyz"}`)
	wantJSON(t, resp, b, 201, &created)
	r := created.Repo
	if r.Name != "team/lib" || r.Forge != "gitea" || r.Branch != "dev" || !r.HasStatusToken || created.Secret == "" ||
		created.HookURL != fmt.Sprintf("%s/hooks/%d", e.srv.URL, r.ID) || r.HookURL != created.HookURL {
		t.Fatalf("created = %+v", created)
	}
	if strings.Contains(string(b), "tok-xyz") {
		t.Errorf("create answer shows the status token: %s", b)
	}

	var list api.RepoList
	resp, b = e.do(t, "GET", "/api/repos", e.read, "")
	wantJSON(t, resp, b, 200, &list)
	if len(list.Repos) != 2 || list.Repos[1].ID != r.ID {
		t.Fatalf("list = %+v", list)
	}
	for _, secret := range []string{"hook-secret", "status-token", "clone-pass", created.Secret, "tok-xyz"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("repo list shows %q: %s", secret, b)
		}
	}
	resp, b = e.do(t, "GET", "/api/repos?name=team/lib", e.read, "")
	wantJSON(t, resp, b, 200, &list)
	if len(list.Repos) != 1 || list.Repos[0].ID != r.ID {
		t.Fatalf("list by name = %+v", list)
	}
	resp, b = e.do(t, "GET", "/api/repos?name=no/such", e.read, "")
	wantJSON(t, resp, b, 200, &list)
	if len(list.Repos) != 0 {
		t.Fatalf("list by unknown name = %+v", list)
	}
	resp, b = e.do(t, "GET", "/api/repos?name=team/lib", e.other, "")
	wantJSON(t, resp, b, 200, &list)
	if len(list.Repos) != 0 {
		t.Fatalf("other org sees %+v", list)
	}

	// ?latest_runs=true: each listed repository's latest run, in the
	// same answer; only the caller's organisation's.
	newer := e.f.AddRun(1, e.repo.ID, store.Run{Number: 2, Name: "CI", Status: store.StatusRunning})
	resp, b = e.do(t, "GET", "/api/repos?latest_runs=true", e.read, "")
	wantJSON(t, resp, b, 200, &list)
	if len(list.Repos) != 2 || len(list.LatestRuns) != 1 || list.LatestRuns[0].ID != newer.ID ||
		list.LatestRuns[0].RepoID != e.repo.ID || list.LatestRuns[0].Status != store.StatusRunning {
		t.Fatalf("list with latest runs = %s", b)
	}
	resp, b = e.do(t, "GET", "/api/repos?latest_runs=true&name=team/lib", e.read, "")
	list = api.RepoList{}
	wantJSON(t, resp, b, 200, &list)
	if len(list.Repos) != 1 || len(list.LatestRuns) != 0 {
		t.Fatalf("latest runs of a repository without runs = %s", b)
	}
	resp, b = e.do(t, "GET", "/api/repos?latest_runs=true", e.other, "")
	list = api.RepoList{}
	wantJSON(t, resp, b, 200, &list)
	if len(list.LatestRuns) != 0 {
		t.Fatalf("another organisation sees latest runs: %s", b)
	}
	_, b = e.do(t, "GET", "/api/repos", e.read, "")
	if strings.Contains(string(b), "latest_runs") {
		t.Errorf("latest runs without asking: %s", b)
	}

	var one api.Repo
	resp, b = e.do(t, "GET", fmt.Sprintf("/api/repos/%d", e.repo.ID), e.read, "")
	wantJSON(t, resp, b, 200, &one)
	if one.Name != "acme/app" || one.Created.IsZero() || strings.Contains(string(b), "hook-secret") {
		t.Fatalf("get = %s", b)
	}
}

func TestReposErrors(t *testing.T) {
	e := newEnv(t)
	big := `{"url":"` + strings.Repeat("x", api.MaxBody) + `","forge":"github"}`
	tests := []struct {
		name, method, path, body string
		status                   int
		kind, msg                string
	}{
		{"duplicate", "POST", "/api/repos", `{"url":"https://github.com/acme/app","forge":"github"}`, 409, "conflict", "already registered"},
		{"bad forge", "POST", "/api/repos", `{"url":"https://x/a/b","forge":"svn"}`, 400, "invalid", "forge"},
		{"unknown field", "POST", "/api/repos", `{"url":"https://x/a/b","forge":"github","colour":"red"}`, 400, "invalid", `unknown field "colour"`},
		{"bad json", "POST", "/api/repos", `{"url":`, 400, "invalid", "request body"},
		{"wrong type", "POST", "/api/repos", `{"url":1}`, 400, "invalid", "request body"},
		{"trailing data", "POST", "/api/repos", `{"url":"https://x/a/b","forge":"github"} {}`, 400, "invalid", "after the JSON"},
		{"no body", "POST", "/api/repos", "", 400, "invalid", "required"},
		{"too large", "POST", "/api/repos", big, 413, "too_large", "larger than"},
		{"bad id", "GET", "/api/repos/abc", "", 400, "invalid", `id "abc"`},
		{"zero id", "GET", "/api/repos/0", "", 400, "invalid", "positive"},
		{"unknown id", "GET", "/api/repos/9999", "", 404, "not_found", "repo 9999: not found"},
		{"unknown endpoint", "GET", "/api/nothing", "", 404, "not_found", "no such API endpoint"},
		{"wrong method", "DELETE", "/api/repos", "", 405, "invalid", "not allowed"},
		{"bad latest_runs", "GET", "/api/repos?latest_runs=yes", "", 400, "invalid", `latest_runs="yes"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := e.do(t, tt.method, tt.path, e.admin, tt.body)
			wantError(t, resp, b, tt.status, tt.kind, tt.msg)
		})
	}
}

func TestDispatchAndEvent(t *testing.T) {
	e := newEnv(t)
	path := fmt.Sprintf("/api/repos/%d/dispatch", e.repo.ID)
	var d api.Dispatched
	resp, b := e.do(t, "POST", path, e.write, `{"workflow":"deploy.yml","ref":"v1.2","inputs":{"env":"prod"}}`)
	wantJSON(t, resp, b, 202, &d)
	stored := e.f.Event(d.EventID)
	if stored == nil || stored.RepoID != e.repo.ID || stored.OrgID != 1 || !strings.Contains(string(stored.Body), `"env":"prod"`) {
		t.Fatalf("stored event %+v", stored)
	}
	var ev api.Event
	resp, b = e.do(t, "GET", fmt.Sprintf("/api/events/%d", d.EventID), e.read, "")
	wantJSON(t, resp, b, 200, &ev)
	if ev.ID != d.EventID || ev.State != store.EventPending || ev.Source != "api" || ev.Name != "workflow_dispatch" {
		t.Fatalf("event = %+v", ev)
	}
	resp, b = e.do(t, "GET", fmt.Sprintf("/api/events/%d", d.EventID), e.other, "")
	wantError(t, resp, b, 404, "not_found", fmt.Sprintf("event %d: not found", d.EventID))

	for _, tt := range []struct{ name, path, body, msg string }{
		{"no workflow", path, `{"ref":"main"}`, "workflow is required"},
		{"refused by actions", path, `{"workflow":"missing.yml","ref":"main"}`, "missing.yml not found"},
		{"unknown field", path, `{"workflow":"a.yml","input":{}}`, "unknown field"},
		{"inputs not strings", path, `{"workflow":"a.yml","inputs":{"n":1}}`, "request body"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := e.do(t, "POST", tt.path, e.write, tt.body)
			wantError(t, resp, b, 400, "invalid", tt.msg)
		})
	}
	resp, b = e.do(t, "POST", "/api/repos/4242/dispatch", e.write, `{"workflow":"a.yml"}`)
	wantError(t, resp, b, 404, "not_found", "repo 4242: not found")
}

func TestListRuns(t *testing.T) {
	e := newEnv(t)
	second, _ := e.f.AddRepo(t.Context(), 1, api.RepoInput{URL: "https://github.com/acme/two", Forge: "github"})
	var ids []int64
	for i := range 5 {
		r := e.f.AddRun(1, second.ID, store.Run{Number: int64(i + 1), Status: []string{"queued", "success"}[i%2]})
		ids = append(ids, r.ID)
	}
	get := func(t *testing.T, q string) api.RunList {
		t.Helper()
		var l api.RunList
		resp, b := e.do(t, "GET", "/api/runs"+q, e.read, "")
		wantJSON(t, resp, b, 200, &l)
		return l
	}
	if l := get(t, ""); len(l.Runs) != 6 || l.Runs[0].ID != ids[4] || l.NextBefore != 0 {
		t.Errorf("all runs: %+v", l)
	}
	if l := get(t, fmt.Sprintf("?repo=%d", e.repo.ID)); len(l.Runs) != 1 || l.Runs[0].ID != e.run.ID {
		t.Errorf("by repo: %+v", l)
	}
	if l := get(t, "?status=queued"); len(l.Runs) != 3 {
		t.Errorf("by status: %+v", l)
	}
	l := get(t, "?limit=2")
	if len(l.Runs) != 2 || l.NextBefore != ids[3] {
		t.Fatalf("page 1: %+v", l)
	}
	if l := get(t, fmt.Sprintf("?limit=2&before=%d", l.NextBefore)); len(l.Runs) != 2 || l.Runs[0].ID != ids[2] {
		t.Errorf("page 2: %+v", l)
	}
	var other api.RunList
	resp, b := e.do(t, "GET", "/api/runs", e.other, "")
	wantJSON(t, resp, b, 200, &other)
	if len(other.Runs) != 1 || other.Runs[0].ID != e.otherRun.ID {
		t.Errorf("org 2 sees %+v", other)
	}
	for _, q := range []string{"?limit=0", "?limit=501", "?limit=x", "?status=done", "?repo=x", "?before=-1"} {
		resp, b := e.do(t, "GET", "/api/runs"+q, e.read, "")
		wantError(t, resp, b, 400, "invalid", "")
	}
}

func TestGetRun(t *testing.T) {
	e := newEnv(t)
	var d api.RunDetail
	resp, b := e.do(t, "GET", fmt.Sprintf("/api/runs/%d", e.run.ID), e.read, "")
	wantJSON(t, resp, b, 200, &d)
	if d.Run.ID != e.run.ID || d.Run.Status != "failure" || d.Run.Workflow != ".github/workflows/ci.yml" ||
		!d.Run.Started.Equal(e.started) || len(d.Jobs) != 2 {
		t.Fatalf("run = %s", b)
	}
	build, test := d.Jobs[0], d.Jobs[1]
	if build.Key != "build" || build.Attempt != 2 || build.Outputs["v"] != "1" || len(build.Interrupted) != 1 ||
		build.Interrupted[0].Reason != "lease expired" || build.Interrupted[0].Worker != "replica-1" {
		t.Errorf("build = %+v", build)
	}
	if test.Status != "failure" || test.Error != "step 2 exited with 1" || test.Started != nil || test.Needs[0] != "build" {
		t.Errorf("test = %+v", test)
	}
	// RFC 3339 times; no lease internals.
	for _, want := range []string{`"started": "2025-03-01T10:00:00Z"`, `"finished": "2025-03-01T10:01:30Z"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("answer lacks %s: %s", want, b)
		}
	}
	if strings.Contains(string(b), "replica-7") || strings.Contains(string(b), "lease") && !strings.Contains(string(b), "lease expired") {
		t.Errorf("answer shows the lease: %s", b)
	}
	resp, b = e.do(t, "GET", "/api/runs/77777", e.read, "")
	wantError(t, resp, b, 404, "not_found", "run 77777: not found")
}

func TestCancel(t *testing.T) {
	e := newEnv(t)
	run := e.f.AddRun(1, e.repo.ID, store.Run{Status: store.StatusRunning}, store.Job{Key: "a", Status: store.StatusRunning})
	var got api.Run
	resp, b := e.do(t, "POST", fmt.Sprintf("/api/runs/%d/cancel", run.ID), e.write, "")
	wantJSON(t, resp, b, 200, &got)
	if got.ID != run.ID || got.Status != store.StatusCancelled {
		t.Fatalf("cancel = %+v", got)
	}
	resp, b = e.do(t, "POST", fmt.Sprintf("/api/runs/%d/cancel", run.ID), e.write, "")
	wantError(t, resp, b, 409, "conflict", "already finished")
	resp, b = e.do(t, "POST", "/api/runs/88888/cancel", e.write, "")
	wantError(t, resp, b, 404, "not_found", "run 88888: not found")
}

func TestRerun(t *testing.T) {
	e := newEnv(t)
	path := fmt.Sprintf("/api/runs/%d/rerun", e.run.ID)
	var got api.Run
	resp, b := e.do(t, "POST", path, e.write, `{"failed": true}`)
	wantJSON(t, resp, b, 201, &got)
	if got.RerunOf != e.run.ID || got.Attempt != 2 || got.ID == e.run.ID {
		t.Fatalf("rerun = %+v", got)
	}
	var d api.RunDetail
	resp, b = e.do(t, "GET", fmt.Sprintf("/api/runs/%d", got.ID), e.read, "")
	wantJSON(t, resp, b, 200, &d)
	if d.Jobs[0].ReusedFrom != e.build.ID || d.Jobs[1].ReusedFrom != 0 || d.Jobs[1].Status != "queued" {
		t.Errorf("rerun jobs = %+v", d.Jobs)
	}
	resp, b = e.do(t, "POST", path, e.write, "") // empty body: the whole run
	wantJSON(t, resp, b, 201, &got)
	resp, b = e.do(t, "POST", path, e.write, `{"failed": "yes"}`)
	wantError(t, resp, b, 400, "invalid", "request body")
	resp, b = e.do(t, "POST", fmt.Sprintf("/api/runs/%d/rerun", got.ID), e.write, "")
	wantError(t, resp, b, 409, "conflict", "still queued")
}

// failingRuns answers ListRuns with an error that has no kind.
type failingRuns struct{ api.Store }

func (failingRuns) ListRuns(context.Context, int64, store.RunFilter) ([]*store.Run, error) {
	return nil, errors.New("sql: database is locked at /secret/path")
}

func TestInternalErrorIsGeneric(t *testing.T) {
	e := newEnv(t, func(d *api.Deps) { d.Store = failingRuns{d.Store} })
	resp, b := e.do(t, "GET", "/api/runs", e.read, "")
	wantError(t, resp, b, http.StatusInternalServerError, "internal", "internal error")
	if strings.Contains(string(b), "secret") {
		t.Errorf("internal error leaks its text: %s", b)
	}
}

func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	resp, b := e.do(t, "GET", "/api/openapi.json", "", "")
	var doc map[string]any
	wantJSON(t, resp, b, 200, &doc)
	if doc["openapi"] != "3.0.3" {
		t.Errorf("openapi = %v", doc["openapi"])
	}
}
