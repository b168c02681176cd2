package forge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/forge/forgetest"
)

func newClient(t *testing.T, forgeName, base string, hc *http.Client) StatusClient {
	t.Helper()
	c, err := NewStatusClient(forgeName, base, "tok", hc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSetStatusRequests(t *testing.T) {
	st := Status{State: StateFailure, Context: "conveyor/ci", Description: "2 jobs failed", TargetURL: "https://ci/runs/1"}
	for _, tc := range []struct {
		forge, apiPath, repo string
		wantPath             string
		wantHeaders          map[string]string
		wantBody             map[string]any
	}{
		{"github", "", "o/r", "/repos/o/r/statuses/abc",
			map[string]string{"Authorization": "Bearer tok", "Accept": "application/vnd.github+json", "Content-Type": "application/json"},
			map[string]any{"state": "failure", "context": "conveyor/ci", "description": "2 jobs failed", "target_url": "https://ci/runs/1"}},
		{"gitlab", "/api/v4", "grp/sub/proj", "/api/v4/projects/grp%2Fsub%2Fproj/statuses/abc",
			map[string]string{"Private-Token": "tok", "Content-Type": "application/json"},
			map[string]any{"state": "failed", "name": "conveyor/ci", "description": "2 jobs failed", "target_url": "https://ci/runs/1"}},
		{"gitea", "/api/v1/", "o/r", "/api/v1/repos/o/r/statuses/abc",
			map[string]string{"Authorization": "token tok", "Content-Type": "application/json"},
			map[string]any{"state": "failure", "context": "conveyor/ci", "description": "2 jobs failed", "target_url": "https://ci/runs/1"}},
	} {
		t.Run(tc.forge, func(t *testing.T) {
			rec := forgetest.NewRecorder(t)
			c := newClient(t, tc.forge, rec.URL+tc.apiPath, rec.Client())
			if err := c.SetStatus(context.Background(), tc.repo, "abc", st); err != nil {
				t.Fatal(err)
			}
			calls := rec.Calls()
			if len(calls) != 1 {
				t.Fatalf("%d calls, want 1", len(calls))
			}
			call := calls[0]
			if call.Method != http.MethodPost || call.Path != tc.wantPath {
				t.Errorf("%s %s, want POST %s", call.Method, call.Path, tc.wantPath)
			}
			for k, v := range tc.wantHeaders {
				if got := call.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if len(call.JSON) != len(tc.wantBody) {
				t.Errorf("body = %v, want %v", call.JSON, tc.wantBody)
			}
			for k, v := range tc.wantBody {
				if call.JSON[k] != v {
					t.Errorf("body %s = %v, want %v", k, call.JSON[k], v)
				}
			}
		})
	}
}

func TestSetStatusStates(t *testing.T) {
	for _, tc := range []struct {
		state          State
		github, gitlab string
	}{
		{StatePending, "pending", "pending"},
		{StateRunning, "pending", "running"},
		{StateSuccess, "success", "success"},
		{StateFailure, "failure", "failed"},
		{StateError, "error", "failed"},
		{StateCanceled, "error", "canceled"},
	} {
		for forgeName, want := range map[string]string{"github": tc.github, "gitea": tc.github, "gitlab": tc.gitlab} {
			rec := forgetest.NewRecorder(t)
			c := newClient(t, forgeName, rec.URL, rec.Client())
			if err := c.SetStatus(context.Background(), "o/r", "abc", Status{State: tc.state, Context: "c"}); err != nil {
				t.Fatal(err)
			}
			if got := rec.Calls()[0].JSON["state"]; got != want {
				t.Errorf("%s %s: state %v, want %s", forgeName, tc.state, got, want)
			}
		}
	}
}

func TestSetStatusDescriptionCut(t *testing.T) {
	rec := forgetest.NewRecorder(t)
	c := newClient(t, "github", rec.URL, rec.Client())
	long := strings.Repeat("é", 200)
	if err := c.SetStatus(context.Background(), "o/r", "abc", Status{State: StateSuccess, Description: long}); err != nil {
		t.Fatal(err)
	}
	d, _ := rec.Calls()[0].JSON["description"].(string)
	if n := len([]rune(d)); n != 140 || !strings.HasSuffix(d, "…") {
		t.Errorf("description has %d characters: %q", n, d)
	}
}

func TestSetStatusHTTPErrors(t *testing.T) {
	for _, tc := range []struct {
		code int
		kind errs.Kind
	}{
		{400, errs.Invalid}, {401, errs.Unauthorized}, {403, errs.Unauthorized}, {404, errs.NotFound},
		{409, errs.Conflict}, {422, errs.Invalid}, {429, errs.Unavailable}, {500, errs.Unavailable}, {503, errs.Unavailable},
	} {
		rec := forgetest.NewRecorder(t).Fail(1, tc.code)
		c := newClient(t, "github", rec.URL, rec.Client())
		err := c.SetStatus(context.Background(), "o/r", "abc", Status{State: StateSuccess})
		if !errs.Is(err, tc.kind) || !strings.Contains(err.Error(), "scripted failure") {
			t.Errorf("%d: %v, want kind %v with the response body", tc.code, err, tc.kind)
		}
		if strings.Contains(err.Error(), "tok") {
			t.Errorf("error shows the token: %v", err)
		}
	}
}

// TestSetStatusSpecialAnswers covers answers the recorder does not script:
// GitHub's rate limit (403) and GitLab's refusal to repeat a state.
func TestSetStatusSpecialAnswers(t *testing.T) {
	for _, tc := range []struct {
		forge  string
		header string
		code   int
		body   string
		kind   errs.Kind
	}{
		{"github", "X-RateLimit-Remaining", 403, `{"message":"API rate limit exceeded"}`, errs.Unavailable},
		{"github", "Retry-After", 403, `{"message":"secondary rate limit"}`, errs.Unavailable},
		{"gitlab", "", 400, `{"message":"Cannot transition status via :run from :running"}`, errs.Conflict},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.header != "" {
				w.Header().Set(tc.header, "0")
			}
			w.WriteHeader(tc.code)
			_, _ = w.Write([]byte(tc.body))
		}))
		c := newClient(t, tc.forge, srv.URL, srv.Client())
		err := c.SetStatus(context.Background(), "o/r", "abc", Status{State: StateRunning})
		srv.Close()
		if !errs.Is(err, tc.kind) {
			t.Errorf("%s %d %s: %v, want kind %v", tc.forge, tc.code, tc.header, err, tc.kind)
		}
	}
}

func TestSetStatusTransportErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := newClient(t, "gitea", url, nil)
	if err := c.SetStatus(context.Background(), "o/r", "abc", Status{State: StatePending}); !errs.Is(err, errs.Unavailable) {
		t.Errorf("closed server: %v, want Unavailable", err)
	}

	done := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	defer slow.Close()
	defer close(done) // before Close, which waits for the handler
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	c = newClient(t, "github", slow.URL, slow.Client())
	if err := c.SetStatus(ctx, "o/r", "abc", Status{State: StatePending}); !errs.Is(err, errs.Timeout) {
		t.Errorf("deadline: %v, want Timeout", err)
	}
}

func TestSetStatusInvalidArguments(t *testing.T) {
	rec := forgetest.NewRecorder(t)
	c := newClient(t, "github", rec.URL, rec.Client())
	for _, tc := range []struct {
		repo, sha string
		state     State
	}{
		{"noslash", "abc", StateSuccess}, {"/r", "abc", StateSuccess}, {"o/", "abc", StateSuccess},
		{"o/r", "", StateSuccess}, {"o/r", "abc", "done"}, {"o/r", "abc", ""},
	} {
		if err := c.SetStatus(context.Background(), tc.repo, tc.sha, Status{State: tc.state}); !errs.Is(err, errs.Invalid) {
			t.Errorf("%q %q %q: %v, want Invalid", tc.repo, tc.sha, tc.state, err)
		}
	}
	if n := len(rec.Calls()); n != 0 {
		t.Errorf("%d calls made for invalid arguments", n)
	}
}

func TestNewStatusClient(t *testing.T) {
	for _, tc := range []struct {
		forge, base string
		ok          bool
	}{
		{"github", "", true}, {"gitlab", "", true}, {"forgejo", "https://code.example/api/v1", true},
		{"gitea", "", false}, {"bitbucket", "https://api.bitbucket.org", false},
		{"github", "api.github.com", false}, {"github", "ftp://h/api", false},
	} {
		_, err := NewStatusClient(tc.forge, tc.base, "t", nil)
		if (err == nil) != tc.ok || (err != nil && !errs.Is(err, errs.Invalid)) {
			t.Errorf("NewStatusClient(%q, %q) = %v, want ok %v", tc.forge, tc.base, err, tc.ok)
		}
	}
}

// TestRetrySetStatus runs Retry over a real client against scripted failures.
func TestRetrySetStatus(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fails     int
		code      int
		wantCalls int
		kind      errs.Kind // Other: success
	}{
		{"recovers", 2, 503, 3, errs.Other},
		{"gives up", 9, 502, 4, errs.Unavailable},
		{"final at once", 9, 401, 1, errs.Unauthorized},
		{"not found at once", 9, 404, 1, errs.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := forgetest.NewRecorder(t).Fail(tc.fails, tc.code)
			c := newClient(t, "gitlab", rec.URL, rec.Client())
			err := Retry(context.Background(), 4, time.Millisecond, func(ctx context.Context) error {
				return c.SetStatus(ctx, "g/p", "abc", Status{State: StateSuccess, Context: "conveyor/ci"})
			})
			if tc.kind == errs.Other && err != nil || tc.kind != errs.Other && !errs.Is(err, tc.kind) {
				t.Errorf("Retry = %v, want kind %v", err, tc.kind)
			}
			if n := len(rec.Calls()); n != tc.wantCalls {
				t.Errorf("%d calls, want %d", n, tc.wantCalls)
			}
		})
	}
}
