package api

import (
	"errors"
	"net/http"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// Most routes are decode → check → store → audit → answer. The helpers
// here do the first and last parts once; a handler (an op) does the rest
// and returns its answer or an error.

// request is one API request as an op sees it.
type request struct {
	r   *http.Request
	tok *store.Token // the caller's token (nil on anyone routes)
}

// noInput is the input type of ops whose route takes no body.
type noInput struct{}

// handleJSON adapts op to a route handler: it decodes the body into In
// (unless In is noInput), runs op, and answers op's result as JSON with
// status (a nil result: status with no body), or its error through fail
// (name what an error is about with about).
func handleJSON[In any](status int, op func(a *server, q request, in In) (any, error)) handlerFunc {
	return func(a *server, w http.ResponseWriter, r *http.Request, tok *store.Token) {
		var in In
		if _, none := any(in).(noInput); !none {
			if err := decode(r, &in, false); err != nil {
				a.fail(w, "", err)
				return
			}
		}
		out, err := op(a, request{r: r, tok: tok}, in)
		if err != nil {
			what := ""
			var c *concerning
			if errors.As(err, &c) {
				what, err = c.what, c.err
			}
			a.fail(w, what, err)
			return
		}
		if out == nil {
			w.WriteHeader(status)
			return
		}
		writeJSON(w, status, out)
	}
}

// inputSample is a zero In for the route table's OpenAPI description
// (nil for noInput).
func inputSample[In any]() any {
	var in In
	if _, none := any(in).(noInput); none {
		return nil
	}
	return in
}

// concerning names what an error is about ("user bob"), so that a
// not-found error is answered "user bob: not found".
type concerning struct {
	what string
	err  error
}

func (c *concerning) Error() string { return c.what + ": " + c.err.Error() }
func (c *concerning) Unwrap() error { return c.err }

// about marks err as concerning what; nil stays nil.
func about(what string, err error) error {
	if err == nil {
		return nil
	}
	return &concerning{what: what, err: err}
}
