package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// runReads counts the run listings the server asks of its store.
type runReads struct {
	store.Store
	list, latest atomic.Int64
}

func (c *runReads) ListRuns(ctx context.Context, orgID int64, f store.RunFilter) ([]*store.Run, error) {
	c.list.Add(1)
	return c.Store.ListRuns(ctx, orgID, f)
}

func (c *runReads) LatestRuns(ctx context.Context, orgID int64) ([]*store.Run, error) {
	c.latest.Add(1)
	return c.Store.LatestRuns(ctx, orgID)
}

// homeRow is one repository row of the home page: its link, the status
// and the link of its latest run ("" without one).
var homeRow = regexp.MustCompile(`(?s)<tr>\s*<td><a href="/repos/(\d+)">([^<]*)</a></td>\s*(?:<td><span class="st st-([a-z_]+)".*?<a href="/runs/(\d+)">|<td colspan="3" class="muted">no run yet)`)

// homeRows reads the home page as user in org: repository name → "run
// id:status" (or "none").
func homeRows(t *testing.T, h *harness, user, org string) map[string]string {
	t.Helper()
	c := uiCookieAs(t, h, user, org)
	req, _ := http.NewRequest("GET", h.url+"/", nil)
	req.AddCookie(c)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("home page as %s: %d %s", user, resp.StatusCode, b)
	}
	rows := map[string]string{}
	for _, m := range homeRow.FindAllStringSubmatch(string(b), -1) {
		if m[3] == "" {
			rows[m[2]] = "none"
		} else {
			rows[m[2]] = m[4] + ":" + m[3]
		}
	}
	return rows
}

// TestUIHomeLatestRuns: the home page lists every repository of the
// session's organisation with its latest run's status, reading the runs
// in one store query whatever the number of repositories, and shows
// nothing of another organisation. (Plain HTTP: a browser adds nothing.)
func TestUIHomeLatestRuns(t *testing.T) {
	var reads *runReads
	h := newHarness(t, harnessOpts{wrap: func(s store.Store) store.Store { reads = &runReads{Store: s}; return reads }})
	h.api("PUT", "/api/password", api.PasswordInput{New: uiPassword}, http.StatusNoContent, nil)
	uiUser(h, "tess", store.OrgViewer)
	h.api("POST", "/api/orgs", api.OrgInput{Name: "tenant-b", Admin: "tess"}, http.StatusCreated, nil)
	ctx := context.Background()
	orgB, err := h.st.EnsureOrg(ctx, "tenant-b")
	if err != nil {
		t.Fatal(err)
	}

	// Twelve repositories of the first organisation besides one without
	// runs: repository i has i%3+1 runs, whose
	// jobs no worker takes (their label fits none), so that they stay
	// queued unless cancelled; the latest is cancelled for even i, an
	// older one for odd i.
	const orgA = 1 // the server's first organisation
	idle := uiRepo(t, h, orgA, "acme/idle")
	want := map[string]string{idle.Name: "none"}
	for i := range 12 {
		repo := uiRepo(t, h, orgA, fmt.Sprintf("acme/r%02d", i))
		var runs []*store.Run
		for range i%3 + 1 {
			runs = append(runs, uiQueuedRun(t, h, repo))
		}
		last, status := runs[len(runs)-1], store.StatusQueued
		switch {
		case i%2 == 0:
			uiCancel(t, h, last)
			status = store.StatusCancelled
		case len(runs) > 1:
			uiCancel(t, h, runs[0])
		}
		want[repo.Name] = fmt.Sprintf("%d:%s", last.ID, status)
	}
	theirs := uiRepo(t, h, orgB.ID, "tenant-b/secret-app")
	theirRun := uiQueuedRun(t, h, theirs)

	list0, latest0 := reads.list.Load(), reads.latest.Load()
	got := homeRows(t, h, "admin", "")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("home page rows (repository: run:status):\n%v\nwant\n%v", got, want)
	}
	if n, m := reads.latest.Load()-latest0, reads.list.Load()-list0; n != 1 || m != 0 {
		t.Errorf("the home page of 13 repositories read the runs with %d LatestRuns and %d ListRuns queries, want 1 and 0", n, m)
	}
	// A member of both organisations sees, in each, only its repositories.
	if got := homeRows(t, h, "tess", "tenant-b"); fmt.Sprint(got) != fmt.Sprintf("map[%s:%d:%s]", theirs.Name, theirRun.ID, store.StatusQueued) {
		t.Errorf("tenant-b's home page: %v", got)
	}
	if got := homeRows(t, h, "tess", "default"); len(got) != len(want) || got[theirs.Name] != "" {
		t.Errorf("the first organisation's home page as tess: %v", got)
	}
}

// uiRepo registers a repository of org straight in the store.
func uiRepo(t *testing.T, h *harness, orgID int64, name string) *store.Repo {
	t.Helper()
	r := &store.Repo{OrgID: orgID, Name: name, URL: "https://example.com/" + name, Forge: "github", Secret: "s", Branch: "main"}
	if err := h.st.CreateRepo(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

// uiQueuedRun stores a run of repo whose one job waits for a label no
// worker has.
func uiQueuedRun(t *testing.T, h *harness, repo *store.Repo) *store.Run {
	t.Helper()
	r := &store.Run{RepoID: repo.ID, OrgID: repo.OrgID, Workflow: ".github/workflows/ci.yml", Name: "CI",
		Event: "push", Ref: "refs/heads/main", SHA: "abc123", Trigger: "webhook"}
	runs, err := h.st.CreateRuns(context.Background(), []store.NewRun{{Run: r,
		Jobs: []*store.Job{{Key: "a", Name: "a", Labels: []string{"no-such-machine"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	return runs[0]
}

func uiCancel(t *testing.T, h *harness, r *store.Run) {
	t.Helper()
	if _, err := h.st.CancelRun(context.Background(), r.OrgID, r.ID, "test"); err != nil {
		t.Fatal(err)
	}
}

// uiCookieAs signs in as user (in org, "": the user's only or first
// one) through the login form and returns the session cookie.
func uiCookieAs(t *testing.T, h *harness, user, org string) *http.Cookie {
	t.Helper()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(h.url + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var csrf *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "conveyor_login_csrf" {
			csrf = c
		}
	}
	if csrf == nil {
		t.Fatal("no login CSRF cookie")
	}
	form := url.Values{"csrf": {csrf.Value}, "user": {user}, "password": {uiPassword}, "org": {org}}
	req, _ := http.NewRequest("POST", h.url+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(csrf)
	if resp, err = noRedirect.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "conveyor_session" {
			return c
		}
	}
	t.Fatalf("login as %s: %d, no session cookie", user, resp.StatusCode)
	return nil
}
