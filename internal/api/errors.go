package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/ratelimit"
)

// ErrorBody is every error answer: {"error": {"kind": ..., "message": ...}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong; Kind is one of the KindName values.
type ErrorDetail struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

var kinds = []struct {
	kind   errs.Kind
	name   string
	status int
}{
	{errs.Invalid, "invalid", http.StatusBadRequest},
	{errs.Unauthorized, "unauthorized", http.StatusUnauthorized},
	{errs.Forbidden, "forbidden", http.StatusForbidden},
	{errs.NotFound, "not_found", http.StatusNotFound},
	{errs.Conflict, "conflict", http.StatusConflict},
	{errs.TooLarge, "too_large", http.StatusRequestEntityTooLarge},
	{errs.TooMany, "rate_limited", http.StatusTooManyRequests},
	{errs.Unavailable, "unavailable", http.StatusServiceUnavailable},
	{errs.Timeout, "timeout", http.StatusGatewayTimeout},
	// The client went away: nobody reads the answer, 503 keeps it a retryable class.
	{errs.Canceled, "canceled", http.StatusServiceUnavailable},
	{errs.Other, "internal", http.StatusInternalServerError},
}

// KindName is the wire name of an error kind ("not_found", "internal"...).
func KindName(k errs.Kind) string {
	for _, e := range kinds {
		if e.kind == k {
			return e.name
		}
	}
	return "internal"
}

// KindFromName is the inverse of KindName; unknown names are errs.Other.
func KindFromName(name string) errs.Kind {
	for _, e := range kinds {
		if e.name == name {
			return e.kind
		}
	}
	return errs.Other
}

// StatusOf is the HTTP status an error kind is answered with.
func StatusOf(k errs.Kind) int {
	for _, e := range kinds {
		if e.kind == k {
			return e.status
		}
	}
	return http.StatusInternalServerError
}

// WriteError answers err as the error JSON with the status of its kind.
// Errors of the server's state (unavailable, timeout, canceled, no kind)
// get a fixed message: their text is a driver's or the system's (database
// addresses, SQL, paths), which callers, anonymous ones too, must not
// read; the caller logs it instead. Public marks a message written for
// callers, shown whatever the kind.
func WriteError(w http.ResponseWriter, err error) {
	k := errs.KindOf(err)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		k = errs.TooLarge
	}
	var limited *rateLimited
	if errors.As(err, &limited) {
		w.Header().Set("Retry-After", ratelimit.RetryAfter(limited.wait))
	}
	var pub *publicError
	msg, fixed := serverSide[k]
	if !fixed || errors.As(err, &pub) {
		msg = publicMessage(err)
	}
	writeErrorMsg(w, k, msg)
}

// serverSide are the kinds that say what state the server is in, with the
// message callers get for them.
var serverSide = map[errs.Kind]string{
	errs.Unavailable: "temporarily unavailable; retry later",
	errs.Timeout:     "timed out; retry later",
	errs.Canceled:    "canceled",
	errs.Other:       "internal error",
}

// ServerSide reports whether WriteError answers err with a fixed message
// (the caller should log err).
func ServerSide(err error) bool {
	var pub *publicError
	_, fixed := serverSide[errs.KindOf(err)]
	return fixed && !errors.As(err, &pub)
}

// Public marks err's message as written for callers (no internals in it):
// WriteError shows it whatever err's kind.
func Public(err error) error { return &publicError{err} }

// RateLimited is a refusal of kind errs.TooMany saying why (msg) and
// when to retry: WriteError answers it 429 with Retry-After.
func RateLimited(op, msg string, wait time.Duration) error {
	return &rateLimited{err: errs.E(op, errs.TooMany, "%s; retry in %s", msg, ratelimit.RetryAfter(wait)+"s"), wait: wait}
}

type rateLimited struct {
	err  error
	wait time.Duration
}

func (e *rateLimited) Error() string { return e.err.Error() }
func (e *rateLimited) Unwrap() error { return e.err }

type publicError struct{ err error }

func (e *publicError) Error() string { return e.err.Error() }
func (e *publicError) Unwrap() error { return e.err }

// publicMessage is err's text without the operations of its outer errs
// wrappers ("store.CancelRun: "): users read what, not where.
func publicMessage(err error) string {
	var pub *publicError
	if errors.As(err, &pub) {
		err = pub.err
	}
	for {
		e, ok := err.(*errs.Error)
		if !ok || e.Err == nil {
			return err.Error()
		}
		err = e.Err
	}
}

func writeErrorMsg(w http.ResponseWriter, k errs.Kind, msg string) {
	if k == errs.Unauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="conveyor"`)
	}
	writeJSON(w, StatusOf(k), ErrorBody{Error: ErrorDetail{Kind: KindName(k), Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the status is sent; a failed write is the client's loss
}
