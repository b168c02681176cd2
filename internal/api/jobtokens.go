package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// JobTokenPrefix starts every job's GITHUB_TOKEN; personal tokens start
// with cvy_.
const JobTokenPrefix = "cvj_"

// isJobToken reports whether the request carries a job's token.
func isJobToken(r *http.Request) bool {
	_, secret, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return strings.HasPrefix(strings.TrimSpace(secret), JobTokenPrefix)
}

// jobTokenRoute: a job's token reaches the GET routes of its own run
// (the run, its jobs' logs, its artifacts) and nothing else.
func jobTokenRoute(rt route) bool {
	return rt.method == "GET" && strings.HasPrefix(rt.path, "/api/runs/{id}")
}

// authorizeJob authenticates a job's GITHUB_TOKEN for rt. The caller is
// a viewer of the job's organisation with a read token, limited to the
// job's run while the job runs.
func (a *server) authorizeJob(w http.ResponseWriter, r *http.Request, rt route) (*http.Request, *store.Token, bool) {
	fail := func(k errs.Kind, format string, args ...any) (*http.Request, *store.Token, bool) {
		writeErrorMsg(w, k, fmt.Sprintf(format, args...))
		return r, nil, false
	}
	if a.JobTokens == nil {
		return fail(errs.Unauthorized, "this server does not accept job tokens")
	}
	hash, err := bearerHash(r)
	if err != nil {
		a.fail(w, "", err)
		return r, nil, false
	}
	jt, err := a.JobTokens.JobTokenByHash(r.Context(), hash)
	if errs.Is(err, errs.NotFound) {
		return fail(errs.Unauthorized, "unknown job token, or its job has ended")
	}
	if err != nil {
		a.fail(w, "", err)
		return r, nil, false
	}
	if !jobTokenRoute(rt) || !jt.ReadRun {
		why := "the job's permissions do not include actions: read"
		if !jobTokenRoute(rt) {
			why = "a job token reaches only GET /api/runs/{id} and below, of its own run"
		}
		return fail(errs.Forbidden, "%s %s: %s", rt.method, rt.path, why)
	}
	if id, err := pathID(r, "id"); err != nil || id != jt.RunID {
		return fail(errs.NotFound, "run %s: not found", r.PathValue("id"))
	}
	tok := &store.Token{OrgID: jt.OrgID, Name: "GITHUB_TOKEN", Role: store.RoleRead, Kind: "job"}
	c := &caller{tok: tok, user: fmt.Sprintf("job %d", jt.JobID), role: store.OrgViewer}
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, c)), tok, true
}
