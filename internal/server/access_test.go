package server

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// routeAccess is who may call each route of /api/openapi.json, written
// here apart from the route table so that a change to either shows:
// "public", "agent", or WHO:SCOPE where WHO is self (any user's token),
// server (a server admin) or the least organisation role. Every route must
// have a row: a new route without one fails TestEveryRouteIsChecked.
var routeAccess = map[string]string{
	"GET /api/openapi.json":                      "public",
	"POST /api/login":                            "public",
	"GET /api/whoami":                            "self:read",
	"PUT /api/password":                          "self:admin",
	"GET /api/tokens":                            "self:read",
	"POST /api/tokens":                           "self:write",
	"DELETE /api/tokens/{id}":                    "self:write",
	"POST /api/tokens/{id}/rotate":               "self:write",
	"GET /api/orgs":                              "server:read",
	"POST /api/orgs":                             "server:admin",
	"GET /api/users":                             "viewer:read",
	"POST /api/users":                            "admin:admin",
	"PUT /api/users/{name}/role":                 "admin:admin",
	"DELETE /api/users/{name}":                   "admin:admin",
	"GET /api/audit":                             "admin:read",
	"GET /api/orgs/{org}/quota":                  "viewer:read",
	"PUT /api/orgs/{org}/quota":                  "server:admin",
	"GET /api/usage":                             "viewer:read",
	"POST /api/repos":                            "maintainer:admin",
	"GET /api/repos":                             "viewer:read",
	"GET /api/repos/{id}":                        "viewer:read",
	"PATCH /api/repos/{id}":                      "maintainer:admin",
	"POST /api/repos/{id}/hook-secret":           "maintainer:admin",
	"GET /api/retention":                         "viewer:read",
	"PUT /api/retention":                         "admin:admin",
	"GET /api/repos/{id}/retention":              "viewer:read",
	"PUT /api/repos/{id}/retention":              "admin:admin",
	"POST /api/repos/{id}/dispatch":              "developer:write",
	"GET /api/events/{id}":                       "viewer:read",
	"GET /api/runs":                              "viewer:read",
	"GET /api/runs/{id}":                         "viewer:read",
	"POST /api/runs/{id}/cancel":                 "developer:write",
	"POST /api/runs/{id}/rerun":                  "developer:write",
	"GET /api/runs/{id}/jobs/{job}/logs":         "viewer:read",
	"GET /api/runs/{id}/artifacts":               "viewer:read",
	"GET /api/runs/{id}/artifacts/{name}":        "viewer:read",
	"POST /api/agents":                           "admin:admin",
	"GET /api/agents":                            "viewer:read",
	"POST /api/agents/{id}/drain":                "admin:admin",
	"POST /api/agents/{id}/resume":               "admin:admin",
	"DELETE /api/agents/{id}":                    "admin:admin",
	"POST /api/agent/register":                   "agent",
	"POST /api/agent/lease":                      "agent",
	"GET /api/agent/jobs/{id}/assignment":        "agent",
	"POST /api/agent/jobs/{id}/heartbeat":        "agent",
	"POST /api/agent/jobs/{id}/logs":             "agent",
	"GET /api/agent/jobs/{id}/source":            "agent",
	"POST /api/agent/jobs/{id}/complete":         "agent",
	"POST /api/agent/jobs/{id}/release":          "agent",
	"PUT /api/agent/jobs/{id}/artifacts/{name}":  "agent",
	"GET /api/agent/jobs/{id}/artifacts":         "agent",
	"GET /api/agent/jobs/{id}/artifacts/{name}":  "agent",
	"GET /api/secrets":                           "developer:read",
	"PUT /api/secrets/{name}":                    "maintainer:admin",
	"DELETE /api/secrets/{name}":                 "maintainer:admin",
	"GET /api/vars":                              "developer:read",
	"PUT /api/vars/{name}":                       "maintainer:admin",
	"DELETE /api/vars/{name}":                    "maintainer:admin",
	"GET /api/repos/{id}/environments":           "viewer:read",
	"GET /api/repos/{id}/environments/{name}":    "viewer:read",
	"PUT /api/repos/{id}/environments/{name}":    "maintainer:admin",
	"DELETE /api/repos/{id}/environments/{name}": "maintainer:admin",
	"POST /api/runs/{id}/jobs/{job}/approve":     "viewer:write",
	"POST /api/runs/{id}/jobs/{job}/reject":      "viewer:write",
	"POST /api/runs/{id}/approve":                "maintainer:write",
	"POST /api/runs/{id}/reject":                 "maintainer:write",
}

