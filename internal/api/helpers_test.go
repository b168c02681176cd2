package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/api/apitest"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// env is a server on the fake with tokens of every role in org 1, an
// admin of org 2, one repository and one finished run with two jobs.
type env struct {
	f                  *apitest.Fake
	srv                *httptest.Server
	admin, write, read string
	readAdmin          string // an admin's token of scope read
	other              string // admin of org 2
	repo               *store.Repo
	run                *store.Run
	build, test        *store.Job
	otherRun           *store.Run
	otherJob           *store.Job
	started, finished  time.Time
}

func newEnv(t *testing.T, tweak ...func(*api.Deps)) *env {
	t.Helper()
	f := apitest.New()
	e := &env{f: f,
		admin: f.AddToken(1, "admin", store.RoleAdmin), write: f.AddToken(1, "ci", store.RoleWrite),
		read: f.AddToken(1, "viewer", store.RoleRead), readAdmin: f.AddUserToken(1, "ro-admin", store.OrgAdmin, store.RoleRead),
		other: f.AddToken(2, "intruder", store.RoleAdmin)}
	e.srv = httptest.NewUnstartedServer(nil)
	d := f.Deps("http://" + e.srv.Listener.Addr().String())
	for _, fn := range tweak {
		fn(&d)
	}
	e.srv.Config.Handler = api.New(d)
	e.srv.Start()
	t.Cleanup(e.srv.Close)

	var err error
	e.repo, err = f.AddRepo(t.Context(), 1, api.RepoInput{URL: "https://github.com/acme/app.git", Forge: "github",
		Secret: "hook-secret", StatusToken: "status-token", ClonePassword: "clone-pass"})
	if err != nil {
		t.Fatal(err)
	}
	e.started = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	e.finished = e.started.Add(90 * time.Second)
	e.run = f.AddRun(1, e.repo.ID, store.Run{Number: 1, Workflow: ".github/workflows/ci.yml", Name: "CI",
		Event: "push", Ref: "refs/heads/main", SHA: "abc123", Trigger: "webhook", Status: store.StatusFailure,
		Created: e.started, Started: e.started, Finished: e.finished},
		store.Job{Key: "build", Name: "Build", Status: store.StatusSuccess, Attempt: 2, MaxAttempts: 2,
			Outputs: map[string]string{"v": "1"}, LeaseOwner: "replica-7", LeaseToken: 42,
			Started: e.started, Finished: e.finished},
		store.Job{Key: "test", Name: "Test", Needs: []string{"build"}, Status: store.StatusFailure,
			Attempt: 1, MaxAttempts: 2, Error: "step 2 exited with 1"})
	jobs, _ := f.Jobs(t.Context(), 1, e.run.ID)
	e.build, e.test = jobs[0], jobs[1]
	f.AddAttempt(store.Attempt{JobID: e.build.ID, Attempt: 1, Owner: "replica-1", Started: e.started, Reason: "lease expired"})
	e.otherRun = f.AddRun(2, 999, store.Run{Status: store.StatusRunning}, store.Job{Key: "build", Status: store.StatusRunning})
	oj, _ := f.Jobs(t.Context(), 2, e.otherRun.ID)
	e.otherJob = oj[0]
	return e
}

// do sends a request; hdr are name, value pairs.
func (e *env) do(t *testing.T, method, path, token, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// wantJSON checks the status and decodes the body into v (when not nil).
func wantJSON(t *testing.T, resp *http.Response, body []byte, status int, v any) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("decoding %s: %v", body, err)
		}
	}
}

// wantError checks an error answer's status and kind, and that its
// message contains msg.
func wantError(t *testing.T, resp *http.Response, body []byte, status int, kind, msg string) {
	t.Helper()
	var eb api.ErrorBody
	wantJSON(t, resp, body, status, &eb)
	if eb.Error.Kind != kind || !strings.Contains(eb.Error.Message, msg) {
		t.Fatalf("error %+v, want kind %q with message containing %q", eb.Error, kind, msg)
	}
}
