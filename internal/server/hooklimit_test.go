package server

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/ratelimit"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// unreadable fails the test when the server reads a body it should refuse unread.
type unreadable struct{ t *testing.T }

func (u unreadable) Read([]byte) (int, error) {
	u.t.Error("the body of a rate-limited webhook was read")
	return 0, io.EOF
}

func limitedHarness(t *testing.T) (*harness, *fakeClock) {
	clock := &fakeClock{t: time.Unix(2_000_000_000, 0)}
	proxies, err := ratelimit.ParseProxies("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOpts{files: map[string]string{"README.md": "hi\n"}, cfg: Config{
		TrustedProxies: proxies,
		Limits: Limits{
			HookPerRepo:    ratelimit.Limit{Burst: 3, Every: 10 * time.Second},
			HookPerAddress: ratelimit.Limit{Burst: 5, Every: 10 * time.Second},
			Logins:         api.LoginLimits{PerUser: ratelimit.Limit{Burst: 3, Every: time.Minute}},
			Now:            clock.now,
		},
	}})
	return h, clock
}

// serve sends req through the server's handler as if from 127.0.0.1 (a
// trusted proxy) forwarding for client.
func serve(h *harness, req *http.Request, client string) *httptest.ResponseRecorder {
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("X-Forwarded-For", client)
	w := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(w, req)
	return w
}

func pingHook(h *harness, body io.Reader, sig string) *http.Request {
	req := httptest.NewRequest("POST", "/hooks/"+itoa(h.repo.ID), body)
	req.Header.Set("X-GitHub-Event", "ping")
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	return req
}

func TestHookBadSignatureRateLimit(t *testing.T) {
	h, clock := limitedHarness(t)
	body := []byte(`{"zen":"Keep it logically awesome."}`)
	good := sign(h.repo.Secret, body)
	bad := sign("not-the-secret", body)
	const attacker, github = "203.0.113.66", "192.0.2.10"
	for i := 0; i < 3; i++ {
		if w := serve(h, pingHook(h, bytes.NewReader(body), bad), attacker); w.Code != 401 {
			t.Fatalf("bad signature %d: %d %s", i, w.Code, w.Body)
		}
	}
	// Out of tokens: 429 with Retry-After before the body is read, even
	// for a good signature from that address.
	w := serve(h, pingHook(h, io.NopCloser(unreadable{t}), good), attacker)
	if w.Code != 429 || w.Header().Get("Retry-After") != "10" || !strings.Contains(w.Body.String(), "bad signatures") {
		t.Fatalf("after 3 bad signatures: %d Retry-After %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	// Signed deliveries from another address are unaffected.
	if w := serve(h, pingHook(h, bytes.NewReader(body), good), github); w.Code != 200 {
		t.Fatalf("signed delivery from another address: %d %s", w.Code, w.Body)
	}
	// Other hook URLs from the attacker: the address's bucket ends it.
	for i := 0; i < 2; i++ {
		req := pingHook(h, bytes.NewReader(body), bad)
		req.URL.Path = "/hooks/" + itoa(h.repo.ID+100+int64(i))
		if w := serve(h, req, attacker); w.Code != 404 {
			t.Fatalf("unknown hook %d: %d %s", i, w.Code, w.Body)
		}
	}
	req := pingHook(h, io.NopCloser(unreadable{t}), bad)
	req.URL.Path = "/hooks/" + itoa(h.repo.ID+200)
	if w := serve(h, req, attacker); w.Code != 429 || !strings.Contains(w.Body.String(), "from this address") {
		t.Fatalf("after 5 refusals from one address: %d %s", w.Code, w.Body)
	}
	// Tokens come back with time.
	clock.add(10 * time.Second)
	if w := serve(h, pingHook(h, bytes.NewReader(body), good), attacker); w.Code != 200 {
		t.Fatalf("after the window: %d %s", w.Code, w.Body)
	}
	// Behind no trusted proxy, X-Forwarded-For is not believed: a
	// direct client cannot pose as another address.
	direct := pingHook(h, bytes.NewReader(body), good)
	direct.RemoteAddr = "198.51.100.1:1234"
	direct.Header.Set("X-Forwarded-For", github)
	if got := (ratelimit.Proxies{}).Client(direct); got != "198.51.100.1" {
		t.Fatalf("direct client read as %q", got)
	}
}

// The UI's login calls /api/login in-process: the client behind the
// trusted proxy is who the limiter counts.
func TestWebLoginRateLimitSeesTheClient(t *testing.T) {
	h, clock := limitedHarness(t)
	h.api("POST", "/api/users", api.UserInput{Name: "bob", Role: "developer", Password: "hunter2hunter2"}, http.StatusCreated, nil)
	login := func(client, pw string) *httptest.ResponseRecorder {
		form := url.Values{"user": {"bob"}, "password": {pw}, "csrf": {"c0ffee"}}
		req := httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: "conveyor_login_csrf", Value: "c0ffee"})
		return serve(h, req, client)
	}
	for i := 0; i < 3; i++ {
		if w := login("203.0.113.5", "wrong"); w.Code != 401 {
			t.Fatalf("wrong password %d: %d", i, w.Code)
		}
	}
	if w := login("203.0.113.5", "hunter2hunter2"); w.Code != 429 || !strings.Contains(w.Body.String(), "too many failed logins") {
		t.Fatalf("after 3 wrong passwords: %d %s", w.Code, w.Body)
	}
	if w := login("198.51.100.7", "hunter2hunter2"); w.Code != http.StatusSeeOther {
		t.Fatalf("from another client behind the proxy: %d %s", w.Code, w.Body)
	}
	clock.add(time.Minute)
	if w := login("203.0.113.5", "hunter2hunter2"); w.Code != http.StatusSeeOther {
		t.Fatalf("after the window: %d %s", w.Code, w.Body)
	}
}
