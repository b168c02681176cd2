package api_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/password"
	"github.com/conveyor-ci/conveyor/internal/ratelimit"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// loginFrom posts a login from addr to h and returns the answer.
func loginFrom(h http.Handler, addr, user, pw string) *httptest.ResponseRecorder {
	body := `{"user":"` + user + `","password":"` + pw + `"}`
	r := httptest.NewRequest("POST", "/api/login", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.RemoteAddr = addr
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestLoginRateLimit(t *testing.T) {
	e := newAccountsEnv(t)
	e.call(t, "POST", "/api/users", e.admin, api.UserInput{Name: "bob", Role: "developer", Password: "hunter2hunter2"}, 201, nil)
	clock := &testClock{t: time.Unix(2_000_000_000, 0)}
	h := limitedAPI(e, clock, false)
	const attacker = "203.0.113.5:4000"
	for i := 0; i < 3; i++ {
		if w := loginFrom(h, attacker, "bob", "guess"+strconv.Itoa(i)); w.Code != 401 {
			t.Fatalf("guess %d: %d %s", i, w.Code, w.Body)
		}
	}
	// Refused before the password is checked, even the right one.
	w := loginFrom(h, attacker, "bob", "hunter2hunter2")
	if w.Code != 429 || w.Header().Get("Retry-After") != "60" || !strings.Contains(w.Body.String(), "too many failed logins") {
		t.Fatalf("after 3 guesses: %d Retry-After %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	// bob from his own address is not locked out.
	if w := loginFrom(h, "198.51.100.7:5000", "bob", "hunter2hunter2"); w.Code != 200 {
		t.Fatalf("bob from elsewhere: %d %s", w.Code, w.Body)
	}
	// The attacker moves to other names: the address's own bucket ends it.
	for i := 0; i < 3; i++ {
		if w := loginFrom(h, attacker, "user"+strconv.Itoa(i), "x"); w.Code != 401 {
			t.Fatalf("name %d: %d %s", i, w.Code, w.Body)
		}
	}
	if w := loginFrom(h, attacker, "carol", "x"); w.Code != 429 || !strings.Contains(w.Body.String(), "from this address") {
		t.Fatalf("after 6 failures from one address: %d %s", w.Code, w.Body)
	}
	// Tokens come back: one a minute, and then a correct password works
	// (and empties the (address, user) bucket).
	clock.add(59 * time.Second)
	if w := loginFrom(h, attacker, "bob", "hunter2hunter2"); w.Code != 429 {
		t.Fatalf("before the window: %d %s", w.Code, w.Body)
	}
	clock.add(time.Second)
	if w := loginFrom(h, attacker, "bob", "hunter2hunter2"); w.Code != 200 {
		t.Fatalf("after the window: %d %s", w.Code, w.Body)
	}
	// Slowed, not locked: one guess a minute goes on being answered.
	clock.add(3 * time.Minute)
	for i := 0; i < 3; i++ {
		if w := loginFrom(h, attacker, "bob", "again"); w.Code != 401 {
			t.Fatalf("guess %d after a success: %d %s", i, w.Code, w.Body)
		}
	}
	if w := loginFrom(h, attacker, "bob", "again"); w.Code != 429 {
		t.Fatalf("after 3 more: %d", w.Code)
	}
}

// limitedAPI is an API over e's database with small login limits on
// clock; shared keeps the buckets in the database (as the server does).
func limitedAPI(e *accountsEnv, clock *testClock, shared bool) http.Handler {
	d := api.Deps{Store: e.db, Accounts: e.db, Actions: storeActions{e.db},
		PasswordParams: password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
		Logins: api.LoginLimits{
			PerUser:    ratelimit.Limit{Burst: 3, Every: time.Minute},
			PerAddress: ratelimit.Limit{Burst: 6, Every: time.Minute},
			Now:        clock.now,
		}}
	if shared {
		d.Failures = e.db
	}
	return api.New(d)
}

// Replicas of one database count the same failed logins, and a restart
// forgets none: guesses spread over replicas are refused as on one.
func TestLoginLimitSharedByReplicas(t *testing.T) {
	e := newAccountsEnv(t)
	e.call(t, "POST", "/api/users", e.admin, api.UserInput{Name: "bob", Role: "developer", Password: "hunter2hunter2"}, 201, nil)
	clock := &testClock{t: time.Unix(2_000_000_000, 0)}
	r1, r2 := limitedAPI(e, clock, true), limitedAPI(e, clock, true)
	const attacker = "203.0.113.9:4000"
	for i, h := range []http.Handler{r1, r2, r1} {
		if w := loginFrom(h, attacker, "bob", "guess"+strconv.Itoa(i)); w.Code != 401 {
			t.Fatalf("guess %d: %d %s", i, w.Code, w.Body)
		}
	}
	for name, h := range map[string]http.Handler{"replica 2": r2, "a restarted replica": limitedAPI(e, clock, true)} {
		if w := loginFrom(h, attacker, "bob", "hunter2hunter2"); w.Code != 429 || w.Header().Get("Retry-After") != "60" {
			t.Errorf("%s after 3 guesses over two replicas: %d %s", name, w.Code, w.Body)
		}
	}
	// Per-process buckets (no database) would let the fourth guess through.
	if w := loginFrom(limitedAPI(e, clock, false), attacker, "bob", "guess3"); w.Code != 401 {
		t.Fatalf("a process of its own: %d %s", w.Code, w.Body)
	}
	clock.add(time.Minute)
	if w := loginFrom(r2, attacker, "bob", "hunter2hunter2"); w.Code != 200 {
		t.Fatalf("after the window: %d %s", w.Code, w.Body)
	}
	// The success emptied the user's bucket for both replicas.
	for i := 0; i < 3; i++ {
		if w := loginFrom(r1, attacker, "bob", "again"); w.Code != 401 {
			t.Fatalf("guess %d after the success: %d %s", i, w.Code, w.Body)
		}
	}
}
