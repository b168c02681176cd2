package api_test

import (
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/store"
	sqlstore "github.com/conveyor-ci/conveyor/internal/store/sql"
)

// TestRetentionAPI: an organisation admin sets the organisation's and a
// repository's retention, which read back; bad days are 400, another
// organisation's repository 404, a viewer may read but not set.
func TestRetentionAPI(t *testing.T) {
	ctx := t.Context()
	db, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "conveyor.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	org, _ := db.EnsureOrg(ctx, "default")
	other, _ := db.EnsureOrg(ctx, "other")
	repo := &store.Repo{OrgID: org.ID, Name: "acme/app"}
	if err := db.CreateRepo(ctx, repo); err != nil {
		t.Fatal(err)
	}
	e := &env{admin: userToken(t, db, org.ID, "admin", store.OrgAdmin, store.RoleAdmin),
		read:  userToken(t, db, org.ID, "viewer", store.OrgViewer, store.RoleRead),
		other: userToken(t, db, other.ID, "intruder", store.OrgAdmin, store.RoleAdmin)}
	e.srv = httptest.NewServer(api.New(api.Deps{Store: db, Retention: db, Accounts: db}))
	defer e.srv.Close()

	var got store.Retention
	resp, b := e.do(t, "GET", "/api/retention", e.read, "")
	if wantJSON(t, resp, b, 200, &got); got != (store.Retention{}) || !strings.Contains(string(b), `"runs_days": null`) {
		t.Errorf("never set: %s", b)
	}
	resp, b = e.do(t, "PUT", "/api/retention", e.admin, `{"runs_days":90,"logs_days":30}`)
	if resp.StatusCode != 200 {
		t.Fatalf("PUT: %d %s", resp.StatusCode, b)
	}
	resp, b = e.do(t, "GET", "/api/retention", e.read, "")
	wantJSON(t, resp, b, 200, &got)
	if got.RunsDays == nil || *got.RunsDays != 90 || *got.LogsDays != 30 || got.ArtifactsDays != nil {
		t.Errorf("read back %s", b)
	}
	repoPath := fmt.Sprintf("/api/repos/%d/retention", repo.ID)
	resp, b = e.do(t, "PUT", repoPath, e.admin, `{"artifacts_days":1}`)
	if resp.StatusCode != 200 {
		t.Fatalf("PUT repo: %d %s", resp.StatusCode, b)
	}
	got = store.Retention{}
	resp, b = e.do(t, "GET", repoPath, e.read, "")
	if wantJSON(t, resp, b, 200, &got); got.RunsDays != nil || got.LogsDays != nil || got.ArtifactsDays == nil || *got.ArtifactsDays != 1 {
		t.Errorf("repo setting: %s", b)
	}
	resp, b = e.do(t, "PUT", "/api/retention", e.admin, `{"runs_days":-5}`)
	wantError(t, resp, b, 400, "invalid", "-5 days")
	resp, b = e.do(t, "PUT", "/api/retention", e.admin, `{"runs":5}`)
	wantError(t, resp, b, 400, "invalid", "unknown field")
	resp, b = e.do(t, "PUT", "/api/retention", e.read, `{}`)
	if resp.StatusCode != 403 {
		t.Errorf("a viewer sets retention: %d %s", resp.StatusCode, b)
	}
	resp, b = e.do(t, "GET", repoPath, e.other, "")
	wantError(t, resp, b, 404, "not_found", "")
	resp, b = e.do(t, "PUT", repoPath, e.other, `{"runs_days":0}`)
	wantError(t, resp, b, 404, "not_found", "")
}
