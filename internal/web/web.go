// Package web is Conveyor's browser UI: server-rendered pages (Go
// html/template) with a little JavaScript, every asset embedded. It holds
// no data of its own: each page calls the REST API in-process with the
// session's token, so the API's access rules are the UI's, and a session
// is a login token of /api/login kept in an HttpOnly cookie.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Deps is what the UI is built from; internal/server wires them.
type Deps struct {
	// API is the REST API handler (internal/api), called in-process.
	API http.Handler
	// BaseURL is the server's public URL; an https one makes the cookies
	// Secure (as does a request over TLS).
	BaseURL string
	Version string
	// Log receives internal errors; nil discards them.
	Log *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

type ui struct {
	Deps
	pages  map[string]*template.Template
	secure bool
	// baseHost is BaseURL's host, an Origin forms may come from (a proxy
	// may change the Host header); assets is the assets' content hash,
	// their URLs' version.
	baseHost string
	assets   string
}

// csp allows nothing inline and nothing from elsewhere.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// New returns the UI's handler, for every path outside /api/ and /hooks/.
func New(d Deps) (http.Handler, error) {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	u := &ui{Deps: d, secure: strings.HasPrefix(d.BaseURL, "https://")}
	if bu, err := url.Parse(d.BaseURL); err == nil {
		u.baseHost = bu.Host
	}
	var err error
	if u.pages, err = parsePages(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	if u.assets, err = hashFiles(static); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.Handle("GET /static/", cacheFor(24*time.Hour, files))
	mux.HandleFunc("GET /login", u.loginPage)
	mux.HandleFunc("POST /login", u.login)
	mux.HandleFunc("POST /logout", u.session(u.logout))
	mux.HandleFunc("GET /{$}", u.session(u.home))
	mux.HandleFunc("GET /repos/{id}", u.session(u.repoRuns))
	mux.HandleFunc("GET /repos/{id}/settings", u.session(u.repoSettings))
	mux.HandleFunc("POST /repos/{id}/settings/{action}", u.session(u.repoSettingsPost))
	mux.HandleFunc("GET /org", u.session(u.orgSettings))
	mux.HandleFunc("POST /org/{action}", u.session(u.orgSettingsPost))
	mux.HandleFunc("GET /runs/{id}", u.session(u.runPage))
	mux.HandleFunc("POST /runs/{id}/{action}", u.session(u.runAction))
	mux.HandleFunc("POST /runs/{id}/jobs/{job}/{action}", u.session(u.jobAction))
	mux.HandleFunc("GET /runs/{id}/jobs/{job}", u.session(u.jobPage))
	mux.HandleFunc("GET /runs/{id}/artifacts/{name}", u.session(u.artifact))
	mux.HandleFunc("GET /runs/{id}/jobs/{job}/log", u.session(u.rawLog))
	mux.HandleFunc("GET /runs/{id}/jobs/{job}/log/stream", u.session(u.logStream))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		u.errorPage(w, r, nil, http.StatusNotFound, "No such page: "+r.URL.Path)
	})
	return headers(mux), nil
}

// headers sets the security headers of every answer.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// hashFiles is a short hash of every file of fsys: assets' URLs change
// with their content, so that a long cache never serves stale ones.
func hashFiles(fsys fs.FS) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		h.Write([]byte(p))
		h.Write(b)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))[:12], err
}

func cacheFor(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age="+itoa(int64(d.Seconds())))
		next.ServeHTTP(w, r)
	})
}
