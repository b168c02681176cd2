package client

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/jobspec"
)

// CreateAgent creates an agent of the token's organisation; the answer
// holds its token (shown only this once).
func (c *Client) CreateAgent(ctx context.Context, in api.AgentInput) (*api.AgentCreated, error) {
	var out api.AgentCreated
	return &out, c.call(ctx, "POST", "/api/agents", in, &out)
}

// ListAgents lists the organisation's agents.
func (c *Client) ListAgents(ctx context.Context) ([]api.Agent, error) {
	var out api.AgentList
	return out.Agents, c.call(ctx, "GET", "/api/agents", nil, &out)
}

// DrainAgent drains an agent (or resumes it when drain is false).
func (c *Client) DrainAgent(ctx context.Context, id int64, drain bool) (*api.Agent, error) {
	verb := "/drain"
	if !drain {
		verb = "/resume"
	}
	var out api.Agent
	return &out, c.call(ctx, "POST", "/api/agents/"+itoa(id)+verb, nil, &out)
}

// RevokeAgent revokes an agent's token.
func (c *Client) RevokeAgent(ctx context.Context, id int64) error {
	return c.call(ctx, "DELETE", "/api/agents/"+itoa(id), nil, nil)
}

// The agent protocol: a Client made with an agent token speaks it.

// Register tells the server what the agent runs.
func (c *Client) Register(ctx context.Context, in api.AgentRegister) (*api.AgentRegistered, error) {
	var out api.AgentRegistered
	return &out, c.call(ctx, "POST", "/api/agent/register", in, &out)
}

// Lease waits for a job: nil when there is none (draining tells that the
// agent is drained).
func (c *Client) Lease(ctx context.Context) (asg *api.AgentAssignment, draining bool, err error) {
	resp, err := c.send(ctx, "POST", "/api/agent/lease", nil, "application/json",
		http.Header{api.ContractHeader: {strconv.Itoa(jobspec.Version)}})
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	draining = resp.Header.Get(api.DrainingHeader) == "true"
	if resp.StatusCode == http.StatusNoContent {
		return nil, draining, nil
	}
	var out api.AgentAssignment
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, draining, errs.E("", errs.Unavailable, "lease: reading the answer: %v", err)
	}
	return &out, draining, nil
}

// Job is a leased job as the agent protocol names it: its id and fencing
// token, sent with every call about it.
type Job struct {
	ID, Token int64
}

func (j Job) path(verb string) string { return "/api/agent/jobs/" + itoa(j.ID) + "/" + verb }

func (j Job) header() http.Header {
	return http.Header{api.LeaseHeader: {strconv.FormatInt(j.Token, 10)}}
}

// Heartbeat extends the job's lease; cancel is true when its run was
// cancelled. A Conflict error means the lease is lost: drop the job.
func (c *Client) Heartbeat(ctx context.Context, j Job) (cancel bool, err error) {
	var out api.AgentHeartbeat
	return out.Cancel, c.callHeader(ctx, "POST", j.path("heartbeat"), nil, &out, j.header())
}

// AppendLog sends the next chunk of the job's output and returns the seq
// the server stored it under (0 when it did not say). retryPrev < 0 sends
// it as new; retryPrev >= 0 sends it again after a lost answer, with the
// seq of the previous chunk (0: none), so that it is not stored twice.
func (c *Client) AppendLog(ctx context.Context, j Job, data []byte, retryPrev int64) (int64, error) {
	h := j.header()
	h.Set("Content-Type", "application/octet-stream")
	if retryPrev >= 0 {
		h.Set(api.LogRetryHeader, strconv.FormatInt(retryPrev, 10))
	}
	resp, err := c.send(ctx, "POST", j.path("logs"), bytes.NewReader(data), "application/json", h)
	if err != nil {
		return 0, err
	}
	seq, _ := strconv.ParseInt(resp.Header.Get(api.LogSeqHeader), 10, 64)
	return seq, resp.Body.Close()
}

// Source returns the job's source tree as a tar.gz stream; close it.
func (c *Client) Source(ctx context.Context, j Job) (io.ReadCloser, error) {
	resp, err := c.send(ctx, "GET", j.path("source"), nil, "application/gzip", j.header())
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Complete reports the job's end.
func (c *Client) Complete(ctx context.Context, j Job, in api.AgentCompletion) error {
	return c.callHeader(ctx, "POST", j.path("complete"), in, nil, j.header())
}

// Release hands the job back to the queue.
func (c *Client) Release(ctx context.Context, j Job, reason string) error {
	return c.callHeader(ctx, "POST", j.path("release"), api.AgentRelease{Reason: reason}, nil, j.header())
}

// Assignment fetches the job's assignment: what an in-pod worker, made
// with the job's worker credential, runs.
func (c *Client) Assignment(ctx context.Context, j Job) (*api.AgentAssignment, error) {
	var out api.AgentAssignment
	return &out, c.callHeader(ctx, "GET", j.path("assignment"), nil, &out, j.header())
}
