package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/conveyor-ci/conveyor/internal/errs"
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
// Errors without a kind get a generic message: their text may hold
// internals (SQL, paths), so the caller logs it instead.
func WriteError(w http.ResponseWriter, err error) {
	k := errs.KindOf(err)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		k = errs.TooLarge
	}
	msg := "internal error"
	if k != errs.Other {
		msg = publicMessage(err)
	}
	writeErrorMsg(w, k, msg)
}

// publicMessage is err's text without the operations of its outer errs
// wrappers ("store.CancelRun: "): users read what, not where.
func publicMessage(err error) string {
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
