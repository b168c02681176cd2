package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/api/apitest"
	"github.com/conveyor-ci/conveyor/internal/client"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

func TestClientEndToEnd(t *testing.T) {
	f := apitest.New()
	srv := f.Server(t)
	c := client.New(srv.URL+"/", f.AddToken(1, "admin", store.RoleAdmin), srv.Client())
	ctx := t.Context()

	who, err := c.WhoAmI(ctx)
	if err != nil || who.Token != "admin" || who.Role != "admin" || who.OrgID != 1 {
		t.Fatalf("WhoAmI = %+v, %v", who, err)
	}
	created, err := c.AddRepo(ctx, api.RepoInput{URL: "https://github.com/acme/app", Forge: "github", Secret: "s3"})
	if err != nil || created.Secret != "s3" || created.HookURL != srv.URL+"/hooks/"+itoa(created.Repo.ID) {
		t.Fatalf("AddRepo = %+v, %v", created, err)
	}
	repos, err := c.ListRepos(ctx)
	if err != nil || len(repos) != 1 || repos[0].Name != "acme/app" {
		t.Fatalf("ListRepos = %+v, %v", repos, err)
	}
	for _, ref := range []string{"acme/app", itoa(created.Repo.ID)} {
		if r, err := c.FindRepo(ctx, ref); err != nil || r.ID != created.Repo.ID {
			t.Errorf("FindRepo(%s) = %+v, %v", ref, r, err)
		}
	}
	if _, err := c.FindRepo(ctx, "no/such"); !errs.Is(err, errs.NotFound) {
		t.Errorf("FindRepo(no/such) error = %v", err)
	}
	evID, err := c.Dispatch(ctx, created.Repo.ID, api.DispatchInput{Workflow: "ci.yml", Inputs: map[string]string{"a": "b"}})
	if err != nil || evID == 0 {
		t.Fatalf("Dispatch = %d, %v", evID, err)
	}
	if ev, err := c.GetEvent(ctx, evID); err != nil || ev.State != "pending" {
		t.Errorf("GetEvent = %+v, %v", ev, err)
	}

	run := f.AddRun(1, created.Repo.ID, store.Run{Status: store.StatusFailure, Workflow: "ci.yml"},
		store.Job{Key: "a", Status: store.StatusSuccess}, store.Job{Key: "b", Status: store.StatusFailure})
	f.AddRun(1, created.Repo.ID, store.Run{Status: store.StatusRunning})
	list, err := c.ListRuns(ctx, client.RunFilter{RepoID: created.Repo.ID, Status: "failure", Limit: 10})
	if err != nil || len(list.Runs) != 1 || list.Runs[0].ID != run.ID {
		t.Fatalf("ListRuns = %+v, %v", list, err)
	}
	d, err := c.GetRun(ctx, run.ID)
	if err != nil || len(d.Jobs) != 2 || d.Jobs[1].Status != "failure" {
		t.Fatalf("GetRun = %+v, %v", d, err)
	}
	rr, err := c.Rerun(ctx, run.ID, true)
	if err != nil || rr.RerunOf != run.ID {
		t.Fatalf("Rerun = %+v, %v", rr, err)
	}
	cr, err := c.Cancel(ctx, rr.ID)
	if err != nil || cr.Status != store.StatusCancelled {
		t.Fatalf("Cancel = %+v, %v", cr, err)
	}
}

func TestClientErrors(t *testing.T) {
	f := apitest.New()
	srv := f.Server(t)
	ctx := t.Context()
	reader := client.New(srv.URL, f.AddToken(1, "r", store.RoleRead), nil)
	tests := []struct {
		name   string
		call   func() error
		kind   errs.Kind
		status int
		msg    string
	}{
		{"not found", func() error { _, err := reader.GetRun(ctx, 12); return err }, errs.NotFound, 404, "run 12: not found"},
		{"forbidden", func() error { _, err := reader.Cancel(ctx, 12); return err }, errs.Forbidden, 403, "needs role developer and a token of scope write"},
		{"unauthorized", func() error {
			_, err := client.New(srv.URL, "bad", nil).ListRepos(ctx)
			return err
		}, errs.Unauthorized, 401, "unknown or revoked token"},
		{"invalid", func() error {
			_, err := reader.ListRuns(ctx, client.RunFilter{Status: "nope"})
			return err
		}, errs.Invalid, 400, `status "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var ce *client.Error
			if errs.KindOf(err) != tt.kind || !errors.As(err, &ce) || ce.Status != tt.status || ce.Message == "" {
				t.Fatalf("err = %v (kind %v), want kind %v status %d", err, errs.KindOf(err), tt.kind, tt.status)
			}
			if got := err.Error(); !contains(got, tt.msg) {
				t.Errorf("message %q lacks %q", got, tt.msg)
			}
		})
	}

	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
	}))
	defer proxy.Close()
	_, err := client.New(proxy.URL, "t", nil).ListRepos(ctx)
	if !errs.Is(err, errs.Unavailable) || !contains(err.Error(), "502") {
		t.Errorf("proxy error = %v", err)
	}
	proxy.Close()
	_, err = client.New(proxy.URL, "t", nil).ListRepos(ctx)
	if !errs.Is(err, errs.Unavailable) || !contains(err.Error(), "cannot reach") {
		t.Errorf("unreachable = %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := reader.ListRepos(cctx); !errs.Is(err, errs.Canceled) {
		t.Errorf("canceled = %v", err)
	}
}
