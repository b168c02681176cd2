package web

import (
	"bytes"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// page is what every template gets.
type page struct {
	Title   string
	S       *sess
	Version string
	Assets  string // the assets' version in their URLs
	// Live, when set, makes the page refresh its #live region every Live
	// milliseconds (app.js).
	Live int
	Data any
}

var funcs = template.FuncMap{
	"shortRef":   shortRef,
	"shortSHA":   shortSHA,
	"firstLine":  func(s string) string { return firstLine(plain(s)) },
	"statusText": statusLabel,
	"terminal":   terminal,
	"human":      human,
	"span": func(start, end *time.Time, now time.Time) string {
		return span(start, end, now)
	},
	"when": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"iso": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"unescape": func(s string) string {
		v, err := url.QueryUnescape(s)
		if err != nil {
			return s
		}
		return v
	},
	// query builds a query string from key, value pairs, skipping empty values.
	"query": func(kv ...string) string {
		q := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				q.Set(kv[i], kv[i+1])
			}
		}
		if len(q) == 0 {
			return ""
		}
		return "?" + q.Encode()
	},
	"add": func(a, b int) int { return a + b },
	// bytes formats a size: 1.5 MiB.
	"bytes": func(n int64) string {
		const unit = 1024
		if n < unit {
			return strconv.FormatInt(n, 10) + " B"
		}
		f, i := float64(n), 0
		for f >= unit && i < 4 {
			f /= unit
			i++
		}
		return strconv.FormatFloat(f, 'f', 1, 64) + " " + []string{"", "KiB", "MiB", "GiB", "TiB"}[i]
	},
	// webURL: an http(s) URL, which a page may link to.
	"webURL": func(s string) bool {
		u, err := url.Parse(s)
		return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
	},
	// secs formats a number of seconds (float or integer text).
	"secs": func(v any) string {
		var f float64
		switch x := v.(type) {
		case float64:
			f = x
		case string:
			f, _ = strconv.ParseFloat(x, 64)
		}
		return human(time.Duration(f * float64(time.Second)))
	},
}

// parsePages parses each page template together with the layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		pages[base] = t
	}
	return pages, nil
}

// render writes a page; with ?partial=1 (the live refresh) only its
// "live" block.
func (u *ui) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.Version, p.Assets = u.Version, u.assets
	t := u.pages[name]
	what := "layout"
	if r.URL.Query().Get("partial") == "1" && t.Lookup("live") != nil {
		what = "live"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, what, p); err != nil {
		u.Log.Error("web: rendering", "page", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type errorView struct{ Message string }

func (u *ui) errorPage(w http.ResponseWriter, r *http.Request, s *sess, status int, msg string) {
	if status < 400 {
		status = http.StatusInternalServerError
	}
	u.render(w, r, status, "error", page{Title: http.StatusText(status), S: s, Data: errorView{Message: msg}})
}
