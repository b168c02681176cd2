package forge

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

func TestRetry(t *testing.T) {
	unavailable := errs.E("test", errs.Unavailable, "down")
	for _, tc := range []struct {
		name      string
		attempts  int
		results   []error // fn's results in order; nil after the end
		wantCalls int
		kind      errs.Kind // Other with wantNil
		wantNil   bool
	}{
		{"first try", 3, nil, 1, errs.Other, true},
		{"after failures", 5, []error{unavailable, unavailable}, 3, errs.Other, true},
		{"attempts spent", 3, []error{unavailable, unavailable, unavailable, unavailable}, 3, errs.Unavailable, false},
		{"zero attempts is one", 0, []error{unavailable}, 1, errs.Unavailable, false},
		{"invalid is final", 5, []error{errs.E("t", errs.Invalid, "bad")}, 1, errs.Invalid, false},
		{"unauthorized is final", 5, []error{errs.E("t", errs.Unauthorized, "no")}, 1, errs.Unauthorized, false},
		{"not found is final", 5, []error{errs.E("t", errs.NotFound, "gone")}, 1, errs.NotFound, false},
		{"conflict is final", 5, []error{errs.E("t", errs.Conflict, "same")}, 1, errs.Conflict, false},
		{"plain errors are retried", 3, []error{errors.New("x"), errors.New("y")}, 3, errs.Other, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := Retry(context.Background(), tc.attempts, time.Microsecond, func(context.Context) error {
				calls++
				if calls <= len(tc.results) {
					return tc.results[calls-1]
				}
				return nil
			})
			if calls != tc.wantCalls {
				t.Errorf("%d calls, want %d", calls, tc.wantCalls)
			}
			if tc.wantNil != (err == nil) || !tc.wantNil && !errs.Is(err, tc.kind) {
				t.Errorf("Retry = %v, want kind %v (nil %v)", err, tc.kind, tc.wantNil)
			}
		})
	}
}

func TestRetryHonoursContext(t *testing.T) {
	down := errs.E("test", errs.Unavailable, "still down")
	t.Run("cancel during a wait", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel)
		start := time.Now()
		err := Retry(ctx, 10, time.Hour, func(context.Context) error { return down })
		if time.Since(start) > 5*time.Second {
			t.Fatalf("Retry waited %v after cancel", time.Since(start))
		}
		if !errs.Is(err, errs.Canceled) || !strings.Contains(err.Error(), "still down") {
			t.Errorf("Retry = %v, want Canceled naming the last error", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		err := Retry(ctx, 10, time.Hour, func(context.Context) error { return down })
		if !errs.Is(err, errs.Timeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Retry = %v, want Timeout", err)
		}
	})
	t.Run("already done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		calls := 0
		err := Retry(ctx, 3, time.Millisecond, func(context.Context) error { calls++; return nil })
		if calls != 0 || !errs.Is(err, errs.Canceled) {
			t.Errorf("calls %d, err %v; want 0 calls and Canceled", calls, err)
		}
	})
}

func TestBackoff(t *testing.T) {
	base := 100 * time.Millisecond
	for i := range 40 {
		want := maxBackoff
		if i < 10 {
			want = min(base<<i, maxBackoff)
		}
		for range 20 {
			d := backoff(base, i)
			if d < want/2 || d >= want {
				t.Fatalf("backoff(%v, %d) = %v, want in [%v, %v)", base, i, d, want/2, want)
			}
		}
	}
	if d := backoff(0, 3); d != 0 {
		t.Errorf("backoff(0) = %v", d)
	}
}
