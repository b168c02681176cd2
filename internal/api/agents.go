package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

type agentKey struct{}

// agentOf is the agent that authenticated the request (agent routes).
func agentOf(r *http.Request) *store.Agent {
	a, _ := r.Context().Value(agentKey{}).(*store.Agent)
	return a
}

// authenticateAgent finds the agent by its token. API tokens are refused
// with a reason, so a misconfigured agent says what is wrong.
func (a *server) authenticateAgent(r *http.Request) (*store.Agent, error) {
	if a.Agents == nil {
		return nil, Public(errs.E("", errs.Unavailable, "this server does not serve agents"))
	}
	hash, err := bearerHash(r)
	if err != nil {
		return nil, err
	}
	ag, err := a.Agents.AgentByHash(r.Context(), hash)
	if errs.Is(err, errs.NotFound) {
		if _, terr := a.Store.TokenByHash(r.Context(), hash); terr == nil {
			return nil, errs.E("", errs.Forbidden, "an API token cannot use agent endpoints: create an agent token (conveyor agent-token create)")
		}
		return nil, errs.E("", errs.Unauthorized, "unknown or revoked agent token")
	}
	return ag, err
}

// fence reads the job id of the path and the fencing token of the header.
func fence(r *http.Request) (jobID, token int64, err error) {
	if jobID, err = pathID(r, "id"); err != nil {
		return 0, 0, err
	}
	s := r.Header.Get(LeaseHeader)
	if token, err = strconv.ParseInt(s, 10, 64); err != nil || token <= 0 {
		return 0, 0, errs.E("", errs.Invalid, "header %s: %q is not a lease token", LeaseHeader, s)
	}
	return jobID, token, nil
}

func (a *server) agentRegister(w http.ResponseWriter, r *http.Request, _ *store.Token) {
	var in AgentRegister
	if err := decode(r, &in, false); err != nil {
		a.fail(w, "", err)
		return
	}
	out, err := a.Agents.Register(r.Context(), agentOf(r), in)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// agentLease long-polls for a job: 200 with it, or 204 when there is none
// (with DrainingHeader when the agent is drained).
func (a *server) agentLease(w http.ResponseWriter, r *http.Request, _ *store.Token) {
	asg, draining, err := a.Agents.Lease(r.Context(), agentOf(r))
	if err != nil {
		a.fail(w, "", err)
		return
	}
	if draining {
		w.Header().Set(DrainingHeader, "true")
	}
	if asg == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	v, _ := strconv.Atoi(r.Header.Get(ContractHeader))
	writeJSON(w, http.StatusOK, asg.For(v))
}

func (a *server) agentHeartbeat(w http.ResponseWriter, r *http.Request, _ *store.Token) {
	id, token, err := fence(r)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	cancel, err := a.Agents.Heartbeat(r.Context(), agentOf(r), id, token)
	if err != nil {
		a.fail(w, fmt.Sprintf("job %d", id), err)
		return
	}
	writeJSON(w, http.StatusOK, AgentHeartbeat{Cancel: cancel})
}

// agentLogs stores the raw body as the job's next log chunk.
func (a *server) agentLogs(w http.ResponseWriter, r *http.Request, _ *store.Token) {
	id, token, err := fence(r)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		a.fail(w, "", errs.Wrap("", errs.Invalid, err))
		return
	}
	if len(data) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	retryPrev := int64(-1)
	if v := r.Header.Get(LogRetryHeader); v != "" {
		if retryPrev, err = strconv.ParseInt(v, 10, 64); err != nil || retryPrev < 0 {
			a.fail(w, "", errs.E("", errs.Invalid, "header %s: %q is not a log seq", LogRetryHeader, v))
			return
		}
	}
	seq, err := a.Agents.AppendLog(r.Context(), agentOf(r), id, token, data, retryPrev)
	if err != nil {
		a.fail(w, fmt.Sprintf("job %d", id), err)
		return
	}
	w.Header().Set(LogSeqHeader, strconv.FormatInt(seq, 10))
	w.WriteHeader(http.StatusNoContent)
}

// writeCounter tells whether an answer has started.
type writeCounter struct {
	w http.ResponseWriter
	n int64
}

