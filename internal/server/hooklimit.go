package server

import (
	"net/http"
	"strconv"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/ratelimit"
)

// hookLimiters count webhooks refused for their signature (see Limits).
type hookLimiters struct {
	repo, addr *ratelimit.Limiter
}

func newHookLimiters(l Limits) hookLimiters {
	return hookLimiters{repo: ratelimit.New(l.HookPerRepo, l.Now), addr: ratelimit.New(l.HookPerAddress, l.Now)}
}

// hookKeys are the buckets' keys of r, a delivery to repository id.
func hookKeys(r *http.Request, id int64) (repoKey, addrKey string) {
	addr := ratelimit.Proxies(nil).Client(r) // RemoteAddr is the client's already (RealAddr)
	return addr + "\x00" + strconv.FormatInt(id, 10), addr
}

// check refuses a delivery from an address out of tokens.
func (l hookLimiters) check(repoKey, addrKey string) error {
	if d := l.repo.Wait(repoKey); d > 0 {
		return api.RateLimited("hook", "too many webhooks with bad signatures for this hook from this address", d)
	}
	if d := l.addr.Wait(addrKey); d > 0 {
		return api.RateLimited("hook", "too many webhooks with bad signatures from this address", d)
	}
	return nil
}

// refused counts a delivery refused for reason (a verifyReason).
func (l hookLimiters) refused(reason, repoKey, addrKey string) {
	if reason == "signature" || reason == "unknown_repo" {
		l.repo.Fail(repoKey)
		l.addr.Fail(addrKey)
	}
}
