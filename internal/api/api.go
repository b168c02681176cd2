// Package api is Conveyor's REST API under /api/: bearer-token auth scoped
// by organisation, JSON answers with separate response types, errors as
// {"error": {"kind", "message"}}, live job logs over Server-Sent Events and
// an OpenAPI 3 document kept in sync with the routes by a test.
package api

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/password"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// MaxBody caps API request bodies.
const MaxBody = 1 << 20

// The store reads the API needs; a store.Store has them all.
type (
	// TokenReader authenticates bearer tokens and finds their user's
	// role in the token's organisation.
	TokenReader interface {
		TokenByHash(ctx context.Context, hash []byte) (*store.Token, error)
		Member(ctx context.Context, orgID, userID int64) (*store.Member, error)
		GetUser(ctx context.Context, id int64) (*store.User, error)
	}
	// RepoReader reads repositories of an organisation.
	RepoReader interface {
		GetRepo(ctx context.Context, orgID, id int64) (*store.Repo, error)
		RepoByName(ctx context.Context, orgID int64, name string) (*store.Repo, error)
		ListRepos(ctx context.Context, orgID int64) ([]*store.Repo, error)
	}
	// EventReader reads accepted events.
	EventReader interface {
		GetEvent(ctx context.Context, orgID, id int64) (*store.Event, error)
	}
	// RunReader reads runs and their jobs.
	RunReader interface {
		GetRun(ctx context.Context, orgID, id int64) (*store.Run, error)
		ListRuns(ctx context.Context, orgID int64, f store.RunFilter) ([]*store.Run, error)
		LatestRuns(ctx context.Context, orgID int64) ([]*store.Run, error)
		Jobs(ctx context.Context, orgID, runID int64) ([]*store.Job, error)
		GetJob(ctx context.Context, orgID, jobID int64) (*store.Job, error)
		Attempts(ctx context.Context, orgID, jobID int64) ([]*store.Attempt, error)
	}
	// LogReader reads stored log chunks.
	LogReader interface {
		ReadLog(ctx context.Context, orgID, jobID, after int64, limit int) ([]store.LogChunk, error)
	}
)

// Store is every read the API makes; a store.Store is one.
type Store interface {
	TokenReader
	RepoReader
	EventReader
	RunReader
	LogReader
}

var _ Store = store.Store(nil)

// Deps is what the API is built from; internal/server wires them.
type Deps struct {
	Store   Store
	Actions Actions
	// Agents serves the agent protocol and AgentAdmin the management of
	// agents; nil: those routes answer 503.
	Agents     AgentProtocol
	AgentAdmin AgentAdmin
	// Artifacts stores the artifacts of runs (nil: those routes answer
	// 503); MaxArtifactSize caps one upload (default 256 MiB).
	Artifacts       store.Artifacts
	MaxArtifactSize int64
	// Retention keeps retention settings (nil: those routes answer 503).
	Retention RetentionStore
	// Accounts serves login, organisations, users, tokens and the audit
	// log (nil: those routes answer 503, and nothing is audited).
	Accounts AccountStore
	// Secrets stores secrets and variables (nil: those routes answer 503);
	// JobTokens the jobs' GITHUB_TOKENs (nil: they are refused).
	Secrets   store.Secrets
	JobTokens store.JobTokens
	// Quotas serves organisations' quotas and usage (nil: those routes
	// answer 503).
	Quotas QuotaStore
	// Environments keeps the repositories' environments and Approvals
	// decides on jobs awaiting approval (nil: those routes answer 503).
	Environments EnvironmentStore
	Approvals    Approver
	// Logins bound failed password logins per client address; Failures
	// keeps their buckets, shared by the replicas of one database (nil: in
	// this process).
	Logins   LoginLimits
	Failures store.FailureBuckets
	// PasswordParams are argon2id's costs for new password hashes
	// (default password.Default).
	PasswordParams password.Params
	// Notifier wakes log followers at once; nil: they poll every second.
	Notifier LogNotifier
	// BaseURL is the server's public URL, without a trailing slash; hook
	// URLs are BaseURL + "/hooks/{id}".
	BaseURL string
	Version string
	// Log receives internal errors (answered with a generic message);
	// nil discards them.
	Log *slog.Logger
	// Poll and Heartbeat tune log following (defaults 1 s and 15 s).
	Poll, Heartbeat time.Duration
}

// handlerFunc is an API handler; tok is nil on unauthenticated routes.
type handlerFunc func(a *server, w http.ResponseWriter, r *http.Request, tok *store.Token)

// route is one entry of the route table, which both the mux and the
// OpenAPI sync test read.
type route struct {
	method, path string
	// need is who may call it (see access).
	need   access
	status int // success status
	in     any // request body type (nil: none)
	out    any // JSON response type (nil: not JSON)
	handle handlerFunc
}

