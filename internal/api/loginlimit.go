package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/ratelimit"
	"github.com/conveyor-ci/conveyor/internal/store"
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
	user, addr failureBuckets
}

// failureBuckets are the buckets of one kind (user or address): in the
// database when the store keeps them (replicas share them, and a restart
// keeps them), else in this process.
type failureBuckets interface {
	wait(ctx context.Context, key string) (time.Duration, error)
	fail(ctx context.Context, key string) error
	reset(ctx context.Context, key string) error
}

func newLoginLimiters(l LoginLimits, fb store.FailureBuckets) loginLimiters {
	if l.PerUser.Burst <= 0 {
		l.PerUser = ratelimit.Limit{Burst: 5, Every: time.Minute}
	}
	if l.PerAddress.Burst <= 0 {
		l.PerAddress = ratelimit.Limit{Burst: 20, Every: 15 * time.Second}
	}
	if fb != nil {
		now := l.Now
		if now == nil {
			now = time.Now
		}
		return loginLimiters{
			user: sharedBuckets{fb: fb, kind: "login-user", lim: l.PerUser.Norm(), now: now},
			addr: sharedBuckets{fb: fb, kind: "login-addr", lim: l.PerAddress.Norm(), now: now},
		}
	}
	return loginLimiters{user: localBuckets{ratelimit.New(l.PerUser, l.Now)}, addr: localBuckets{ratelimit.New(l.PerAddress, l.Now)}}
}

// loginKeys are the buckets' keys of a login of user from r's client.
func loginKeys(r *http.Request, user string) (userKey, addrKey string) {
	addr := ratelimit.Proxies(nil).Client(r)
	return addr + "\x00" + strings.ToLower(user), addr
}

// check refuses a login whose buckets are empty.
func (l loginLimiters) check(ctx context.Context, userKey, addrKey string) error {
	d, err := l.user.wait(ctx, userKey)
	if err != nil {
		return err
	}
	if d > 0 {
		return RateLimited("", "too many failed logins for this user name from this address", d)
	}
	if d, err = l.addr.wait(ctx, addrKey); err != nil {
		return err
	}
	if d > 0 {
		return RateLimited("", "too many failed logins from this address", d)
	}
	return nil
}

// failed counts a failed login in both buckets; the login is refused
// anyway, so an error here is only returned for the log.
func (l loginLimiters) failed(ctx context.Context, userKey, addrKey string) error {
	return errors.Join(l.user.fail(ctx, userKey), l.addr.fail(ctx, addrKey))
}

type localBuckets struct{ l *ratelimit.Limiter }

func (b localBuckets) wait(_ context.Context, key string) (time.Duration, error) {
	return b.l.Wait(key), nil
}
func (b localBuckets) fail(_ context.Context, key string) error {
	b.l.Fail(key)
	return nil
}
func (b localBuckets) reset(_ context.Context, key string) error {
	b.l.Reset(key)
	return nil
}

// sharedBuckets keep their buckets in the database under a hash of kind
// and key (no address or user name is stored).
type sharedBuckets struct {
	fb   store.FailureBuckets
	kind string
	lim  ratelimit.Limit
	now  func() time.Time
}

func (b sharedBuckets) key(k string) string {
	sum := sha256.Sum256([]byte(b.kind + "\x00" + k))
	return hex.EncodeToString(sum[:])
}

func (b sharedBuckets) wait(ctx context.Context, key string) (time.Duration, error) {
	return b.fb.FailureWait(ctx, b.key(key), b.lim, b.now())
}

func (b sharedBuckets) fail(ctx context.Context, key string) error {
	return b.fb.TakeFailure(ctx, b.key(key), b.lim, b.now())
}

func (b sharedBuckets) reset(ctx context.Context, key string) error {
	return b.fb.ResetFailures(ctx, b.key(key))
}
