// Package client is a typed Go client of Conveyor's REST API (internal/api):
// one method per endpoint, error answers turned back into errs kinds, and
// live logs followed over Server-Sent Events with reconnection.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Client talks to one server with one token. It is safe for concurrent use.
type Client struct {
	base, token string
	hc          *http.Client
	// retryBase and maxRetries shape log-follow reconnection.
	retryBase  time.Duration
	maxRetries int
}

// New returns a client of the server at baseURL (e.g.
// http://127.0.0.1:8080) using token; hc nil means http.DefaultClient. A
// Timeout on hc also cuts log streams, which are then resumed.
func New(baseURL, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, hc: hc,
		retryBase: 250 * time.Millisecond, maxRetries: 10}
}

// Error is an error answer of the server. Returned errors wrap it in an
// *errs.Error with its kind, so errs.KindOf works on them.
type Error struct {
	Status  int
	Kind    string // wire name: not_found, forbidden...
	Message string
}

func (e *Error) Error() string { return e.Message }

// RunFilter selects runs for ListRuns; zero fields select everything.
type RunFilter struct {
	RepoID int64
	Status string
	Limit  int
	Before int64
}

// WhoAmI describes the client's token.
func (c *Client) WhoAmI(ctx context.Context) (*api.WhoAmI, error) {
	var out api.WhoAmI
	return &out, c.call(ctx, "GET", "/api/whoami", nil, &out)
}

// AddRepo registers a repository; the answer holds the webhook URL and
// secret (shown only this once).
func (c *Client) AddRepo(ctx context.Context, in api.RepoInput) (*api.RepoCreated, error) {
	var out api.RepoCreated
	return &out, c.call(ctx, "POST", "/api/repos", in, &out)
}

// UpdateRepo changes a repository's settings.
func (c *Client) UpdateRepo(ctx context.Context, id int64, in api.RepoUpdate) (*api.Repo, error) {
	var out api.Repo
	return &out, c.call(ctx, "PATCH", "/api/repos/"+strconv.FormatInt(id, 10), in, &out)
}

// ListRepos lists the organisation's repositories.
func (c *Client) ListRepos(ctx context.Context) ([]api.Repo, error) {
	var out api.RepoList
	return out.Repos, c.call(ctx, "GET", "/api/repos", nil, &out)
}

// GetRepo returns one repository.
func (c *Client) GetRepo(ctx context.Context, id int64) (*api.Repo, error) {
	var out api.Repo
	return &out, c.call(ctx, "GET", "/api/repos/"+itoa(id), nil, &out)
}

// FindRepo returns the repository ref names: an id or owner/name.
func (c *Client) FindRepo(ctx context.Context, ref string) (*api.Repo, error) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		return c.GetRepo(ctx, id)
	}
	var out api.RepoList
	if err := c.call(ctx, "GET", "/api/repos?name="+url.QueryEscape(ref), nil, &out); err != nil {
		return nil, err
	}
	if len(out.Repos) == 0 {
		return nil, errs.Wrap("", errs.NotFound, &Error{Status: 404, Kind: "not_found", Message: "not found"})
	}
	return &out.Repos[0], nil
}

// Dispatch triggers a workflow_dispatch event and returns its id.
func (c *Client) Dispatch(ctx context.Context, repoID int64, in api.DispatchInput) (int64, error) {
	var out api.Dispatched
	return out.EventID, c.call(ctx, "POST", "/api/repos/"+itoa(repoID)+"/dispatch", in, &out)
}

// GetEvent returns an accepted event and its processing state.
func (c *Client) GetEvent(ctx context.Context, id int64) (*api.Event, error) {
	var out api.Event
	return &out, c.call(ctx, "GET", "/api/events/"+itoa(id), nil, &out)
}

// ListRuns lists runs, newest first; NextBefore in the answer pages on.
func (c *Client) ListRuns(ctx context.Context, f RunFilter) (*api.RunList, error) {
	q := url.Values{}
	if f.RepoID != 0 {
		q.Set("repo", itoa(f.RepoID))
	}
	if f.Status != "" {
		q.Set("status", f.Status)
	}
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Before != 0 {
		q.Set("before", itoa(f.Before))
	}
	path := "/api/runs"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out api.RunList
	return &out, c.call(ctx, "GET", path, nil, &out)
}

// GetRun returns a run with its jobs.
func (c *Client) GetRun(ctx context.Context, id int64) (*api.RunDetail, error) {
	var out api.RunDetail
	return &out, c.call(ctx, "GET", "/api/runs/"+itoa(id), nil, &out)
}

// Cancel cancels a run and returns it as it is after the request.
func (c *Client) Cancel(ctx context.Context, runID int64) (*api.Run, error) {
	var out api.Run
	return &out, c.call(ctx, "POST", "/api/runs/"+itoa(runID)+"/cancel", nil, &out)
}

// Rerun re-runs a run (only its failed jobs and their dependents when
// failedOnly) and returns the new run.
func (c *Client) Rerun(ctx context.Context, runID int64, failedOnly bool) (*api.Run, error) {
	var out api.Run
	return &out, c.call(ctx, "POST", "/api/runs/"+itoa(runID)+"/rerun", api.RerunInput{Failed: failedOnly}, &out)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// call sends in as JSON (when not nil) and decodes a 2xx answer into out
// (nil: the answer is not read, as for 204).
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	return c.callHeader(ctx, method, path, in, out, nil)
}

// callHeader is call with extra headers.
func (c *Client) callHeader(ctx context.Context, method, path string, in, out any, hdr http.Header) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return errs.Wrap("", errs.Invalid, err)
		}
		body = bytes.NewReader(b)
	}
	resp, err := c.send(ctx, method, path, body, "application/json", hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return errs.E("", errs.Unavailable, "%s %s: reading the answer: %v", method, path, err)
	}
	return nil
}

// send does one request and returns the response when it is a 2xx;
// otherwise the decoded error.
func (c *Client) send(ctx context.Context, method, path string, body io.Reader, accept string, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, errs.Wrap("", errs.Invalid, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Accept", accept)
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, errs.Wrap("", errs.Canceled, ctx.Err())
		}
		return nil, errs.E("", errs.Unavailable, "cannot reach %s: %v", c.base, unwrapURLError(err))
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, decodeError(resp)
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// decodeError turns an error answer into an error of its kind. Answers
// that are not the API's error JSON (a proxy's page) get a kind from the
// status.
func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb api.ErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error.Kind != "" {
		e := &Error{Status: resp.StatusCode, Kind: eb.Error.Kind, Message: eb.Error.Message}
		return errs.Wrap("", api.KindFromName(e.Kind), e)
	}
	k := kindOfStatus(resp.StatusCode)
	msg := strings.TrimSpace(string(b))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		msg = resp.Status
	} else {
		msg = resp.Status + ": " + msg
	}
	return errs.Wrap("", k, &Error{Status: resp.StatusCode, Kind: api.KindName(k), Message: msg})
}

func kindOfStatus(status int) errs.Kind {
	switch status {
	case 400, 405, 422:
		return errs.Invalid
	case 401:
		return errs.Unauthorized
	case 403:
		return errs.Forbidden
	case 404:
		return errs.NotFound
	case 409:
		return errs.Conflict
	case 413:
		return errs.TooLarge
	case 429:
		return errs.TooMany
	case 502, 503:
		return errs.Unavailable
	case 504:
		return errs.Timeout
	}
	return errs.Other
}
