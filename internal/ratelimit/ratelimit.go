// Package ratelimit keeps token buckets of failures per key (a client
// address, an address and a user name): each failure takes a token, the
// tokens come back at a steady rate, and a key without tokens is refused
// until one has come back. Nothing is kept for a key whose bucket is full,
// so an attacker cannot grow the table past what it costs to fill it, and
// no key stays refused longer than Burst/Rate after its last failure.
package ratelimit

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limit is a bucket's shape: Burst failures at once, then one every Every.
type Limit struct {
	Burst int
	Every time.Duration
}

// Norm is lim with its defaults: at least one failure, one a minute.
func (lim Limit) Norm() Limit {
	lim.Burst = max(lim.Burst, 1)
	if lim.Every <= 0 {
		lim.Every = time.Minute
	}
	return lim
}

// Refill is a bucket's tokens, last counted at, brought up to now (at most
// Burst).
func (lim Limit) Refill(tokens float64, at, now time.Time) float64 {
	if d := now.Sub(at); d > 0 {
		tokens += float64(d) / float64(lim.Every)
	}
	return math.Min(float64(lim.Burst), tokens)
}

// WaitFor is how long a bucket of tokens (refilled) waits for the token
// of its next attempt: zero when it has one.
func (lim Limit) WaitFor(tokens float64) time.Duration {
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) * float64(lim.Every))
}

// Limiter counts failures per key; safe for concurrent use.
type Limiter struct {
	lim  Limit
	now  func() time.Time
	mu   sync.Mutex
	keys map[string]*bucket
	// prune is the size of keys at which full buckets are dropped next.
	prune int
}

type bucket struct {
	tokens float64
	at     time.Time
}

// New returns a Limiter; now is its clock (nil: time.Now).
func New(lim Limit, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{lim: lim.Norm(), now: now, keys: map[string]*bucket{}, prune: 1024}
}

// refill brings b's tokens up to now; it reports whether b is full.
func (l *Limiter) refill(b *bucket, now time.Time) bool {
	if now.After(b.at) {
		b.tokens = l.lim.Refill(b.tokens, b.at, now)
		b.at = now
	}
	return b.tokens >= float64(l.lim.Burst)
}

// Wait is how long key must wait before its next attempt is taken: zero
// when it has a token left.
func (l *Limiter) Wait(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.keys[key]
	if b == nil {
		return 0
	}
	now := l.now()
	if l.refill(b, now) {
		delete(l.keys, key)
		return 0
	}
	return l.lim.WaitFor(b.tokens)
}

// Fail takes a token from key's bucket (a failed attempt).
func (l *Limiter) Fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.keys[key]
	if b == nil {
		if len(l.keys) >= l.prune {
			l.dropFull(now)
		}
		b = &bucket{tokens: float64(l.lim.Burst), at: now}
		l.keys[key] = b
	}
	l.refill(b, now)
	b.tokens = math.Max(0, b.tokens-1)
}

// Reset forgets key's failures (a successful attempt).
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.keys, key)
}

// Len is how many keys hold failures (for tests and metrics).
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// dropFull drops the buckets that have filled up again; the next pass
// comes when the table has doubled, so passes cost O(1) per Fail.
func (l *Limiter) dropFull(now time.Time) {
	for k, b := range l.keys {
		if l.refill(b, now) {
			delete(l.keys, k)
		}
	}
	l.prune = max(1024, 2*len(l.keys))
}

// RetryAfter is a Retry-After header value for d: whole seconds, at
// least one.
func RetryAfter(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	return strconv.FormatInt(max(s, 1), 10)
}

// Proxies are the addresses of reverse proxies trusted to say who their
// client is in X-Forwarded-For.
type Proxies []netip.Prefix

// ParseProxies parses a comma-separated list of addresses and CIDR
// prefixes ("10.0.0.0/8,127.0.0.1").
func ParseProxies(s string) (Proxies, error) {
	var out Proxies
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, err
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, err
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func (p Proxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, pre := range p {
		if pre.Contains(a) {
			return true
		}
	}
	return false
}

// Client is the address of r's client: its peer, or, when the peer is a
// trusted proxy, the right-most address of X-Forwarded-For that is not a
// trusted proxy (what a client puts on the left is not believed). An
// unparsable peer is returned as it is.
func (p Proxies) Client(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if !p.trusts(peer) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer.String() // a garbled chain: the proxy is the client we know
		}
		if !p.trusts(a) {
			return a.Unmap().String()
		}
		peer = a.Unmap()
	}
	return peer.String()
}

// RealAddr is middleware that sets each request's RemoteAddr to its
// client's address (see Client), so that every handler behind it, and
// requests made in-process on its behalf, key limits on the client and
// not on the proxy. With no proxies it changes nothing.
func (p Proxies) RealAddr(next http.Handler) http.Handler {
	if len(p) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := r.WithContext(r.Context()) // a shallow copy
		r2.RemoteAddr = net.JoinHostPort(p.Client(r), "0")
		next.ServeHTTP(w, r2)
	})
}