// Markers of organisation 1's objects: no refusal, and nothing another
// organisation sees, may contain them.
var leakMarkers = []string{"octo/repo", "s3cret", "LeakyWorkflow", "LOG-LEAK-MARKER", "leaky-artifact", "leaky-agent"}

// accessCaller is one identity of the matrix.
type accessCaller struct {
	name  string
	token string
	kind  string // anonymous, agent, user
	org   int    // 1 or 2
	role  store.OrgRole
	scope store.Role
	// server: a server admin; expired: the token no longer works.
	server, expired bool
	user, orgID     int64
}

// accessFixture is organisation 1's objects the routes name.
type accessFixture struct {
	h               *harness
	run, job, event int64
	agent           int64
	otherUser       *accessCaller // of organisation 1
	spares          int
}

// allowed is routeAccess's rule for a user's token.
func (c *accessCaller) allowed(rule string) bool {
	who, scope, _ := strings.Cut(rule, ":")
	if store.ScopeRank(c.scope) < store.ScopeRank(store.Role(scope)) {
		return false
	}
	role := c.role
	if c.server {
		role = store.OrgAdmin
	}
	switch who {
	case "self":
		return true
	case "server":
		return c.server
	}
	return role.Rank() >= store.OrgRole(who).Rank()
}

func TestEveryRouteIsChecked(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: Config{Workers: -1, AgentPoll: 200 * time.Millisecond},
		files: map[string]string{".github/workflows/ci.yml": "name: LeakyWorkflow\non: workflow_dispatch\njobs:\n  a:\n    runs-on: self-hosted\n    steps:\n      - run: echo hi\n"}})
	fx := newAccessFixture(t, h)
	callers := fx.callers(t)

	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	code, b, _ := h.agentCall("GET", "/api/openapi.json", "", nil)
	if code != 200 || json.Unmarshal(b, &doc) != nil {
		t.Fatalf("GET /api/openapi.json: %d", code)
	}
	var routes []string
	for path, ops := range doc.Paths {
		for m := range ops {
			routes = append(routes, strings.ToUpper(m)+" "+path)
		}
	}
	slices.Sort(routes)
	for _, rt := range routes {
		if _, ok := routeAccess[rt]; !ok {
			t.Errorf("%s has no row in routeAccess: say who may call it", rt)
		}
	}
	for rt := range routeAccess {
		if !slices.Contains(routes, rt) {
			t.Errorf("routeAccess names %s, which /api/openapi.json does not document", rt)
		}
	}
	for _, rt := range routes {
		rule, ok := routeAccess[rt]
		if !ok {
			continue
		}
		for _, c := range callers {
			fx.check(t, rt, rule, c)
		}
	}
}

