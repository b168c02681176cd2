package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/ratelimit"
)

// LoginLimits bound password guessing. Every failed POST /api/login takes
// a token from two buckets: one of the client address and user name, one
// of the address alone. A bucket without tokens refuses that login with
// 429 and Retry-After, before the password is hashed; tokens come back
// one per Every, so a guesser is slowed to that pace and nobody is locked
// out for good. The user's own bucket is per address, so a guesser
// elsewhere cannot lock a user out, and a successful login empties it.
// The address is the request's peer: behind a reverse proxy, the server
// resolves it from X-Forwarded-For of trusted proxies only.
type LoginLimits struct {
	// PerUser is the bucket of one address and user name (default 5
	// failures, then one a minute).
	PerUser ratelimit.Limit
	// PerAddress is the bucket of one address, all user names together
	// (default 20 failures, then one every 15 s).
	PerAddress ratelimit.Limit
	// Now is the buckets' clock (default time.Now; tests drive it).
	Now func() time.Time
}

type loginLimiters struct {
	user, addr *ratelimit.Limiter
}

func newLoginLimiters(l LoginLimits) loginLimiters {
	if l.PerUser.Burst <= 0 {
		l.PerUser = ratelimit.Limit{Burst: 5, Every: time.Minute}
	}
	if l.PerAddress.Burst <= 0 {
		l.PerAddress = ratelimit.Limit{Burst: 20, Every: 15 * time.Second}
	}
	return loginLimiters{user: ratelimit.New(l.PerUser, l.Now), addr: ratelimit.New(l.PerAddress, l.Now)}
}

// loginKeys are the buckets' keys of a login of user from r's client.
func loginKeys(r *http.Request, user string) (userKey, addrKey string) {
	addr := ratelimit.Proxies(nil).Client(r)
	return addr + "\x00" + strings.ToLower(user), addr
}

// check refuses a login whose buckets are empty.
func (l loginLimiters) check(userKey, addrKey string) error {
	if d := l.user.Wait(userKey); d > 0 {
		return RateLimited("", "too many failed logins for this user name from this address", d)
	}
	if d := l.addr.Wait(addrKey); d > 0 {
		return RateLimited("", "too many failed logins from this address", d)
	}
	return nil
}

func (l loginLimiters) failed(userKey, addrKey string) {
	l.user.Fail(userKey)
	l.addr.Fail(addrKey)
}
