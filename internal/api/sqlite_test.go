package api_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/logs"
	"github.com/conveyor-ci/conveyor/internal/store"
	sqlstore "github.com/conveyor-ci/conveyor/internal/store/sql"
)

// storeActions is the least Actions over a real store: enough to see the
// store's own rules (unique names, org scoping, cancel) through the API.
type storeActions struct{ db store.Store }

func (a storeActions) AddRepo(ctx context.Context, orgID int64, in api.RepoInput) (*store.Repo, error) {
	r := &store.Repo{OrgID: orgID, Name: in.Name, URL: in.URL, Forge: in.Forge, Secret: in.Secret, Branch: in.Branch}
	if r.Secret == "" {
		r.Secret = rand.Text()
	}
	return r, a.db.CreateRepo(ctx, r)
}

func (a storeActions) Dispatch(ctx context.Context, orgID, repoID int64, in api.DispatchInput) (int64, error) {
	acc, err := a.db.Accept(ctx, []*store.Event{{OrgID: orgID, RepoID: repoID, Source: "api",
		Name: "workflow_dispatch", Body: []byte(`{}`), Received: time.Now(), State: store.EventPending}})
	if err != nil {
		return 0, err
	}
	return acc[0].ID, nil
}

func (a storeActions) UpdateRepo(ctx context.Context, orgID, id int64, in api.RepoUpdate) (*store.Repo, error) {
	return a.db.UpdateRepo(ctx, orgID, id, store.RepoSettings{RunTestDeliveries: in.RunTestDeliveries, Secret: in.Secret})
}

func (a storeActions) Cancel(ctx context.Context, orgID, runID int64) (*store.Run, error) {
	return a.db.CancelRun(ctx, orgID, runID, "cancelled through the API")
}

func (a storeActions) Rerun(context.Context, int64, int64, bool) (*store.Run, error) {
	return nil, errs.E("rerun", errs.Unavailable, "not in this test")
}

// userToken makes a user called name with role member in org and a token
// of scope for them, and returns its secret.
func userToken(t *testing.T, db store.Store, orgID int64, name string, member store.OrgRole, scope store.Role) string {
	t.Helper()
	ctx := t.Context()
	u, err := db.UserByName(ctx, name)
	if errs.Is(err, errs.NotFound) {
		u = &store.User{Name: name}
		err = db.CreateUser(ctx, u)
	}
	if err != nil {
		t.Fatal(err)
	}
	if member != "" {
		if err := db.SetMember(ctx, orgID, u.ID, member); err != nil {
			t.Fatal(err)
		}
	}
	secret := "cvy_" + rand.Text()
	sum := sha256.Sum256([]byte(secret))
	if err := db.CreateToken(ctx, &store.Token{OrgID: orgID, UserID: u.ID, Name: name, Role: scope, Hash: sum[:]}); err != nil {
		t.Fatal(err)
	}
	return secret
}