func (c *writeCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (a *server) agentSource(w http.ResponseWriter, r *http.Request, _ *store.Token) {
	id, token, err := fence(r)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	w.Header().Set("Content-Type", "application/gzip")
	cw := &writeCounter{w: w}
	if err := a.Agents.Source(r.Context(), agentOf(r), id, token, cw); err != nil {
		if cw.n == 0 {
			w.Header().Del("Content-Type")
			a.fail(w, fmt.Sprintf("job %d", id), err)
			return
		}
		a.Log.Warn("sending a job's source", "job", id, "err", err)
		panic(http.ErrAbortHandler) // cut the stream: the agent must not take a truncated tree for whole
	}
}

func (a *server) agentComplete(w http.ResponseWriter, r *http.Request, _ *store.Token) {
	id, token, err := fence(r)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	var in AgentCompletion
	if err := decode(r, &in, false); err != nil {
		a.fail(w, "", err)
		return
	}
	if !store.Terminal(in.Status) {
		a.fail(w, "", errs.E("", errs.Invalid, "status %q: want success, failure, cancelled, skipped or error", in.Status))
		return
	}
	if err := a.Agents.Complete(r.Context(), agentOf(r), id, token, in); err != nil {
		a.fail(w, fmt.Sprintf("job %d", id), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *server) agentRelease(w http.ResponseWriter, r *http.Request, _ *store.Token) {
	id, token, err := fence(r)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	var in AgentRelease
	if err := decode(r, &in, true); err != nil {
		a.fail(w, "", err)
		return
	}
	if err := a.Agents.Release(r.Context(), agentOf(r), id, token, in.Reason); err != nil {
		a.fail(w, fmt.Sprintf("job %d", id), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// agentAdmin answers 503 when the server has no agent support.
func (a *server) agentAdmin(w http.ResponseWriter) bool {
	if a.AgentAdmin == nil {
		writeErrorMsg(w, errs.Unavailable, "this server does not serve agents")
		return false
	}
	return true
}

func (a *server) createAgent(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	if !a.agentAdmin(w) {
		return
	}
	var in AgentInput
	if err := decode(r, &in, false); err != nil {
		a.fail(w, "", err)
		return
	}
	var out *AgentCreated
	err := a.audited(r, tok.OrgID, "agent.create", fixed(fmt.Sprintf("agent %q", strings.TrimSpace(in.Name)), agentText(in)),
		func(ctx context.Context) (err error) {
			out, err = a.AgentAdmin.CreateAgent(ctx, tok.OrgID, in)
			return err
		})
	if err != nil {
		a.fail(w, "", err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

func (a *server) listAgents(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	if !a.agentAdmin(w) {
		return
	}
	list, err := a.AgentAdmin.ListAgents(r.Context(), tok.OrgID)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	if list == nil {
		list = []Agent{}
	}
	writeJSON(w, http.StatusOK, AgentList{Agents: list})
}

func (a *server) drainAgent(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	a.setDraining(w, r, tok, true)
}

func (a *server) resumeAgent(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	a.setDraining(w, r, tok, false)
}

func (a *server) setDraining(w http.ResponseWriter, r *http.Request, tok *store.Token, draining bool) {
	if !a.agentAdmin(w) {
		return
	}
	id, err := pathID(r, "id")
	if err != nil {
		a.fail(w, "", err)
		return
	}
	action := "agent.resume"
	if draining {
		action = "agent.drain"
	}
	var ag *Agent
	err = a.audited(r, tok.OrgID, action, fixed(fmt.Sprintf("agent %d", id), ""), func(ctx context.Context) (err error) {
		ag, err = a.AgentAdmin.SetDraining(ctx, tok.OrgID, id, draining)
		return err
	})
	if err != nil {
		a.fail(w, fmt.Sprintf("agent %d", id), err)
		return
	}
	writeJSON(w, http.StatusOK, ag)
}

func (a *server) revokeAgent(w http.ResponseWriter, r *http.Request, tok *store.Token) {
	if !a.agentAdmin(w) {
		return
	}
	id, err := pathID(r, "id")
	if err != nil {
		a.fail(w, "", err)
		return
	}
	err = a.audited(r, tok.OrgID, "agent.revoke", fixed(fmt.Sprintf("agent %d", id), "token revoked"), func(ctx context.Context) error {
		return a.AgentAdmin.RevokeAgent(ctx, tok.OrgID, id)
	})
	if err != nil {
		a.fail(w, fmt.Sprintf("agent %d", id), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// agentText is a new agent's labels for the audit log.
func agentText(in AgentInput) string {
	s := "labels " + strings.Join(in.Labels, ",")
	if len(in.AllowedLabels) > 0 {
		s += ", allowed labels " + strings.Join(in.AllowedLabels, ",")
	}
	return s
}

// waitingReasons fills in why queued jobs wait (best effort: the run view
// is still answered when it cannot be told).
func (a *server) waitingReasons(ctx context.Context, orgID int64, jobs []*store.Job, out []Job) {
	if a.AgentAdmin == nil {
		return
	}
	reasons, err := a.AgentAdmin.WaitingReasons(ctx, orgID, jobs)
	if err != nil {
		a.Log.Warn("telling why jobs wait", "err", err)
		return
	}
	for i := range out {
		if r := reasons[out[i].ID]; r != "" && out[i].WaitingReason == "" {
			out[i].WaitingReason = r
		}
	}
}
