package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

func TestWriteErrorHidesServerState(t *testing.T) {
	driver := errors.New("failed to connect to `user=postgres database=conveyor`: 127.0.0.1:5432 (127.0.0.1): dial error")
	for _, tc := range []struct {
		name   string
		err    error
		status int
		want   string
	}{
		{"unavailable driver error", errs.Wrap("store.RepoForHook", errs.Unavailable, driver), 503, "temporarily unavailable; retry later"},
		{"timeout", errs.Wrap("store.Stats", errs.Timeout, driver), 504, "timed out; retry later"},
		{"no kind", driver, 500, "internal error"},
		{"public unavailable", Public(errs.E("hook", errs.Unavailable, "too busy; retry")), 503, "too busy; retry"},
		{"invalid keeps its text", errs.E("x", errs.Invalid, "bad field"), 400, "bad field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteError(rec, tc.err)
			body := rec.Body.String()
			if rec.Code != tc.status || !strings.Contains(body, `"message": "`+tc.want+`"`) {
				t.Errorf("WriteError: %d %s, want %d with %q", rec.Code, body, tc.status, tc.want)
			}
			if strings.Contains(body, "5432") {
				t.Errorf("the driver's text reached the caller: %s", body)
			}
			if got := ServerSide(tc.err); got != (tc.status >= 500 && !strings.HasPrefix(tc.name, "public")) {
				t.Errorf("ServerSide = %v", got)
			}
		})
	}
}

func TestBearerHashSchemes(t *testing.T) {
	for _, h := range []string{"Bearer cvy_x", "bearer cvy_x", "token cvy_x", "Token  cvy_x"} {
		r := httptest.NewRequest("GET", "/api/runs", nil)
		r.Header.Set("Authorization", h)
		got, err := bearerHash(r)
		want, _ := bearerHash(&http.Request{Header: http.Header{"Authorization": {"Bearer cvy_x"}}})
		if err != nil || string(got) != string(want) {
			t.Errorf("%q: %x %v", h, got, err)
		}
	}
	for _, h := range []string{"Basic Y3Z5Og==", "token", "Bearer ", "cvy_x"} {
		r := httptest.NewRequest("GET", "/api/runs", nil)
		r.Header.Set("Authorization", h)
		if _, err := bearerHash(r); !errs.Is(err, errs.Unauthorized) {
			t.Errorf("%q: %v, want unauthorized", h, err)
		}
	}
}