func TestWithSQLiteStore(t *testing.T) {
	ctx := t.Context()
	db, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "conveyor.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	org, err := db.EnsureOrg(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := db.EnsureOrg(ctx, "other")
	token := func(orgID int64, name string, role store.Role) string {
		member := map[store.Role]store.OrgRole{store.RoleAdmin: store.OrgAdmin, store.RoleRead: store.OrgViewer}[role]
		return userToken(t, db, orgID, name, member, role)
	}
	hub := logs.NewHub()
	e := &env{admin: token(org.ID, "admin", store.RoleAdmin), read: token(org.ID, "viewer", store.RoleRead),
		other: token(other.ID, "intruder", store.RoleAdmin)}
	e.srv = httptest.NewUnstartedServer(nil)
	e.srv.Config.Handler = api.New(api.Deps{Store: db, Actions: storeActions{db}, Notifier: hub,
		BaseURL: "http://" + e.srv.Listener.Addr().String(), Poll: 50 * time.Millisecond})
	e.srv.Start()
	defer e.srv.Close()

	var created api.RepoCreated
	resp, b := e.do(t, "POST", "/api/repos", e.admin, `{"url":"https://github.com/acme/app","forge":"github","name":"acme/app"}`)
	wantJSON(t, resp, b, 201, &created)
	if created.Secret == "" || created.HookURL != fmt.Sprintf("%s/hooks/%d", e.srv.URL, created.Repo.ID) {
		t.Fatalf("created %+v", created)
	}
	resp, b = e.do(t, "POST", "/api/repos", e.admin, `{"url":"https://github.com/acme/app","forge":"github","name":"acme/app"}`)
	wantError(t, resp, b, 409, "conflict", "")

	runs, err := db.CreateRuns(ctx, []store.NewRun{{
		Run: &store.Run{RepoID: created.Repo.ID, Workflow: "ci.yml", Name: "CI", Event: "push", Ref: "refs/heads/main", Trigger: "webhook",
			EventJSON: []byte(`{"event":{"name":"push","head_commit":"fix the build\n\nbody","sender":"octocat"},"payload":{"big":[1,2,3]}}`)},
		Jobs: []*store.Job{{Key: "build", Name: "Build", Status: store.StatusQueued, MaxAttempts: 2},
			{Key: "test", Name: "Test", Needs: []string{"build"}, Status: store.StatusWaiting, MaxAttempts: 2}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	run := runs[0]
	lease, err := db.Lease(ctx, store.LeaseRequest{Owner: "test", TTL: time.Minute})
	if err != nil || lease == nil || lease.Job.Key != "build" {
		t.Fatalf("lease %+v, %v", lease, err)
	}
	if _, err := db.AppendLog(ctx, lease.Job.ID, []byte("compiling\n")); err != nil {
		t.Fatal(err)
	}
	logsPath := fmt.Sprintf("/api/runs/%d/jobs/build/logs", run.ID)
	s := openSSE(t, ctx, e.srv.URL+logsPath, e.read)
	s.until("data: compiling")
	db.AppendLog(ctx, lease.Job.ID, []byte("linked"))
	hub.Notify(lease.Job.ID)
	s.until("data: linked")
	if err := db.Complete(ctx, lease.Job.ID, lease.Job.LeaseToken, store.Completion{Status: store.StatusSuccess, Outputs: map[string]string{"v": "2"}}); err != nil {
		t.Fatal(err)
	}
	hub.Notify(lease.Job.ID)
	s.until("data: success")

	resp, b = e.do(t, "GET", logsPath, e.read, "")
	if resp.StatusCode != 200 || string(b) != "compiling\nlinked" {
		t.Errorf("plain log: %d %q", resp.StatusCode, b)
	}
	var d api.RunDetail
	resp, b = e.do(t, "GET", fmt.Sprintf("/api/runs/%d", run.ID), e.read, "")
	wantJSON(t, resp, b, 200, &d)
	if len(d.Jobs) != 2 || d.Jobs[0].Status != "success" || d.Jobs[0].Outputs["v"] != "2" || d.Jobs[1].Status != "queued" || d.Run.Status != "running" {
		t.Errorf("run detail %s", b)
	}
	for _, path := range []string{fmt.Sprintf("/api/runs/%d", run.ID), logsPath, fmt.Sprintf("/api/repos/%d", created.Repo.ID)} {
		resp, b = e.do(t, "GET", path, e.other, "")
		wantError(t, resp, b, 404, "not_found", "not found")
	}
	var list api.RunList
	resp, b = e.do(t, "GET", fmt.Sprintf("/api/runs?repo=%d&status=running", created.Repo.ID), e.read, "")
	wantJSON(t, resp, b, 200, &list)
	if len(list.Runs) != 1 || list.Runs[0].ID != run.ID {
		t.Errorf("runs %s", b)
	}
	if r := list.Runs[0]; r.CommitMessage != "fix the build\n\nbody" || r.Actor != "octocat" {
		t.Errorf("run's commit message and actor: %s", b)
	}
	for q, want := range map[string]int{
		"ref=main": 1, "ref=refs/heads/main": 1, "ref=dev": 0, "ref=refs/tags/main": 0,
		"workflow=ci.yml": 1, "workflow=other.yml": 0, "event=push": 1, "event=pull_request": 0,
		"ref=main&event=push&workflow=ci.yml&status=running": 1, "ref=main&event=schedule": 0,
	} {
		list = api.RunList{}
		resp, b = e.do(t, "GET", fmt.Sprintf("/api/runs?repo=%d&%s", created.Repo.ID, q), e.read, "")
		wantJSON(t, resp, b, 200, &list)
		if len(list.Runs) != want {
			t.Errorf("runs?%s: %d runs, want %d", q, len(list.Runs), want)
		}
	}
	var cancelled api.Run
	resp, b = e.do(t, "POST", fmt.Sprintf("/api/runs/%d/cancel", run.ID), e.admin, "")
	wantJSON(t, resp, b, 200, &cancelled)
	if cancelled.Status != store.StatusCancelled {
		t.Errorf("cancel: %s", b)
	}
	resp, b = e.do(t, "POST", fmt.Sprintf("/api/runs/%d/cancel", run.ID), e.admin, "")
	wantError(t, resp, b, 409, "conflict", "")

	var ev api.Dispatched
	resp, b = e.do(t, "POST", fmt.Sprintf("/api/repos/%d/dispatch", created.Repo.ID), e.admin, `{"workflow":"ci.yml"}`)
	wantJSON(t, resp, b, 202, &ev)
	var got api.Event
	resp, b = e.do(t, "GET", fmt.Sprintf("/api/events/%d", ev.EventID), e.read, "")
	wantJSON(t, resp, b, 200, &got)
	if got.State != store.EventPending || !strings.Contains(string(b), `"received"`) {
		t.Errorf("event %s", b)
	}
}
