package forge

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// maxBackoff caps one wait of Retry.
const maxBackoff = time.Minute

// Retry calls fn up to attempts times (at least once) until it succeeds.
// Waits grow exponentially from base (base, 2·base, 4·base... capped at a
// minute), each with jitter in [wait/2, wait) so that many failing callers
// do not retry in step. Errors of a final kind (Invalid, Unauthorized,
// NotFound, Conflict, Canceled) are returned at once. Every wait ends when
// ctx does; Retry then returns a Canceled or Timeout error naming fn's last
// error.
func Retry(ctx context.Context, attempts int, base time.Duration, fn func(context.Context) error) error {
	const op = "forge.Retry"
	if attempts < 1 {
		attempts = 1
	}
	var err error
	for i := range attempts {
		if cerr := ctx.Err(); cerr != nil {
			return gaveUp(op, cerr, err)
		}
		if err = fn(ctx); err == nil || final(err) {
			return err
		}
		if i == attempts-1 {
			break
		}
		t := time.NewTimer(backoff(base, i))
		select {
		case <-ctx.Done():
			t.Stop()
			return gaveUp(op, ctx.Err(), err)
		case <-t.C:
		}
	}
	return err
}

// final reports whether retrying err cannot help.
func final(err error) bool {
	switch errs.KindOf(err) {
	case errs.Invalid, errs.Unauthorized, errs.NotFound, errs.Conflict, errs.Canceled:
		return true
	}
	return false
}

// backoff is the jittered wait after attempt i (0-based).
func backoff(base time.Duration, i int) time.Duration {
	if base <= 0 {
		return 0
	}
	d := base
	for range i {
		if d >= maxBackoff/2 {
			d = maxBackoff
			break
		}
		d *= 2
	}
	d = min(d, maxBackoff)
	half := d / 2
	return half + rand.N(d-half)
}

// gaveUp is the error of a Retry whose context ended.
func gaveUp(op string, ctxErr, last error) error {
	kind := errs.Canceled
	if errors.Is(ctxErr, context.DeadlineExceeded) {
		kind = errs.Timeout
	}
	if last == nil {
		return errs.Wrap(op, kind, ctxErr)
	}
	return errs.E(op, kind, "%w (last error: %v)", ctxErr, last)
}
