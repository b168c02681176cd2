package gitmirror

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

const (
	httpUser = "alice"
	httpPass = "s3cr3t-t0ken-value"
)

// gitServer serves src over git's smart HTTP protocol, through the real
// git http-backend, to clients that send Basic credentials alice/httpPass.
func gitServer(t *testing.T, src *source) (repoURL string, authed *atomic.Int64) {
	t.Helper()
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed")
	}
	backend := &cgi.Handler{
		Path: gitPath,
		Args: []string{"http-backend"},
		Env: []string{
			"GIT_PROJECT_ROOT=" + filepath.Dir(src.dir),
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=" + os.DevNull,
		},
	}
	authed = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != httpUser || p != httpPass {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		authed.Add(1)
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/" + filepath.Base(src.dir), authed
}

// noSecret fails if s holds the password in any form git might print.
func noSecret(t *testing.T, what, s string) {
	t.Helper()
	basic := base64.StdEncoding.EncodeToString([]byte(httpUser + ":" + httpPass))
	for _, secret := range []string{httpPass, basic, "wrong-" + httpPass} {
		if strings.Contains(s, secret) {
			t.Errorf("%s leaks a secret: %s", what, s)
		}
	}
}

func TestHTTPCredentials(t *testing.T) {
	src := newSource(t)
	repoURL, authed := gitServer(t, src)
	ctx := context.Background()

	t.Run("none", func(t *testing.T) {
		c, l := newCache(t, Options{})
		err := c.Sync(ctx, key, repoURL, Credentials{})
		if !errs.Is(err, errs.Unauthorized) {
			t.Errorf("Sync without credentials = %v, want Unauthorized", err)
		}
		noSecret(t, "logs", l.all())
	})

	t.Run("wrong", func(t *testing.T) {
		c, l := newCache(t, Options{})
		err := c.Sync(ctx, key, repoURL, Credentials{Username: httpUser, Password: "wrong-" + httpPass})
		if !errs.Is(err, errs.Unauthorized) {
			t.Errorf("Sync with a wrong password = %v, want Unauthorized", err)
		}
		noSecret(t, "error", err.Error())
		noSecret(t, "logs", l.all())
		entries, _ := os.ReadDir(c.dir)
		if len(entries) != 0 {
			t.Errorf("a failed first Sync left %v", entries)
		}
	})

	t.Run("right", func(t *testing.T) {
		c, l := newCache(t, Options{})
		before := authed.Load()
		cred := Credentials{Username: httpUser, Password: httpPass}
		if err := c.Sync(ctx, key, repoURL, cred); err != nil {
			t.Fatal(err)
		}
		if authed.Load() == before {
			t.Error("the server saw no authenticated request")
		}
		files, err := c.ReadFiles(ctx, key, src.main, ".github/workflows")
		if err != nil || len(files) != 3 {
			t.Errorf("ReadFiles = %v, %v", keys(files), err)
		}
		src.write("later.txt", "x")
		later := src.commit("later")
		if err := c.EnsureCommit(ctx, key, repoURL, cred, later); err != nil {
			t.Error(err)
		}
		noSecret(t, "logs", l.all())
		dir, _ := c.repoDir("", key)
		cfg, _ := os.ReadFile(filepath.Join(dir, "config"))
		noSecret(t, "mirror config", string(cfg))
	})

	t.Run("userinfo", func(t *testing.T) {
		c, l := newCache(t, Options{})
		u, _ := url.Parse(repoURL)
		u.User = url.UserPassword(httpUser, httpPass)
		if err := c.Sync(ctx, key, u.String(), Credentials{}); err != nil {
			noSecret(t, "error", err.Error())
			t.Fatal("Sync with credentials in the URL failed")
		}
		noSecret(t, "logs", l.all())
		if !strings.Contains(l.all(), strings.TrimPrefix(repoURL, "http://")) {
			t.Errorf("logs do not show the URL:\n%s", l.all())
		}

		u.User = url.UserPassword(httpUser, "wrong-"+httpPass)
		err := c.Sync(ctx, "other", u.String(), Credentials{})
		if !errs.Is(err, errs.Unauthorized) {
			t.Errorf("wrong password in URL = %v, want Unauthorized", err)
		}
		noSecret(t, "error", err.Error())
		noSecret(t, "logs", l.all())
	})
}
