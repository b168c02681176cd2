// Package errs gives errors a kind, so callers decide by kind and never by text.
package errs

import (
	"errors"
	"fmt"
)

// Kind classifies an error for callers (the API maps it to a status code).
type Kind int

const (
	Other Kind = iota
	Invalid
	NotFound
	Unauthorized
	Conflict
	Unavailable
	Canceled
	Timeout
	Forbidden // authenticated, but the role does not allow it
	TooLarge  // a request or payload over its size limit
	TooMany   // too many (failed) attempts: wait and retry
)

func (k Kind) String() string {
	switch k {
	case Invalid:
		return "invalid"
	case NotFound:
		return "not found"
	case Unauthorized:
		return "unauthorized"
	case Conflict:
		return "conflict"
	case Unavailable:
		return "unavailable"
	case Canceled:
		return "canceled"
	case Timeout:
		return "timeout"
	case Forbidden:
		return "forbidden"
	case TooLarge:
		return "too large"
	case TooMany:
		return "too many requests"
	}
	return "other"
}

// Error is an error with an operation and a kind.
type Error struct {
	Op   string
	Kind Kind
	Err  error
}

func (e *Error) Error() string {
	if e.Op == "" {
		return e.Err.Error()
	}
	return e.Op + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// E builds an Error; msg is formatted with args when it is a string.
func E(op string, kind Kind, format string, args ...any) error {
	return &Error{Op: op, Kind: kind, Err: fmt.Errorf(format, args...)}
}

// Wrap gives err a kind and an operation; nil stays nil.
func Wrap(op string, kind Kind, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Kind: kind, Err: err}
}

// KindOf returns the kind of the outermost kinded error in err's chain.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		if e.Kind == Other {
			return KindOf(e.Err)
		}
		return e.Kind
	}
	return Other
}

// Is reports whether err has kind k.
func Is(err error, k Kind) bool { return KindOf(err) == k }
