package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// fakeAPI answers the few API routes the pages call, as internal/api
// does, and records the changes asked of it.
type fakeAPI struct {
	mu    sync.Mutex
	calls []string
	role  string // the caller's role ("": developer)
}

const runJSON = `{"run":{"id":1,"repo_id":3,"number":4,"name":"Deploy","workflow":".github/workflows/deploy.yml","event":"push",
"ref":"refs/heads/main","sha":"0123456789abcdef","trigger":"webhook","status":"running","attempt":1,
"commit_message":"<b>bold</b> move\u001b[31m","actor":"octocat","created":"2026-01-01T00:00:00Z","started":"2026-01-01T00:00:01Z"},
"jobs":[{"id":2,"key":"deploy","name":"Deploy","status":"awaiting_approval","attempt":1,"max_attempts":1,
"environment":{"name":"production","url":"javascript:alert(1)"},
"approval":{REVIEW"reviewers":[{"user":"alice"},{"role":"maintainer"}],"wait_until":"2099-01-02T00:00:00Z",
"decisions":[{"user":"bob","decision":"approved","comment":"<script>x()</script>","at":"2026-01-01T00:00:05Z"}]}},
{"id":5,"key":"build","name":"Build","status":"success","attempt":1,"max_attempts":1,"started":"2026-01-01T00:00:01Z","finished":"2026-01-01T00:01:02Z"}]}`

func (f *fakeAPI) record(r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+r.URL.RequestURI()+" "+string(b))
	f.mu.Unlock()
}

