package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestLimiterRefusesThenRecovers(t *testing.T) {
	c := &clock{t: time.Unix(1_000_000, 0)}
	l := New(Limit{Burst: 3, Every: 10 * time.Second}, c.now)
	for i := 0; i < 3; i++ {
		if d := l.Wait("k"); d != 0 {
			t.Fatalf("attempt %d: wait %v, want none", i, d)
		}
		l.Fail("k")
	}
	if d := l.Wait("k"); d != 10*time.Second {
		t.Fatalf("after burst: wait %v, want 10s", d)
	}
	if d := l.Wait("other"); d != 0 {
		t.Fatalf("other key: wait %v", d)
	}
	c.t = c.t.Add(4 * time.Second)
	if d := l.Wait("k"); d != 6*time.Second {
		t.Fatalf("4s later: wait %v, want 6s", d)
	}
	c.t = c.t.Add(6 * time.Second)
	if d := l.Wait("k"); d != 0 {
		t.Fatalf("after refill: wait %v", d)
	}
	l.Fail("k")
	if d := l.Wait("k"); d == 0 {
		t.Fatal("one token came back and was spent: want a wait")
	}
	l.Reset("k")
	if d := l.Wait("k"); d != 0 || l.Len() != 0 {
		t.Fatalf("after reset: wait %v, %d keys", d, l.Len())
	}
}

func TestLimiterDropsFullBuckets(t *testing.T) {
	c := &clock{t: time.Unix(1_000_000, 0)}
	l := New(Limit{Burst: 2, Every: time.Second}, c.now)
	for i := 0; i < 5000; i++ {
		l.Fail(string(rune('a'+i%26)) + RetryAfter(time.Duration(i)*time.Second))
		c.t = c.t.Add(time.Second)
	}
	if n := l.Len(); n > 2048 {
		t.Fatalf("%d keys kept; full buckets should be dropped", n)
	}
}

func TestClient(t *testing.T) {
	p, err := ParseProxies("10.0.0.0/8, 127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		remote, xff string
		proxies     Proxies
		want        string
	}{
		{"192.0.2.1:5555", "", p, "192.0.2.1"},
		{"192.0.2.1:5555", "203.0.113.9", p, "192.0.2.1"},                      // not a proxy: header ignored
		{"127.0.0.1:5555", "203.0.113.9", p, "203.0.113.9"},                    // trusted proxy
		{"127.0.0.1:5555", "1.1.1.1, 203.0.113.9, 10.1.2.3", p, "203.0.113.9"}, // left part is the client's say
		{"127.0.0.1:5555", "", p, "127.0.0.1"},
		{"127.0.0.1:5555", "garbage", p, "127.0.0.1"},
		{"127.0.0.1:5555", "203.0.113.9", nil, "127.0.0.1"},
		{"[::ffff:127.0.0.1]:1", "2001:db8::1", p, "2001:db8::1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := tc.proxies.Client(r); got != tc.want {
			t.Errorf("%s via %q: client %q, want %q", tc.remote, tc.xff, got, tc.want)
		}
	}
	if _, err := ParseProxies("10.0.0.0/33"); err == nil {
		t.Error("bad prefix accepted")
	}
	var seen string
	h := p.RealAddr(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = r.RemoteAddr }))
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.9.9.9:80"
	r.Header.Set("X-Forwarded-For", "198.51.100.7")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if seen != "198.51.100.7:0" {
		t.Fatalf("RealAddr: handler saw %q", seen)
	}
}

func TestRetryAfter(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "1", 1500 * time.Millisecond: "2", time.Minute: "60"} {
		if got := RetryAfter(d); got != want {
			t.Errorf("RetryAfter(%v) = %q, want %q", d, got, want)
		}
	}
}
