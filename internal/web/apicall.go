package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/conveyor-ci/conveyor/internal/api"
)

// recorder collects an in-process API answer.
type recorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

// apiRequest is a request to the API on behalf of the session, made in the
// context of the browser's request.
func apiRequest(r *http.Request, s *sess, method, path string, body io.Reader) *http.Request {
	req, _ := http.NewRequestWithContext(r.Context(), method, path, body)
	req.RemoteAddr, req.Host, req.TLS = r.RemoteAddr, r.Host, r.TLS
	if s != nil && s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Body = http.NoBody // as a server's request has
	}
	return req
}

// call sends one API request and decodes its JSON answer into out (nil:
// ignored). An error answer comes back as an error with the API's message
// and its status.
func (u *ui) call(r *http.Request, s *sess, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return http.StatusInternalServerError, err
		}
		body = bytes.NewReader(b)
	}
	rec := &recorder{h: http.Header{}}
	u.API.ServeHTTP(rec, apiRequest(r, s, method, path, body))
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status >= 300 {
		var e api.ErrorBody
		if json.Unmarshal(rec.body.Bytes(), &e) == nil && e.Error.Message != "" {
			return rec.status, errors.New(e.Error.Message)
		}
		return rec.status, errors.New(http.StatusText(rec.status))
	}
	if out != nil && rec.body.Len() > 0 {
		if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
			return http.StatusBadGateway, err
		}
	}
	return rec.status, nil
}

// proxy serves an API answer straight to the browser (logs, which may be
// large or a live stream).
func (u *ui) proxy(w http.ResponseWriter, r *http.Request, s *sess, path string) {
	req := apiRequest(r, s, "GET", path, nil)
	for _, h := range []string{"Accept", "Last-Event-ID"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	u.API.ServeHTTP(w, req)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
