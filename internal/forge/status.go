package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/event"
)

// State is a commit status state in Conveyor's words; each forge maps it to
// its own (GitLab: failure and error are failed; GitHub and Gitea have no
// running or canceled and get pending and error).
type State string

const (
	StatePending  State = "pending"
	StateRunning  State = "running"
	StateSuccess  State = "success"
	StateFailure  State = "failure"
	StateError    State = "error"
	StateCanceled State = "canceled"
)

// Status is one commit status.
type Status struct {
	State State
	// Context names the status among the commit's others, e.g.
	// "conveyor/<workflow>"; a new status with the same context replaces it.
	Context     string
	Description string // cut to 140 characters, GitHub's limit
	TargetURL   string
}

// StatusClient reports commit statuses to a forge. Implementations are safe
// for concurrent use. Setting a status again with the same Context replaces
// it, so retrying SetStatus is harmless. Errors have a kind: Invalid,
// Unauthorized, NotFound and Conflict are final; Unavailable is worth a
// retry (see Retry).
type StatusClient interface {
	SetStatus(ctx context.Context, repoFullName, sha string, st Status) error
}

var _ StatusClient = (*statusClient)(nil)

// maxDescription is GitHub's limit on a status description, in characters.
const maxDescription = 140

// NewStatusClient returns the StatusClient of forgeName, talking to
// baseAPIURL (DefaultAPIURL gives it; empty means the public GitHub or
// GitLab) with token, over httpClient (nil: http.DefaultClient).
func NewStatusClient(forgeName, baseAPIURL, token string, httpClient *http.Client) (StatusClient, error) {
	const op = "forge.NewStatusClient"
	f, err := canonical(op, forgeName)
	if err != nil {
		return nil, err
	}
	if baseAPIURL == "" {
		baseAPIURL = DefaultAPIURL(f, "")
	}
	u, err := url.Parse(baseAPIURL)
	if baseAPIURL == "" || err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, errs.E(op, errs.Invalid, "%s needs an http(s) API base URL, got %q", f, baseAPIURL)
	}
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &statusClient{forge: f, base: strings.TrimRight(baseAPIURL, "/"), token: token, hc: httpClient}, nil
}

type statusClient struct {
	forge string
	base  string
	token string
	hc    *http.Client
}

const opSetStatus = "forge.SetStatus"

func (c *statusClient) SetStatus(ctx context.Context, repoFullName, sha string, st Status) error {
	req, err := c.request(ctx, repoFullName, sha, st)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return transportError(c.forge, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // lets the connection be reused
	if resp.StatusCode/100 == 2 {
		return nil
	}
	return statusError(c.forge, req, resp, snippet)
}

// request builds the forge's "create a commit status" call.
func (c *statusClient) request(ctx context.Context, repo, sha string, st Status) (*http.Request, error) {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" || strings.HasSuffix(repo, "/") {
		return nil, errs.E(opSetStatus, errs.Invalid, "repository %q is not owner/name", repo)
	}
	if sha == "" {
		return nil, errs.E(opSetStatus, errs.Invalid, "no commit sha")
	}
	state, ok := forgeState(c.forge, st.State)
	if !ok {
		return nil, errs.E(opSetStatus, errs.Invalid, "unknown status state %q", st.State)
	}
	desc := truncate(st.Description, maxDescription)
	var path string
	body := map[string]string{"state": state, "target_url": st.TargetURL, "description": desc}
	if c.forge == event.GitLab {
		path = "/projects/" + url.PathEscape(repo) + "/statuses/" + url.PathEscape(sha)
		body["name"] = st.Context
	} else {
		path = "/repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name) + "/statuses/" + url.PathEscape(sha)
		body["context"] = st.Context
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, errs.Wrap(opSetStatus, errs.Invalid, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return nil, errs.Wrap(opSetStatus, errs.Invalid, err)
	}
	c.authorize(req.Header)
	return req, nil
}

func (c *statusClient) authorize(h http.Header) {
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "conveyor")
	switch c.forge {
	case event.GitHub:
		h.Set("Accept", "application/vnd.github+json")
		h.Set("X-GitHub-Api-Version", "2022-11-28")
		h.Set("Authorization", "Bearer "+c.token)
	case event.Gitea:
		h.Set("Accept", "application/json")
		h.Set("Authorization", "token "+c.token)
	default:
		h.Set("Accept", "application/json")
		h.Set("PRIVATE-TOKEN", c.token)
	}
}

// gitlabStates and hubStates (GitHub, Gitea) map a State to the forge's word.
var (
	gitlabStates = map[State]string{
		StatePending: "pending", StateRunning: "running", StateSuccess: "success",
		StateFailure: "failed", StateError: "failed", StateCanceled: "canceled",
	}
	hubStates = map[State]string{
		StatePending: "pending", StateRunning: "pending", StateSuccess: "success",
		StateFailure: "failure", StateError: "error", StateCanceled: "error",
	}
)

func forgeState(forge string, s State) (string, bool) {
	states := hubStates
	if forge == event.GitLab {
		states = gitlabStates
	}
	v, ok := states[s]
	return v, ok
}

// truncate cuts s to at most n characters, ending with "…" when cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// statusError gives a non-2xx answer its kind. GitHub answers 403 when
// rate limited, which is worth a retry; GitLab answers 400 "Cannot
// transition status" when the status is already in that or a final state.
func statusError(forge string, req *http.Request, resp *http.Response, snippet []byte) error {
	code := resp.StatusCode
	msg := strings.TrimSpace(string(snippet))
	kind := errs.Invalid
	switch {
	case code == http.StatusUnauthorized:
		kind = errs.Unauthorized
	case code == http.StatusForbidden && (resp.Header.Get("Retry-After") != "" || resp.Header.Get("X-RateLimit-Remaining") == "0"):
		kind = errs.Unavailable
	case code == http.StatusForbidden:
		kind = errs.Unauthorized
	case code == http.StatusNotFound:
		kind = errs.NotFound
	case code == http.StatusConflict, code == http.StatusBadRequest && strings.Contains(msg, "Cannot transition status"):
		kind = errs.Conflict
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		kind = errs.Unavailable
	}
	return errs.E(opSetStatus, kind, "%s: %s %s: %s: %s", forge, req.Method, req.URL.EscapedPath(), resp.Status, msg)
}

// transportError kinds a failed round trip: the caller's context ending is
// Canceled or Timeout, anything else (refused, reset, DNS) Unavailable.
func transportError(forge string, err error) error {
	kind := errs.Unavailable
	switch {
	case errors.Is(err, context.Canceled):
		kind = errs.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		kind = errs.Timeout
	}
	return errs.Wrap(opSetStatus, kind, fmt.Errorf("%s: %w", forge, err))
}