func routes() []route {
	return slices.Concat([]route{
		{"GET", "/api/openapi.json", anyone, 200, nil, nil, (*server).openapi},
		{"GET", "/api/whoami", self, 200, nil, WhoAmI{}, (*server).whoami},
		{"POST", "/api/repos", settings, 201, RepoInput{}, RepoCreated{}, (*server).addRepo},
		{"GET", "/api/repos", viewer, 200, nil, RepoList{}, (*server).listRepos},
		{"GET", "/api/repos/{id}", viewer, 200, nil, Repo{}, (*server).getRepo},
		{"PATCH", "/api/repos/{id}", settings, 200, RepoUpdate{}, Repo{}, (*server).updateRepo},
		{"POST", "/api/repos/{id}/hook-secret", settings, 200, nil, RepoCreated{}, (*server).rotateHookSecret},
		// Protected branches come with environments (issue 11, part 4);
		// until then a developer may trigger any ref.
		{"POST", "/api/repos/{id}/dispatch", developer, 202, DispatchInput{}, Dispatched{}, (*server).dispatch},
		{"GET", "/api/events/{id}", viewer, 200, nil, Event{}, (*server).getEvent},
		{"GET", "/api/runs", viewer, 200, nil, RunList{}, (*server).listRuns},
		{"GET", "/api/runs/{id}", viewer, 200, nil, RunDetail{}, (*server).getRun},
		{"POST", "/api/runs/{id}/cancel", developer, 200, nil, Run{}, (*server).cancel},
		{"POST", "/api/runs/{id}/rerun", developer, 201, RerunInput{}, Run{}, (*server).rerun},
		{"GET", "/api/runs/{id}/jobs/{job}/logs", viewer, 200, nil, nil, (*server).logs},
		{"GET", "/api/runs/{id}/artifacts", viewer, 200, nil, ArtifactList{}, (*server).listArtifacts},
		{"GET", "/api/runs/{id}/artifacts/{name}", viewer, 200, nil, nil, (*server).downloadArtifact},
		{"POST", "/api/agents", orgAdmin, 201, AgentInput{}, AgentCreated{}, (*server).createAgent},
		{"GET", "/api/agents", viewer, 200, nil, AgentList{}, (*server).listAgents},
		{"POST", "/api/agents/{id}/drain", orgAdmin, 200, nil, Agent{}, (*server).drainAgent},
		{"POST", "/api/agents/{id}/resume", orgAdmin, 200, nil, Agent{}, (*server).resumeAgent},
		{"DELETE", "/api/agents/{id}", orgAdmin, 204, nil, nil, (*server).revokeAgent},
		{"POST", "/api/agent/register", agent, 200, AgentRegister{}, AgentRegistered{}, (*server).agentRegister},
		{"POST", "/api/agent/lease", agent, 200, nil, AgentAssignment{}, (*server).agentLease},
		{"GET", "/api/agent/jobs/{id}/assignment", agent, 200, nil, AgentAssignment{}, (*server).agentAssignment},
		{"POST", "/api/agent/jobs/{id}/heartbeat", agent, 200, nil, AgentHeartbeat{}, (*server).agentHeartbeat},
		{"POST", "/api/agent/jobs/{id}/logs", agent, 204, nil, nil, (*server).agentLogs},
		{"GET", "/api/agent/jobs/{id}/source", agent, 200, nil, nil, (*server).agentSource},
		{"POST", "/api/agent/jobs/{id}/complete", agent, 204, AgentCompletion{}, nil, (*server).agentComplete},
		{"POST", "/api/agent/jobs/{id}/release", agent, 204, AgentRelease{}, nil, (*server).agentRelease},
		{"PUT", "/api/agent/jobs/{id}/artifacts/{name}", agent, 201, nil, Artifact{}, (*server).agentPutArtifact},
		{"GET", "/api/agent/jobs/{id}/artifacts", agent, 200, nil, ArtifactList{}, (*server).agentListArtifacts},
		{"GET", "/api/agent/jobs/{id}/artifacts/{name}", agent, 200, nil, nil, (*server).agentGetArtifact},
	}, accountRoutes(), secretRoutes(), quotaRoutes(), retentionRoutes(), environmentRoutes())
}

type server struct {
	Deps
	// hashSlots bounds concurrent password hashing; dummy is a hash
	// verified when the user has none (see login).
	hashSlots chan struct{}
	dummyOnce sync.Once
	dummy     string
	// failedLogins count failed logins per (address, user) and per address.
	failedLogins loginLimiters
}