func newAccessFixture(t *testing.T, h *harness) *accessFixture {
	ctx := context.Background()
	fx := &accessFixture{h: h}
	runs, err := h.st.CreateRuns(ctx, []store.NewRun{{Run: &store.Run{OrgID: 1, RepoID: h.repo.ID,
		Workflow: ".github/workflows/ci.yml", Name: "LeakyWorkflow", Event: "push", Ref: "refs/heads/main", SHA: "abc", Trigger: "api"},
		Jobs: []*store.Job{{Key: "build", Name: "Build", Labels: []string{"nowhere"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	fx.run = runs[0].ID
	jobs, _ := h.st.Jobs(ctx, 1, fx.run)
	fx.job = jobs[0].ID
	if _, err := h.st.AppendLog(ctx, fx.job, []byte("LOG-LEAK-MARKER\n")); err != nil {
		t.Fatal(err)
	}
	if err := h.st.PutArtifact(ctx, &store.Artifact{OrgID: 1, RunID: fx.run, Name: "leaky-artifact", Job: "Build"}, false,
		strings.NewReader("LOG-LEAK-MARKER")); err != nil {
		t.Fatal(err)
	}
	acc, err := h.st.Accept(ctx, []*store.Event{{OrgID: 1, RepoID: h.repo.ID, Source: "api", Name: "ping",
		Body: []byte(`{"zen":"LOG-LEAK-MARKER"}`), Received: time.Now(), State: store.EventPending}})
	if err != nil {
		t.Fatal(err)
	}
	fx.event = acc[0].ID
	fx.agent, _ = h.newAgent("leaky-agent")
	return fx
}

// user makes a user with role in org and a token of scope, and a spare
// read token; org 0 makes no membership.
func (fx *accessFixture) user(t *testing.T, name string, orgID int64, role store.OrgRole, scope store.Role) *accessCaller {
	ctx := context.Background()
	u := &store.User{Name: name}
	if err := fx.h.st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if role != "" {
		if err := fx.h.st.SetMember(ctx, orgID, u.ID, role); err != nil {
			t.Fatal(err)
		}
	}
	c := &accessCaller{name: name, kind: "user", org: int(orgID), role: role, scope: scope, token: "cvy_" + name, user: u.ID, orgID: orgID}
	fx.token(t, orgID, u.ID, c.token, scope, time.Time{})
	return c
}

func (fx *accessFixture) token(t *testing.T, orgID, userID int64, secret string, scope store.Role, expires time.Time) int64 {
	sum := sha256.Sum256([]byte(secret))
	tok := &store.Token{OrgID: orgID, UserID: userID, Name: secret, Role: scope, Hash: sum[:], Expires: expires}
	if err := fx.h.st.CreateToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	return tok.ID
}

func (fx *accessFixture) callers(t *testing.T) []*accessCaller {
	ctx := context.Background()
	other, err := fx.h.st.CreateOrg(ctx, "other", 0)
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := fx.h.st.UserByName(ctx, "admin")
	cs := []*accessCaller{
		{name: "anonymous", kind: "anonymous", org: 1},
		{name: "server-admin", kind: "user", org: 1, token: fx.h.token, role: store.OrgAdmin, scope: store.RoleAdmin, server: true,
			user: admin.ID, orgID: 1},
	}
	for _, r := range []store.OrgRole{store.OrgAdmin, store.OrgMaintainer, store.OrgDeveloper, store.OrgViewer} {
		cs = append(cs, fx.user(t, "u1-"+string(r), 1, r, store.RoleAdmin))
	}
	cs = append(cs, fx.user(t, "u1-admin-write", 1, store.OrgAdmin, store.RoleWrite),
		fx.user(t, "u1-admin-read", 1, store.OrgAdmin, store.RoleRead))
	ex := fx.user(t, "u1-ex-member", 1, store.OrgViewer, store.RoleAdmin)
	u, _ := fx.h.st.UserByName(ctx, ex.name)
	if err := fx.h.st.SetMember(ctx, 1, u.ID, ""); err != nil {
		t.Fatal(err)
	}
	ex.role = ""
	exp := fx.user(t, "u1-expired", 1, store.OrgAdmin, store.RoleAdmin)
	u, _ = fx.h.st.UserByName(ctx, exp.name)
	exp.token, exp.expired = "cvy_u1_expired_token", true
	fx.token(t, 1, u.ID, exp.token, store.RoleAdmin, time.Now().Add(-time.Second))
	cs = append(cs, ex, exp)
	fx.otherUser = cs[2]
	var otherAdmin string
	for _, r := range []store.OrgRole{store.OrgAdmin, store.OrgMaintainer, store.OrgDeveloper, store.OrgViewer} {
		c := fx.user(t, "u2-"+string(r), other.ID, r, store.RoleAdmin)
		c.org = 2
		cs = append(cs, c)
		if r == store.OrgAdmin {
			otherAdmin = c.token
		}
	}
	_, agentTok := fx.h.newAgent("agent-caller")
	cs = append(cs, &accessCaller{name: "agent", kind: "agent", org: 1, token: agentTok})
	// Another organisation's agent.
	var created api.AgentCreated
	code, b, _ := fx.h.agentCall("POST", "/api/agents", otherAdmin, api.AgentInput{Name: "agent-2"})
	if code != 201 || json.Unmarshal(b, &created) != nil {
		t.Fatalf("agent of org 2: %d %s", code, b)
	}
	cs = append(cs, &accessCaller{name: "agent-2", kind: "agent", org: 2, token: created.Token})
	return append(cs, fx.jobCaller(t))
}

// jobCaller is the GITHUB_TOKEN of a running job of another run of
// organisation 1 (its own run's routes are TestJobToken's).
func (fx *accessFixture) jobCaller(t *testing.T) *accessCaller {
	ctx := context.Background()
	runs, err := fx.h.st.CreateRuns(ctx, []store.NewRun{{Run: &store.Run{OrgID: 1, RepoID: fx.h.repo.ID,
		Workflow: ".github/workflows/ci.yml", Name: "other", Event: "push", Ref: "refs/heads/main", SHA: "abc", Trigger: "api"},
		Jobs: []*store.Job{{Key: "j", Name: "J", Labels: []string{"job-token-only"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := fx.h.st.Lease(ctx, store.LeaseRequest{Owner: "test", Labels: []string{"job-token-only"}, TTL: time.Hour})
	if err != nil || l == nil || l.Run.ID != runs[0].ID {
		t.Fatalf("leasing the job-token job: %+v %v", l, err)
	}
	secret := api.JobTokenPrefix + "access-matrix-job-token"
	sum := sha256.Sum256([]byte(secret))
	if err := fx.h.st.CreateJobToken(ctx, &store.JobToken{Hash: sum[:], OrgID: 1, RunID: l.Run.ID, JobID: l.Job.ID,
		Lease: l.Job.LeaseToken, ReadRun: true, Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return &accessCaller{name: "job-token", kind: "job", org: 1, token: secret}
}

// path fills rt's parameters with organisation 1's objects, and a new
// read token of the caller for /api/tokens/{id} (organisation 2's callers
// get one of a user of organisation 1).
func (fx *accessFixture) path(t *testing.T, rt string, c *accessCaller) string {
	p := strings.SplitN(rt, " ", 2)[1]
	id := map[string]int64{"/api/repos/": fx.h.repo.ID, "/api/events/": fx.event, "/api/runs/": fx.run,
		"/api/agents/": fx.agent, "/api/agent/jobs/": fx.job}
	if strings.HasPrefix(p, "/api/tokens/{id}") {
		owner := c
		if c.org == 2 || c.user == 0 {
			owner = fx.otherUser
		}
		fx.spares++
		id["/api/tokens/"] = fx.token(t, owner.orgID, owner.user, fmt.Sprintf("cvy_spare_%d", fx.spares), store.RoleRead, time.Time{})
	}
	for prefix, v := range id {
		if strings.HasPrefix(p, prefix+"{id}") {
			p = strings.Replace(p, "{id}", itoa(v), 1)
		}
	}
	if rt == "DELETE /api/agents/{id}" { // a fresh victim each time
		v, _ := fx.h.newAgent(fmt.Sprintf("victim-%d", time.Now().UnixNano()))
		p = "/api/agents/" + itoa(v)
	}
	if strings.Contains(p, "/api/users/{name}") {
		fx.ensureTarget(t)
	}
	if strings.HasPrefix(p, "/api/secrets/") || strings.HasPrefix(p, "/api/vars/") {
		// A repository-level TARGET that each DELETE removes: made again
		// for every call.
		kind := map[bool]string{true: store.KindSecret, false: store.KindVar}[strings.HasPrefix(p, "/api/secrets/")]
		if err := fx.h.st.PutSecret(context.Background(), &store.Secret{Kind: kind, Scope: store.Scope{OrgID: 1, RepoID: fx.h.repo.ID},
			Name: "TARGET", Value: "s3cret-LOG-LEAK-MARKER"}); err != nil {
			t.Fatal(err)
		}
		p += "?repo=" + itoa(fx.h.repo.ID)
	}
	if strings.Contains(p, "/environments/{name}") {
		// An unprotected TARGET environment that each DELETE removes.
		if _, err := fx.h.st.EnsureEnvironment(context.Background(), 1, fx.h.repo.ID, "target", ""); err != nil {
			t.Fatal(err)
		}
	}
	r := strings.NewReplacer("{job}", itoa(fx.job), "{name}", "target", "{org}", "default")
	if strings.Contains(p, "artifacts/{name}") {
		r = strings.NewReplacer("{name}", "leaky-artifact")
	}
	return r.Replace(p)
}

// ensureTarget makes "target" a viewer of organisation 1 (the member
// routes change and remove it).
func (fx *accessFixture) ensureTarget(t *testing.T) {
	ctx := context.Background()
	u, err := fx.h.st.UserByName(ctx, "target")
	if err != nil {
		u = &store.User{Name: "target"}
		if err := fx.h.st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := fx.h.st.SetMember(ctx, 1, u.ID, store.OrgViewer); err != nil {
		t.Fatal(err)
	}
}

// check calls rt as c and compares the answer with rule.
func (fx *accessFixture) check(t *testing.T, rt, rule string, c *accessCaller) {
	t.Helper()
	method := strings.SplitN(rt, " ", 2)[0]
	path := fx.path(t, rt, c)
	var body any
	if method == "POST" || method == "PUT" {
		body = []byte("{}")
	}
	if rt == "POST /api/login" {
		body = api.LoginInput{User: "u1-admin", Password: "not-it"}
	}
	code, b, _ := fx.h.agentCall(method, path, c.token, body, api.LeaseHeader, "1")
	what := fmt.Sprintf("%s as %s (%s): %d %s", rt, c.name, rule, code, b)
	refused := code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusNotFound
	for _, m := range leakMarkers {
		// A marker in the path is echoed ("artifact x: not found"), not leaked.
		if strings.Contains(string(b), m) && !strings.Contains(path, m) && (refused || c.org == 2) {
			t.Errorf("%s: leaks %q", what, m)
		}
	}
	if c.org == 2 && strings.Contains(string(b), "u1-") {
		t.Errorf("%s: leaks organisation 1's users", what)
	}
	var want []int // nil: anything but 401, 403 (and 404 for own objects)
	switch {
	case rule == "public":
		return
	case c.kind == "anonymous":
		want = []int{401}
	case c.kind == "job" && rule == "agent":
		want = []int{401, 403}
	case c.kind == "job" && strings.HasPrefix(rt, "GET /api/runs/{id}"):
		want = []int{404} // another run than the job's
	case c.kind == "job":
		want = []int{403}
	case rule == "agent" && c.kind != "agent", rule != "agent" && c.kind == "agent":
		want = []int{403} // an expired user token too: it is not an agent's
	case c.expired:
		want = []int{401}
	case rule == "agent" && c.org == 2 && strings.Contains(rt, "{id}"):
		// Another organisation's job, never leased to this agent: refused
		// (a body checked before the lease answers 400).
		if code < 400 {
			t.Errorf("%s: another organisation's agent reaches the job", what)
		}
		return
	case rule == "agent":
		if code == 401 || code == 403 {
			t.Errorf("%s: the agent is refused", what)
		}
		return
	case !c.allowed(rule):
		want = []int{403}
	case c.org == 2 && strings.Count(rt, "{") > 0:
		want = []int{404}
	}
	if want != nil {
		if !slices.Contains(want, code) {
			t.Errorf("%s: want %v", what, want)
		}
		return
	}
	if refused {
		t.Errorf("%s: an allowed caller is refused", what)
	}
}