func (f *fakeAPI) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/api/login" {
		var in struct{ User, Password string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		if in.User != "ann" || in.Password != "pw" {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":{"kind":"unauthorized","message":"wrong user name or password"}}`)
			return
		}
		io.WriteString(w, `{"token":"cvy_secret","token_id":7,"expires":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`","user":"ann","org":"acme","org_id":1,"role":"developer"}`)
		return
	}
	if r.Header.Get("Authorization") != "Bearer cvy_secret" {
		w.WriteHeader(401)
		io.WriteString(w, `{"error":{"kind":"unauthorized","message":"unknown or revoked token"}}`)
		return
	}
	switch r.Method + " " + r.URL.Path {
	case "GET /api/whoami":
		f.mu.Lock()
		role := f.role
		f.mu.Unlock()
		if role == "" {
			role = "developer"
		}
		io.WriteString(w, `{"org_id":1,"token":"login","role":"admin","user":"ann","org_role":"`+role+`"}`)
	case "POST /api/runs/1/cancel":
		f.record(r)
		io.WriteString(w, `{"id":1,"status":"cancelled"}`)
	case "POST /api/runs/1/rerun":
		f.record(r)
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id":8,"status":"queued"}`)
	case "GET /api/runs/1":
		// The API says whether the caller may review (a maintainer may).
		f.mu.Lock()
		review := `"may_review":false,"review_refused":"user ann is not a reviewer of environment <production>",`
		if f.role == "maintainer" {
			review = `"may_review":true,`
		}
		f.mu.Unlock()
		io.WriteString(w, strings.Replace(runJSON, "REVIEW", review, 1))
	case "GET /api/runs/1/artifacts":
		io.WriteString(w, `{"artifacts":[{"id":1,"name":"dist <x>","size":1536,"job":"build","created":"2026-01-01T00:00:00Z"}]}`)
	case "GET /api/runs/1/artifacts/dist <x>":
		w.Header().Set("Content-Type", "application/gzip")
		w.Header().Set("Content-Disposition", `attachment; filename="dist.tar.gz"`)
		io.WriteString(w, "tarball")
	case "GET /api/repos/3":
		io.WriteString(w, `{"id":3,"name":"acme/app","hook_url":"http://x/hooks/3"}`)
	case "GET /api/runs/1/jobs/2/logs":
		f.mu.Lock()
		f.calls = append(f.calls, fmt.Sprintf("logs %s accept=%q last-event-id=%q", r.URL.RequestURI(), r.Header.Get("Accept"), r.Header.Get("Last-Event-ID")))
		f.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "log text\n")
	case "GET /api/repos/3/environments":
		io.WriteString(w, `{"items":[{"name":"prod<x>","reviewers":[{"user":"alice"},{"role":"maintainer"}],"wait_minutes":5,
"branches":["main"],"tags":[],"prevent_self_review":true,"protected":true}]}`)
	case "POST /api/runs/1/jobs/2/approve", "POST /api/runs/1/jobs/2/reject", "DELETE /api/tokens/7",
		"PUT /api/repos/3/environments/prod<x>", "DELETE /api/repos/3/environments/prod<x>", "PATCH /api/repos/3":
		f.record(r)
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{}`)
	default:
		w.WriteHeader(404)
		io.WriteString(w, `{"error":{"kind":"not_found","message":"no such API endpoint"}}`)
	}
}

func newUI(t *testing.T, base string) (*httptest.Server, *fakeAPI) {
	t.Helper()
	f := &fakeAPI{}
	h, err := New(Deps{API: f, BaseURL: base, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, f
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, u string, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	return do(t, req)
}

func post(t *testing.T, u string, form url.Values, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func cookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn logs in through the form and returns the session cookie.
func signIn(t *testing.T, base string) *http.Cookie {
	t.Helper()
	resp, body := get(t, base+"/login?next=/runs/1")
	lc := cookie(resp, loginCSRFCookie)
	m := csrfInput.FindStringSubmatch(body)
	if lc == nil || m == nil || m[1] != lc.Value {
		t.Fatalf("login page without its CSRF token: %v\n%s", lc, body)
	}
	resp, body = post(t, base+"/login", url.Values{"csrf": {m[1]}, "user": {"ann"}, "password": {"pw"}, "next": {"/runs/1"}}, lc)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/runs/1" {
		t.Fatalf("login: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	sc := cookie(resp, sessionCookie)
	if sc == nil || sc.Value != "7.cvy_secret" || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode {
		t.Fatalf("session cookie %+v", sc)
	}
	return sc
}

func TestRedirectToLoginAndBack(t *testing.T) {
	srv, _ := newUI(t, "http://example.com")
	resp, _ := get(t, srv.URL+"/runs/1?x=1")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Fruns%2F1%3Fx%3D1" {
		t.Fatalf("anonymous run page: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	sc := signIn(t, srv.URL)
	if sc.Secure {
		t.Error("Secure cookie on a plain-HTTP server")
	}
	resp, body := get(t, srv.URL+"/runs/1", sc)
	if resp.StatusCode != 200 {
		t.Fatalf("run page: %d %s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	// A stale cookie goes back to the login page.
	resp, _ = get(t, srv.URL+"/runs/1", &http.Cookie{Name: sessionCookie, Value: "7.revoked"})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Errorf("revoked session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestSecureCookieBehindHTTPS(t *testing.T) {
	srv, _ := newUI(t, "https://ci.example.com")
	if sc := signIn(t, srv.URL); !sc.Secure {
		t.Errorf("session cookie of an https server is not Secure: %+v", sc)
	}
}

func TestLoginRefusals(t *testing.T) {
	srv, _ := newUI(t, "http://example.com")
	resp, body := post(t, srv.URL+"/login", url.Values{"user": {"ann"}, "password": {"pw"}})
	if resp.StatusCode != http.StatusForbidden || cookie(resp, sessionCookie) != nil || !strings.Contains(body, "CSRF") {
		t.Errorf("login without CSRF token: %d %s", resp.StatusCode, body)
	}
	resp, _ = get(t, srv.URL+"/login")
	lc := cookie(resp, loginCSRFCookie)
	resp, body = post(t, srv.URL+"/login", url.Values{"csrf": {lc.Value}, "user": {"ann"}, "password": {"nope"}}, lc)
	if resp.StatusCode != http.StatusUnauthorized || cookie(resp, sessionCookie) != nil || !strings.Contains(body, "wrong user name or password") {
		t.Errorf("wrong password: %d %s", resp.StatusCode, body)
	}
}

func TestRunPageApproval(t *testing.T) {
	srv, f := newUI(t, "http://example.com")
	sc := signIn(t, srv.URL)
	// ann, a developer, is not a reviewer (alice and role maintainer are):
	// the API says so, and the page shows why instead of the buttons.
	if _, body := get(t, srv.URL+"/runs/1", sc); strings.Contains(body, `/jobs/2/approve"`) || !strings.Contains(body, "Reviewers: alice") ||
		!strings.Contains(body, "You cannot approve or reject this job: user ann is not a reviewer of environment &lt;production&gt;") {
		t.Errorf("a developer who is not a reviewer sees the approval form (or no reviewers, or no reason):\n%s", body)
	}
	f.mu.Lock()
	f.role = "maintainer"
	f.mu.Unlock()
	_, body := get(t, srv.URL+"/runs/1", sc)
	for _, want := range []string{
		`action="/runs/1/jobs/2/approve"`, `formaction="/runs/1/jobs/2/reject"`, "production", "Reviewers: alice, role maintainer",
		"bob approved", "Waits until", "&lt;script&gt;x()&lt;/script&gt;", "&lt;b&gt;bold&lt;/b&gt; move",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("run page lacks %s", want)
		}
	}
	for _, bad := range []string{"<script>x()", `href="javascript`, "\x1b", "<b>bold", "You cannot approve"} {
		if strings.Contains(body, bad) {
			t.Errorf("run page contains %q", bad)
		}
	}
	if n := strings.Count(body, `class="node `); n != 2 {
		t.Errorf("%d graph nodes, want 2", n)
	}
	csrf := csrfInput.FindStringSubmatch(body)[1]

	resp, _ := post(t, srv.URL+"/runs/1/jobs/2/approve", url.Values{"comment": {"ship it"}}, sc)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("approve without CSRF token: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/runs/1/jobs/2/approve", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.AddCookie(sc)
	if resp, _ := do(t, req); resp.StatusCode != http.StatusForbidden {
		t.Errorf("approve from another origin: %d", resp.StatusCode)
	}
	if got := f.recorded(); len(got) != 0 {
		t.Fatalf("refused forms reached the API: %q", got)
	}
	resp, _ = post(t, srv.URL+"/runs/1/jobs/2/approve", url.Values{"csrf": {csrf}, "comment": {"ship it"}}, sc)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/runs/1" {
		t.Errorf("approve: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The public URL's origin is accepted whatever Host a proxy sends.
	req, _ = http.NewRequest("POST", srv.URL+"/runs/1/jobs/2/reject", strings.NewReader(url.Values{"csrf": {csrf}, "comment": {"not today"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://example.com")
	req.AddCookie(sc)
	if resp, _ = do(t, req); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("reject: %d", resp.StatusCode)
	}
	want := []string{`POST /api/runs/1/jobs/2/approve {"comment":"ship it"}`, `POST /api/runs/1/jobs/2/reject {"comment":"not today"}`}
	if got := f.recorded(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("API calls %q, want %q", got, want)
	}
}

func TestLogoutRevokesTheSession(t *testing.T) {
	srv, f := newUI(t, "http://example.com")
	sc := signIn(t, srv.URL)
	_, body := get(t, srv.URL+"/runs/1", sc)
	csrf := csrfInput.FindStringSubmatch(body)[1]
	resp, _ := post(t, srv.URL+"/logout", url.Values{"csrf": {csrf}}, sc)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("logout: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if c := cookie(resp, sessionCookie); c == nil || c.MaxAge >= 0 {
		t.Errorf("session cookie not cleared: %+v", c)
	}
	if got := f.recorded(); len(got) != 1 || !strings.HasPrefix(got[0], "DELETE /api/tokens/7") {
		t.Errorf("API calls %q, want the session token revoked", got)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/runs/1": "/runs/1", "/repos/2?status=failure": "/repos/2?status=failure", "": "/",
		"//evil.example": "/", "/\\evil.example": "/", "https://evil.example": "/", "javascript:x": "/", "/a\r\nSet-Cookie: x": "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLayoutGraph(t *testing.T) {
	var d runDetail
	if err := json.Unmarshal([]byte(`{"jobs":[{"id":1,"key":"a"},{"id":2,"key":"b","needs":["a"]},{"id":3,"key":"c","needs":["a","b"]},
	{"id":4,"key":"m","needs":["a"],"results":[{"name":"m (1)","result":"success"},{"name":"m (2)","result":"failure"}]}]}`), &d); err != nil {
		t.Fatal(err)
	}
	g := layoutGraph(9, d.Jobs, time.Now())
	if len(g.Nodes) != 4 || len(g.Edges) != 4 {
		t.Fatalf("%d nodes, %d edges", len(g.Nodes), len(g.Edges))
	}
	col := func(i int) int { return (g.Nodes[i].X - pad) / (nodeW + colGap) }
	if col(0) != 0 || col(1) != 1 || col(2) != 2 || col(3) != 1 {
		t.Errorf("columns %d %d %d %d, want 0 1 2 1", col(0), col(1), col(2), col(3))
	}
	if n := g.Nodes[3]; len(n.Legs) != 2 || n.Legs[1].Status != "failure" || n.H != nodeHead+2*legH || n.Href != "/runs/9/jobs/4" {
		t.Errorf("matrix node %+v", n)
	}
	if g.Nodes[1].Y == g.Nodes[3].Y {
		t.Error("two nodes of a column overlap")
	}
}

func FuzzPlain(f *testing.F) {
	for _, s := range []string{"plain", "\x1b[31mred\x1b[0m", "\x1b]8;;javascript:x()\x1b\\link\x1b]8;;\x1b\\", "\x1b]0;t\x07", "a\x00b\u0085c", "\x1bP1$r\x1b\\", "\x1b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := plain(s)
		if strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 && r != '\t' && r != '\n' || r == 0x7f || r >= 0x80 && r <= 0x9f }) {
			t.Errorf("plain(%q) = %q keeps a control character", s, p)
		}
		if !strings.Contains(s, "\x1b") && !strings.ContainsFunc(s, unicode.IsControl) && utf8.ValidString(s) && p != s {
			t.Errorf("plain(%q) = %q changed text without escapes", s, p)
		}
	})
}

// TestLogRoutes: the live log asks the API for SSE and resumes where the
// browser says (Last-Event-ID, or ?after= when it reopens the stream);
// the raw log downloads as a file.
func TestLogRoutes(t *testing.T) {
	srv, f := newUI(t, "http://example.com")
	sc := signIn(t, srv.URL)
	req, _ := http.NewRequest("GET", srv.URL+"/runs/1/jobs/2/log/stream", nil)
	req.Header.Set("Last-Event-ID", "41")
	req.AddCookie(sc)
	do(t, req)
	get(t, srv.URL+"/runs/1/jobs/2/log/stream?after=42&evil=1", sc)
	resp, body := get(t, srv.URL+"/runs/1/jobs/2/log?download=1", sc)
	if body != "log text\n" || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment;") {
		t.Errorf("raw log: %q %v", body, resp.Header)
	}
	want := []string{
		`logs /api/runs/1/jobs/2/logs accept="text/event-stream" last-event-id="41"`,
		`logs /api/runs/1/jobs/2/logs?after=42 accept="text/event-stream" last-event-id=""`,
		`logs /api/runs/1/jobs/2/logs accept="" last-event-id=""`,
	}
	if got := f.recorded(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("API calls\n%q\nwant\n%q", got, want)
	}
}

// TestRunActions: cancel and the re-runs call the API and land on the run
// they concern; a viewer sees no buttons.
func TestRunActions(t *testing.T) {
	srv, f := newUI(t, "http://example.com")
	sc := signIn(t, srv.URL)
	_, body := get(t, srv.URL+"/runs/1", sc)
	if !strings.Contains(body, `action="/runs/1/cancel"`) || strings.Contains(body, `action="/runs/1/rerun"`) {
		t.Errorf("a running run offers cancel and no re-run:\n%s", body)
	}
	csrf := csrfInput.FindStringSubmatch(body)[1]
	for action, to := range map[string]string{"cancel": "/runs/1", "rerun": "/runs/8", "rerun-failed": "/runs/8"} {
		resp, _ := post(t, srv.URL+"/runs/1/"+action, url.Values{"csrf": {csrf}}, sc)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != to {
			t.Errorf("%s: %d %s, want a redirect to %s", action, resp.StatusCode, resp.Header.Get("Location"), to)
		}
	}
	got := strings.Join(f.recorded(), "\n")
	for _, want := range []string{"POST /api/runs/1/cancel ", `POST /api/runs/1/rerun {"failed":false}`, `POST /api/runs/1/rerun {"failed":true}`} {
		if !strings.Contains(got, want) {
			t.Errorf("API calls lack %q:\n%s", want, got)
		}
	}
	f.mu.Lock()
	f.role = "viewer"
	f.mu.Unlock()
	_, body = get(t, srv.URL+"/runs/1", sc)
	if strings.Contains(body, `action="/runs/1/cancel"`) || strings.Contains(body, "/approve") {
		t.Errorf("a viewer is offered actions:\n%s", body)
	}
}

func TestArtifacts(t *testing.T) {
	srv, _ := newUI(t, "http://example.com")
	sc := signIn(t, srv.URL)
	_, body := get(t, srv.URL+"/runs/1", sc)
	if !strings.Contains(body, `href="/runs/1/artifacts/dist%20%3cx%3e"`) || !strings.Contains(body, "1.5 KiB") {
		t.Errorf("run page lacks the artifact:\n%s", body)
	}
	resp, body := get(t, srv.URL+"/runs/1/artifacts/dist%20%3cx%3e", sc)
	if resp.StatusCode != 200 || body != "tarball" || resp.Header.Get("Content-Disposition") != `attachment; filename="dist.tar.gz"` {
		t.Errorf("download: %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

func TestJobPage(t *testing.T) {
	srv, _ := newUI(t, "http://example.com")
	sc := signIn(t, srv.URL)
	for _, ref := range []string{"2", "deploy"} {
		resp, body := get(t, srv.URL+"/runs/1/jobs/"+ref, sc)
		if resp.StatusCode != 200 || !strings.Contains(body, `data-stream="/runs/1/jobs/2/log/stream"`) ||
			!strings.Contains(body, "production") || !strings.Contains(body, `href="/runs/1/jobs/2/log?download=1"`) {
			t.Errorf("job page %s: %d\n%s", ref, resp.StatusCode, body)
		}
	}
	if resp, _ := get(t, srv.URL+"/runs/1/jobs/nope", sc); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown job: %d", resp.StatusCode)
	}
	// The live refresh asks for the page's live region only.
	_, body := get(t, srv.URL+"/runs/1/jobs/5?partial=1", sc)
	if !strings.HasPrefix(body, `<div id="live" data-live="0">`) || strings.Contains(body, "<html") {
		t.Errorf("partial of a finished job:\n%s", body)
	}
}

func TestRepoSettingsEnvironments(t *testing.T) {
	srv, f := newUI(t, "http://example.com")
	sc := signIn(t, srv.URL)
	forms := []string{`id="env-form"`, `id="envmap-form"`, `id="sandbox-form"`}
	for role, want := range map[string]int{"developer": 0, "maintainer": 2, "admin": 3} {
		f.mu.Lock()
		f.role = role
		f.mu.Unlock()
		_, body := get(t, srv.URL+"/repos/3/settings?env=PROD%3Cx%3E", sc)
		for i, form := range forms {
			if strings.Contains(body, form) != (i < want) {
				t.Errorf("%s: form %s shown %v", role, form, !(i < want))
			}
		}
		if !strings.Contains(body, "prod&lt;x&gt;") || !strings.Contains(body, "alice, role maintainer") || strings.Contains(body, "prod<x>") {
			t.Errorf("%s: environments table:\n%s", role, body)
		}
		if role == "admin" && !strings.Contains(body, `value="alice, role:maintainer"`) {
			t.Errorf("the edit form is not filled in:\n%s", body)
		}
	}
	_, body := get(t, srv.URL+"/repos/3/settings", sc)
	csrf := csrfInput.FindStringSubmatch(body)[1]
	for action, form := range map[string]url.Values{
		"environment":        {"name": {"prod<x>"}, "reviewers": {"bob, role:admin"}, "wait_minutes": {"3"}, "branches": {"main,\nrelease/*"}, "prevent_self_review": {"on"}},
		"delete-environment": {"name": {"prod<x>"}},
		"sandbox":            {"network_policy": {"none"}, "runtime": {" runsc "}},
		"env-map":            {"rules": {"main = prod<x>\n\n"}, "other": {"dev"}},
	} {
		form.Set("csrf", csrf)
		if resp, body := post(t, srv.URL+"/repos/3/settings/"+action, form, sc); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("%s: %d %s", action, resp.StatusCode, body)
		}
	}
	got := strings.Join(f.recorded(), "\n")
	for _, want := range []string{
		`PUT /api/repos/3/environments/prod%3Cx%3E {"reviewers":[{"user":"bob"},{"role":"admin"}],"wait_minutes":3,"branches":["main","release/*"],"prevent_self_review":true}`,
		`DELETE /api/repos/3/environments/prod%3Cx%3E`,
		`PATCH /api/repos/3 {"skip_fork_approval":false,"network_policy":"none","runtime":"runsc"}`,
		`PATCH /api/repos/3 {"env_map":{"rules":[{"branch":"main","environment":"prod\u003cx\u003e"}],"other":"dev"}}`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("API calls lack %s:\n%s", want, got)
		}
	}
	for _, bad := range []url.Values{{"name": {"x"}, "wait_minutes": {"soon"}}, {"name": {" "}}} {
		bad.Set("csrf", csrf)
		if resp, _ := post(t, srv.URL+"/repos/3/settings/environment", bad, sc); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("environment form %v: %d, want 400", bad, resp.StatusCode)
		}
	}
	if resp, body := post(t, srv.URL+"/repos/3/settings/env-map", url.Values{"csrf": {csrf}, "rules": {"main production"}}, sc); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "line 1") {
		t.Errorf("a mapping line without =: %d %s", resp.StatusCode, body)
	}
}
