// Package forgetest holds test helpers for code that calls forge APIs: a
// real local HTTP server that records the calls it gets and can be scripted
// to fail the first ones.
package forgetest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Call is one request the Recorder got.
type Call struct {
	Method string
	// Path is the escaped path, as sent (GitLab's project ids keep %2F).
	Path   string
	Header http.Header
	Body   []byte
	// JSON is Body decoded when it is a JSON object, else nil.
	JSON map[string]any
}

// Recorder is an httptest server that answers every request and records it.
// By default it answers 201 with {}; Fail scripts failures first.
type Recorder struct {
	URL string

	srv   *httptest.Server
	mu    sync.Mutex
	calls []Call
	fails []int
}

// NewRecorder starts a Recorder, closed when the test ends.
func NewRecorder(t testing.TB) *Recorder {
	t.Helper()
	r := &Recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = r.srv.URL
	t.Cleanup(r.srv.Close)
	return r
}

// Fail makes the next n requests answer status (e.g. 503, 401) before the
// Recorder answers 201 again. Calls add up: Fail(1, 503); Fail(1, 500)
// fails two.
func (r *Recorder) Fail(n, status int) *Recorder {
	r.mu.Lock()
	defer r.mu.Unlock()
	for range n {
		r.fails = append(r.fails, status)
	}
	return r
}

// Calls returns the requests received so far, in order.
func (r *Recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Call(nil), r.calls...)
}

// Client is an HTTP client for the Recorder.
func (r *Recorder) Client() *http.Client { return r.srv.Client() }

func (r *Recorder) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	c := Call{Method: req.Method, Path: req.URL.EscapedPath(), Header: req.Header.Clone(), Body: body}
	_ = json.Unmarshal(body, &c.JSON)
	r.mu.Lock()
	r.calls = append(r.calls, c)
	status := http.StatusCreated
	if len(r.fails) > 0 {
		status, r.fails = r.fails[0], r.fails[1:]
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if status/100 == 2 {
		_, _ = io.WriteString(w, "{}")
		return
	}
	_, _ = io.WriteString(w, `{"message":"scripted failure"}`)
}
