package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// JobWorkerTokenPrefix starts a job worker credential: what the in-pod
// worker of one job (the kubernetes backend's worker layout) reports
// with. It is valid for that job under that lease only, and dies with the
// job; a job's GITHUB_TOKEN starts with JobTokenPrefix instead.
const JobWorkerTokenPrefix = "cvw_"

// JobWorkers authenticates job worker credentials; the server's agent
// protocol implements it.
type JobWorkers interface {
	// JobWorkerByHash returns the worker whose credential has this
	// SHA-256, as an Agent whose Job is its one job; NotFound when the
	// credential is unknown or its job no longer runs under its lease.
	JobWorkerByHash(ctx context.Context, hash []byte) (*store.Agent, error)
}

// isJobWorker reports whether the request carries a job worker credential.
func isJobWorker(r *http.Request) bool {
	_, secret, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return strings.HasPrefix(strings.TrimSpace(secret), JobWorkerTokenPrefix)
}

// jobWorkerRoute: a job worker credential reaches its own job's calls
// (/api/agent/jobs/{id}/...), never lease, register or any other route.
func jobWorkerRoute(rt route) bool {
	return rt.need.kind == agentOnly && strings.HasPrefix(rt.path, "/api/agent/jobs/{id}/")
}

// authorizeJobWorker authenticates a job worker credential for rt: its
// own job's agent-protocol calls only.
func (a *server) authorizeJobWorker(w http.ResponseWriter, r *http.Request, rt route) (*http.Request, bool) {
	fail := func(k errs.Kind, format string, args ...any) (*http.Request, bool) {
		writeErrorMsg(w, k, fmt.Sprintf(format, args...))
		return r, false
	}
	jw, ok := a.Agents.(JobWorkers)
	if !ok {
		return fail(errs.Unauthorized, "this server does not accept job worker credentials")
	}
	hash, err := bearerHash(r)
	if err != nil {
		a.fail(w, "", err)
		return r, false
	}
	ag, err := jw.JobWorkerByHash(r.Context(), hash)
	if errs.Is(err, errs.NotFound) {
		return fail(errs.Unauthorized, "unknown job worker credential, or its job has ended")
	}
	if err != nil {
		a.fail(w, "", err)
		return r, false
	}
	if !jobWorkerRoute(rt) {
		return fail(errs.Forbidden, "%s %s: a job worker credential reaches only /api/agent/jobs/{id}/ of its own job", rt.method, rt.path)
	}
	if id, err := pathID(r, "id"); err != nil || id != ag.Job {
		return fail(errs.Forbidden, "job %s: this credential is job %d's only", r.PathValue("id"), ag.Job)
	}
	return r.WithContext(context.WithValue(r.Context(), agentKey{}, ag)), true
}

// agentAssignment answers a job's worker its assignment (the compiled
// job, secrets, needs): what an agent gets with its lease, and what the
// in-pod worker starts from.
func (a *server) agentAssignment(w http.ResponseWriter, r *http.Request, _ *store.Token) {
	id, token, err := fence(r)
	if err != nil {
		a.fail(w, "", err)
		return
	}
	src, ok := a.Agents.(AssignmentSource)
	if !ok {
		writeErrorMsg(w, errs.Unavailable, "this server does not serve assignments")
		return
	}
	asg, err := src.Assignment(r.Context(), agentOf(r), id, token)
	if err != nil {
		a.fail(w, fmt.Sprintf("job %d", id), err)
		return
	}
	writeJSON(w, http.StatusOK, asg)
}

// AssignmentSource makes a leased job's assignment again for its worker.
type AssignmentSource interface {
	Assignment(ctx context.Context, a *store.Agent, jobID, token int64) (*AgentAssignment, error)
}