// New returns the API handler. Requests under /api/ that match no route
// get a JSON 404 (or 405 with Allow).
func New(d Deps) http.Handler {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Poll <= 0 {
		d.Poll = time.Second
	}
	if d.Heartbeat <= 0 {
		d.Heartbeat = 15 * time.Second
	}
	d.BaseURL = strings.TrimRight(d.BaseURL, "/")
	if d.PasswordParams == (password.Params{}) {
		d.PasswordParams = password.Default
	}
	a := &server{Deps: d, hashSlots: make(chan struct{}, 2), failedLogins: newLoginLimiters(d.Logins, d.Failures)}
	mux := http.NewServeMux()
	methods := map[string][]string{}
	for _, rt := range routes() {
		mux.HandleFunc(rt.method+" "+rt.path, a.wrap(rt))
		methods[rt.path] = append(methods[rt.path], rt.method)
	}
	for path, ms := range methods {
		allow := strings.Join(ms, ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeJSON(w, http.StatusMethodNotAllowed, ErrorBody{Error: ErrorDetail{
				Kind: "invalid", Message: r.Method + " not allowed on " + path + " (allowed: " + allow + ")"}})
		})
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeErrorMsg(w, errs.NotFound, "no such API endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

func (a *server) wrap(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r, tok, ok := a.authorize(w, r, rt)
		if !ok {
			return
		}
		// PUT bodies that are not JSON are uploads (artifacts), which their
		// handler limits.
		if r.Body != nil && (rt.method != "PUT" || rt.in != nil) {
			r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		}
		rt.handle(a, w, r, tok)
	}
}

// bearerHash is the SHA-256 of the request's bearer token.
func bearerHash(r *http.Request) ([]byte, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, errs.E("", errs.Unauthorized, "missing Authorization: Bearer <token> header")
	}
	scheme, secret, ok := strings.Cut(h, " ")
	secret = strings.TrimSpace(secret)
	// "token X" is what GitHub's and Gitea's users are used to type.
	if !ok || !strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "token") || secret == "" {
		return nil, errs.E("", errs.Unauthorized, "Authorization header is not \"Bearer <token>\" (or \"token <token>\")")
	}
	sum := sha256.Sum256([]byte(secret))
	return sum[:], nil
}

func (a *server) authenticate(r *http.Request) (*store.Token, error) {
	hash, err := bearerHash(r)
	if err != nil {
		return nil, err
	}
	tok, err := a.Store.TokenByHash(r.Context(), hash)
	if errs.Is(err, errs.NotFound) {
		if a.Agents != nil {
			if _, aerr := a.Agents.AgentByHash(r.Context(), hash); aerr == nil {
				return nil, errs.E("", errs.Forbidden, "an agent token only reaches /api/agent/")
			}
		}
		return nil, errs.E("", errs.Unauthorized, "unknown or revoked token")
	}
	if err != nil {
		return nil, err
	}
	return tok, nil
}

// fail answers err. A NotFound about what (e.g. "run 12") is answered as
// "run 12: not found" so that the store's wording never reaches users;
// errors without a kind are logged and answered with a generic message.
func (a *server) fail(w http.ResponseWriter, what string, err error) {
	k := errs.KindOf(err)
	switch {
	case k == errs.NotFound && what != "":
		writeErrorMsg(w, k, what+": not found")
	case k == errs.Other && !isTooLarge(err):
		a.Log.Error("api", "what", what, "err", err)
		WriteError(w, err)
	case ServerSide(err) && k != errs.Canceled: // canceled: the caller went away
		a.Log.Warn("api", "what", what, "err", err)
		WriteError(w, err)
	default:
		WriteError(w, err)
	}
}

func isTooLarge(err error) bool {
	var e *http.MaxBytesError
	return errors.As(err, &e)
}

// decode reads a JSON body into v: unknown fields, trailing data and
// bodies over MaxBody are refused. An empty body is allowed when
// emptyOK, leaving v as is.
func decode(r *http.Request, v any, emptyOK bool) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	switch {
	case err == io.EOF && emptyOK:
		return nil
	case err == io.EOF:
		return errs.E("", errs.Invalid, "request body: a JSON object is required")
	case isTooLarge(err):
		return errs.E("", errs.TooLarge, "request body: larger than %d bytes", MaxBody)
	case err != nil:
		return errs.E("", errs.Invalid, "request body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if isTooLarge(err) {
			return errs.E("", errs.TooLarge, "request body: larger than %d bytes", MaxBody)
		}
		return errs.E("", errs.Invalid, "request body: unexpected data after the JSON object")
	}
	return nil
}

// pathID parses the {name} path value as a positive id.
func pathID(r *http.Request, name string) (int64, error) {
	return parseID(name, r.PathValue(name))
}

func parseID(name, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, errs.E("", errs.Invalid, "%s %q is not a positive integer", name, s)
	}
	return id, nil
}
