package actions

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// gitHTTPServer serves the repositories under root over git's smart HTTP
// protocol (git http-backend), answering 401 unless the request carries
// the token the way GitHub takes it.
func gitHTTPServer(t *testing.T, root, token string) *httptest.Server {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatal(err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		t.Fatalf("git http-backend: %v", err)
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+token))
	h := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Authorization"), want) {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A private repository over real HTTP: the token opens it, its absence
// is an unauthorized error that says what to do, and the token shows in
// no error.
func TestPrivateRepositoryOverHTTPWithToken(t *testing.T) {
	rm := newRemote(t, "acme", "private")
	sha := rm.commit("index.js", "secret sauce\n")
	rm.git("tag", "v1")
	root := strings.TrimPrefix(rm.base, "file://")
	const token = "ghp_exampleTokenValue123"
	srv := gitHTTPServer(t, root, token)

	dir := t.TempDir()
	c, err := New(Options{Dir: dir, BaseURL: srv.URL, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Resolve(context.Background(), mustParse(t, "acme/private@v1"))
	if err != nil || res.SHA != sha {
		t.Fatalf("with the token: %+v %v", res, err)
	}
	// After the TTL, ls-remote goes through the same authorisation.
	later, _ := New(Options{Dir: dir, BaseURL: srv.URL, Token: token, Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if res, err := later.Resolve(context.Background(), mustParse(t, "acme/private@v1")); err != nil || res.SHA != sha || res.Warning != "" {
		t.Fatalf("re-resolved: %+v %v", res, err)
	}
	if st := later.Stats(); st != (Stats{Resolves: 1}) {
		t.Fatalf("stats after the TTL: %+v", st)
	}
	if b, _ := os.ReadFile(filepath.Join(res.Dir, "index.js")); string(b) != "secret sauce\n" {
		t.Fatalf("tree: %q", b)
	}

	for name, tok := range map[string]string{"no token": "", "wrong token": "not-it"} {
		c, err := New(Options{Dir: t.TempDir(), BaseURL: srv.URL, Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Resolve(context.Background(), mustParse(t, "acme/private@v1"))
		if !errs.Is(err, errs.Unauthorized) || !strings.Contains(err.Error(), "--actions-token") || !strings.Contains(err.Error(), "acme/private@v1") {
			t.Errorf("%s: %v (kind %v)", name, err, errs.KindOf(err))
		}
		if tok != "" && strings.Contains(err.Error(), tok) {
			t.Errorf("%s: the token is in the error: %v", name, err)
		}
	}
}
