package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
)

// Cookies: the session is the login token's secret (HttpOnly, so scripts
// never see it); the organisation's name is only shown; the login CSRF
// cookie protects the login form, which comes before any session.
const (
	sessionCookie   = "conveyor_session"
	orgCookie       = "conveyor_org"
	loginCSRFCookie = "conveyor_login_csrf"
	csrfField       = "csrf"
	// maxForm caps a form's body (a secret's value is at most the API's
	// body limit).
	maxForm = 1 << 20
)

// sess is the signed-in caller of a page.
type sess struct {
	token   string
	tokenID int64
	who     api.WhoAmI
	org     string
	csrf    string
}

type sessHandler func(w http.ResponseWriter, r *http.Request, s *sess)

// csrfToken is the session's form token: derived from the session secret,
// so that a page of another site can neither read nor forge it, and it
// dies with the session.
func csrfToken(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("conveyor web form"))
	return hex.EncodeToString(m.Sum(nil))
}

func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// session authenticates the request by its cookie (checked by the API's
// /api/whoami), checks the CSRF token of a POST, and calls h. A visitor
// without a valid session is sent to the login page and back.
func (u *ui) session(h sessHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		s := &sess{}
		if err == nil && c.Value != "" {
			s.tokenID, s.token = parseSession(c.Value)
		}
		if s.token != "" {
			if st, aerr := u.call(r, s, "GET", "/api/whoami", nil, &s.who); aerr != nil {
				if st != http.StatusUnauthorized && st != http.StatusForbidden {
					u.errorPage(w, r, nil, st, aerr.Error())
					return
				}
				s.token = ""
			}
		}
		if s.token == "" {
			u.clearSession(w)
			if r.Method != http.MethodGet {
				u.errorPage(w, r, nil, http.StatusUnauthorized, "Your session ended: sign in again.")
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		s.csrf = csrfToken(s.token)
		if oc, err := r.Cookie(orgCookie); err == nil {
			s.org = oc.Value
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		}
		if r.Method == http.MethodPost && !u.formOK(r, s.csrf) {
			u.errorPage(w, r, s, http.StatusForbidden, "The form is stale or did not come from this site (CSRF check failed): reload the page and try again.")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r, s)
	}
}

// formOK checks a POST's CSRF field and, when the browser sends one, its
// Origin.
func (u *ui) formOK(r *http.Request, want string) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		ou, err := url.Parse(o)
		if err != nil || ou.Host != r.Host && ou.Host != u.baseHost {
			return false
		}
	}
	if err := r.ParseForm(); err != nil {
		return false
	}
	return sameToken(r.PostForm.Get(csrfField), want)
}

func (u *ui) cookie(r *http.Request, name, value string, maxAge time.Duration) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: u.secure || r.TLS != nil, MaxAge: int(maxAge.Seconds()),
	}
}

func (u *ui) clearSession(w http.ResponseWriter) {
	for _, n := range []string{sessionCookie, orgCookie} {
		http.SetCookie(w, &http.Cookie{Name: n, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
}

// safeNext is a local path to go to after login; anything else is "/".
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\t") {
		return "/"
	}
	return next
}

type loginView struct {
	Next, CSRF, User, Org, Error string
}

func (u *ui) loginPage(w http.ResponseWriter, r *http.Request) {
	u.showLogin(w, r, http.StatusOK, loginView{Next: safeNext(r.URL.Query().Get("next"))})
}

func (u *ui) showLogin(w http.ResponseWriter, r *http.Request, status int, v loginView) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	v.CSRF = hex.EncodeToString(b)
	http.SetCookie(w, u.cookie(r, loginCSRFCookie, v.CSRF, time.Hour))
	w.Header().Set("Cache-Control", "no-store")
	u.render(w, r, status, "login", page{Title: "Sign in", Data: v})
}

// login signs in through POST /api/login and keeps its token as the
// session.
func (u *ui) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	v := loginView{Next: safeNext(r.FormValue("next")), User: r.FormValue("user"), Org: r.FormValue("org")}
	c, err := r.Cookie(loginCSRFCookie)
	if err != nil || !u.formOK(r, c.Value) {
		v.Error = "The sign-in form is stale (CSRF check failed): try again."
		u.showLogin(w, r, http.StatusForbidden, v)
		return
	}
	var res api.LoginResult
	in := api.LoginInput{User: v.User, Password: r.PostForm.Get("password"), Org: v.Org}
	if st, err := u.call(r, &sess{}, "POST", "/api/login", in, &res); err != nil {
		v.Error = err.Error()
		u.showLogin(w, r, st, v)
		return
	}
	ttl := time.Until(res.Expires)
	http.SetCookie(w, u.cookie(r, sessionCookie, itoa(res.TokenID)+"."+res.Token, ttl))
	http.SetCookie(w, u.cookie(r, orgCookie, url.QueryEscape(res.Org), ttl))
	http.SetCookie(w, &http.Cookie{Name: loginCSRFCookie, Value: "", Path: "/", MaxAge: -1})
	http.Redirect(w, r, v.Next, http.StatusSeeOther)
}

// logout revokes the session's token, so that a copy of the cookie stops
// working too.
func (u *ui) logout(w http.ResponseWriter, r *http.Request, s *sess) {
	if _, err := u.call(r, s, "DELETE", "/api/tokens/"+itoa(s.tokenID), nil, nil); err != nil {
		u.Log.Warn("web: revoking a session token at logout", "token", s.tokenID, "err", err)
	}
	u.clearSession(w)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// parseSession splits a session cookie, "<token id>.<secret>".
func parseSession(v string) (int64, string) {
	id, secret, ok := strings.Cut(v, ".")
	n, err := strconv.ParseInt(id, 10, 64)
	if !ok || err != nil || n <= 0 || secret == "" {
		return 0, ""
	}
	return n, secret
}

// User, OrgName, CSRF and Role are what templates show of the session.
func (s *sess) User() string { return s.who.User }

// OrgName is the organisation signed in to.
func (s *sess) OrgName() string {
	if v, err := url.QueryUnescape(s.org); err == nil && v != "" {
		return v
	}
	return "organisation " + itoa(s.who.OrgID)
}

// CSRF is the token every form of the session carries.
func (s *sess) CSRF() string { return s.csrf }

// Role is the user's role in the organisation.
func (s *sess) Role() string {
	if s.who.ServerAdmin {
		return "server admin"
	}
	return s.who.OrgRole
}
