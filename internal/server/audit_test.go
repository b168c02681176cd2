package server

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/store"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// notAudited are the mutating routes of /api/openapi.json that write no
// audit entry, and why. Every other mutating route must have a row in
// auditCases: a new route in neither fails TestEveryChangeIsAudited.
var notAudited = map[string]string{
	"POST /api/repos/{id}/dispatch":             "starts a run: the event keeps who asked (sender) and the run its trigger",
	"POST /api/runs/{id}/rerun":                 "starts a run: the new run keeps its trigger (rerun) and the run it repeats",
	"POST /api/agent/register":                  "agent protocol: the agent reports its labels, capacity and version",
	"POST /api/agent/lease":                     "agent protocol: an agent takes a queued job",
	"POST /api/agent/jobs/{id}/heartbeat":       "agent protocol: a leased job's heartbeat",
	"POST /api/agent/jobs/{id}/logs":            "agent protocol: a leased job's log upload",
	"POST /api/agent/jobs/{id}/complete":        "agent protocol: a leased job's result",
	"POST /api/agent/jobs/{id}/release":         "agent protocol: an agent gives a job back",
	"PUT /api/agent/jobs/{id}/artifacts/{name}": "agent protocol: a leased job's artifact upload",
}

// inTxOnly is a store on which the API may not append audit entries
// apart from their change: with the SQL store every entry must be taken
// by its change's transaction (store.WithAudit), never written after it.
type inTxOnly struct {
	store.Store
	t *testing.T
}

func (s inTxOnly) AppendAudit(ctx context.Context, e *store.AuditEntry) error {
	s.t.Errorf("audit entry %s %q appended after its change, not in the change's transaction", e.Action, e.Target)
	return s.Store.AppendAudit(ctx, e)
}

// auditReq is one API call: its path, JSON body (nil: none), the token
// (empty: the admin's) and the status it must answer.
type auditReq struct {
	path  string
	body  any
	token string
	want  int
}

// auditCase is a mutating route: a call that succeeds must add exactly
// the entries actions names (the first naming target), and a refused
// call made after it (bad, optional) none.
type auditCase struct {
	route   string
	ok      func() auditReq
	actions []string
	target  string
	bad     func() auditReq
	// after reads the successful call's answer.
	after func(body []byte)
}

// auditFixture is organisation 1's objects the calls change.
type auditFixture struct {
	h      *harness
	repoID int64
	// runs can be cancelled; gated* await a reviewer (reject* too); fork*
	// are fork runs awaiting approval.
	runs                 []int64
	gatedRun, gatedJob   int64
	rejectRun, rejectJob int64
	forkRun, forkReject  int64
	agent                int64
	tokens               []int64 // the admin's spare tokens
	session              string  // the token of POST /api/login
}

func TestEveryChangeIsAudited(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testEveryChangeIsAudited(t, "") })
	t.Run("postgres", func(t *testing.T) { testEveryChangeIsAudited(t, testenv.PostgresSchema(t, "audit")) })
}

func testEveryChangeIsAudited(t *testing.T, dsn string) {
	h := newHarness(t, harnessOpts{dsn: dsn, cfg: Config{Workers: -1}, wrap: func(st store.Store) store.Store { return inTxOnly{st, t} },
		files: map[string]string{".github/workflows/ci.yml": "on: workflow_dispatch\njobs:\n  a:\n    runs-on: nowhere\n    steps:\n      - run: echo hi\n"}})
	fx := newAuditFixture(t, h)
	cases := fx.cases()

	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	code, b, _ := h.agentCall("GET", "/api/openapi.json", "", nil)
	if code != 200 || json.Unmarshal(b, &doc) != nil {
		t.Fatalf("GET /api/openapi.json: %d", code)
	}
	var mutating []string
	for path, ops := range doc.Paths {
		for m := range ops {
			if m = strings.ToUpper(m); m != "GET" {
				mutating = append(mutating, m+" "+path)
			}
		}
	}
	slices.Sort(mutating)
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.route] = true
	}
	for _, rt := range mutating {
		if _, skip := notAudited[rt]; !covered[rt] && !skip {
			t.Errorf("%s changes something but has no row in auditCases (or notAudited, with the reason)", rt)
		}
	}
	for rt := range covered {
		if !slices.Contains(mutating, rt) {
			t.Errorf("auditCases names %s, which /api/openapi.json does not document as a change", rt)
		}
	}
	for rt := range notAudited {
		if !slices.Contains(mutating, rt) {
			t.Errorf("notAudited names %s, which /api/openapi.json does not document as a change", rt)
		}
	}

	for _, c := range cases {
		method := strings.SplitN(c.route, " ", 2)[0]
		last := fx.lastAudit(t)
		body := fx.call(t, c.route, method, c.ok())
		if c.after != nil {
			c.after(body)
		}
		got := fx.auditSince(t, last)
		var actions []string
		for _, e := range got {
			actions = append(actions, e.Action)
		}
		if !slices.Equal(actions, c.actions) {
			t.Errorf("%s: audit entries %v, want %v", c.route, actions, c.actions)
		} else if e := got[0]; !strings.Contains(e.Target, c.target) || !strings.HasPrefix(e.Actor, "admin ") && !strings.HasPrefix(e.Actor, "auditor ") || e.Time.IsZero() {
			t.Errorf("%s: entry %+v: want who (the caller), when, and a target with %q", c.route, e, c.target)
		}
		if c.bad != nil {
			last = fx.lastAudit(t)
			fx.call(t, c.route+" (refused)", method, c.bad())
			if got := fx.auditSince(t, last); len(got) != 0 {
				t.Errorf("%s refused: wrote audit entries %v", c.route, got)
			}
		}
	}
}

func newAuditFixture(t *testing.T, h *harness) *auditFixture {
	ctx := context.Background()
	fx := &auditFixture{h: h, repoID: h.repo.ID}
	admin, err := h.st.UserByName(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	newRun := func(status string, jobs ...*store.Job) int64 {
		runs, err := h.st.CreateRuns(ctx, []store.NewRun{{Run: &store.Run{OrgID: 1, RepoID: h.repo.ID, Status: status,
			Workflow: ".github/workflows/ci.yml", Name: "ci", Event: "push", Ref: "refs/heads/main", SHA: "abc", Trigger: "api"},
			Jobs: jobs}})
		if err != nil {
			t.Fatal(err)
		}
		return runs[0].ID
	}
	nowhere := func(key string) *store.Job { return &store.Job{Key: key, Name: key, Labels: []string{"nowhere"}} }
	for range 2 {
		fx.runs = append(fx.runs, newRun("", nowhere("build")))
	}
	gated := func() *store.Job {
		j := nowhere("deploy")
		j.Deploy = &store.Deployment{Environment: "production", Reviewers: []store.Reviewer{{User: "admin"}}, Actor: "someone"}
		return j
	}
	fx.gatedRun = newRun("", gated())
	fx.rejectRun = newRun("", gated())
	fx.gatedJob = fx.onlyJob(t, fx.gatedRun)
	fx.rejectJob = fx.onlyJob(t, fx.rejectRun)
	fx.forkRun = newRun(store.StatusAwaitingApproval, nowhere("build"))
	fx.forkReject = newRun(store.StatusAwaitingApproval, nowhere("build"))
	for i := range 2 {
		secret := fmt.Sprintf("cvy_audit_spare_%d", i)
		sum := sha256.Sum256([]byte(secret))
		tok := &store.Token{OrgID: 1, UserID: admin.ID, Name: secret, Role: store.RoleRead, Hash: sum[:]}
		if err := h.st.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		fx.tokens = append(fx.tokens, tok.ID)
	}
	fx.agent, _ = h.newAgent("audited-agent")
	if _, err := h.st.EnsureEnvironment(ctx, 1, h.repo.ID, "doomed", ""); err != nil {
		t.Fatal(err)
	}
	return fx
}

func (fx *auditFixture) onlyJob(t testing.TB, runID int64) int64 {
	js, err := fx.h.st.Jobs(context.Background(), 1, runID)
	if err != nil || len(js) != 1 {
		t.Fatalf("jobs of run %d: %d %v", runID, len(js), err)
	}
	return js[0].ID
}

func (fx *auditFixture) call(t *testing.T, what, method string, r auditReq) []byte {
	t.Helper()
	tok := r.token
	if tok == "" {
		tok = fx.h.token
	}
	code, b, _ := fx.h.agentCall(method, r.path, tok, r.body)
	if code != r.want {
		t.Fatalf("%s %s: %d %s (want %d)", what, r.path, code, b, r.want)
	}
	return b
}

// lastAudit is the newest audit entry's id (0: none).
func (fx *auditFixture) lastAudit(t *testing.T) int64 {
	es := fx.allAudit(t)
	if len(es) == 0 {
		return 0
	}
	return es[0].ID
}

// auditSince is the entries after id, oldest first.
func (fx *auditFixture) auditSince(t *testing.T, id int64) []*store.AuditEntry {
	var out []*store.AuditEntry
	for _, e := range fx.allAudit(t) {
		if e.ID > id {
			out = append(out, e)
		}
	}
	slices.Reverse(out)
	return out
}

// allAudit is organisation 1's and the server-wide entries, newest first.
func (fx *auditFixture) allAudit(t *testing.T) []*store.AuditEntry {
	es, err := fx.h.st.ListAudit(context.Background(), 1, store.AuditFilter{Limit: 1000, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func req(path string, body any, want int) func() auditReq {
	return func() auditReq { return auditReq{path: path, body: body, want: want} }
}

// cases are the audited routes, in the order they run (a later call may
// use what an earlier one made).
func (fx *auditFixture) cases() []auditCase {
	repo := fmt.Sprintf("/api/repos/%d", fx.repoID)
	agent := fmt.Sprintf("/api/agents/%d", fx.agent)
	policy := "no-private"
	return []auditCase{
		{route: "POST /api/repos", ok: req("/api/repos", api.RepoInput{URL: "https://github.com/acme/audited", Forge: "github"}, 201),
			actions: []string{"repo.create"}, target: "repo acme/audited",
			bad: req("/api/repos", api.RepoInput{URL: "https://github.com/acme/audited", Forge: "github"}, 409)},
		{route: "PATCH /api/repos/{id}", ok: req(repo, api.RepoUpdate{NetworkPolicy: &policy}, 200),
			actions: []string{"repo.settings"}, target: "repo octo/repo",
			bad: req("/api/repos/99999", api.RepoUpdate{NetworkPolicy: &policy}, 404)},
		{route: "POST /api/repos/{id}/hook-secret", ok: req(repo+"/hook-secret", nil, 200),
			actions: []string{"repo.hook_secret"}, target: "repo octo/repo", bad: req("/api/repos/99999/hook-secret", nil, 404)},
		{route: "PUT /api/retention", ok: req("/api/retention", map[string]int{"runs_days": 30}, 200),
			actions: []string{"retention.set"}, target: "organisation",
			bad: req("/api/retention", map[string]int{"runs_days": -1}, 400)},
		{route: "PUT /api/repos/{id}/retention", ok: req(repo+"/retention", map[string]int{"logs_days": 3}, 200),
			actions: []string{"retention.set"}, target: fmt.Sprintf("repo %d", fx.repoID),
			bad: req("/api/repos/99999/retention", map[string]int{"logs_days": 3}, 404)},
		{route: "PUT /api/orgs/{org}/quota", ok: req("/api/orgs/default/quota", map[string]int{"max_concurrent_jobs": 4}, 200),
			actions: []string{"quota.set"}, target: "org default",
			bad: req("/api/orgs/default/quota", map[string]int{"max_concurrent_jobs": -4}, 400)},
		{route: "POST /api/agents", ok: req("/api/agents", api.AgentInput{Name: "new-agent", Labels: []string{"gpu"}}, 201),
			actions: []string{"agent.create"}, target: `agent "new-agent"`,
			bad: req("/api/agents", api.AgentInput{Name: "audited-agent"}, 409)},
		{route: "POST /api/agents/{id}/drain", ok: req(agent+"/drain", nil, 200),
			actions: []string{"agent.drain"}, target: fmt.Sprintf("agent %d", fx.agent), bad: req("/api/agents/99999/drain", nil, 404)},
		{route: "POST /api/agents/{id}/resume", ok: req(agent+"/resume", nil, 200),
			actions: []string{"agent.resume"}, target: fmt.Sprintf("agent %d", fx.agent), bad: req("/api/agents/99999/resume", nil, 404)},
		{route: "DELETE /api/agents/{id}", ok: req(agent, nil, 204),
			actions: []string{"agent.revoke"}, target: fmt.Sprintf("agent %d", fx.agent), bad: req("/api/agents/99999", nil, 404)},
		{route: "POST /api/runs/{id}/cancel", ok: req(fmt.Sprintf("/api/runs/%d/cancel", fx.runs[0]), nil, 200),
			actions: []string{"run.cancel"}, target: fmt.Sprintf("run %d", fx.runs[0]),
			bad: req(fmt.Sprintf("/api/runs/%d/cancel", fx.runs[0]), nil, 409)}, // it ended: conflict
		{route: "PUT /api/secrets/{name}", ok: req("/api/secrets/AUDITED?org=true", api.SecretInput{Value: "s3cret"}, 200),
			actions: []string{"secret.set"}, target: "AUDITED", bad: req("/api/secrets/bad-name!?org=true", api.SecretInput{Value: "x"}, 400)},
		{route: "DELETE /api/secrets/{name}", ok: req("/api/secrets/AUDITED?org=true", nil, 204),
			actions: []string{"secret.delete"}, target: "AUDITED", bad: req("/api/secrets/AUDITED?org=true", nil, 404)},
		{route: "PUT /api/vars/{name}", ok: req("/api/vars/AUDITED?org=true", api.SecretInput{Value: "v"}, 200),
			actions: []string{"var.set"}, target: "AUDITED"},
		{route: "DELETE /api/vars/{name}", ok: req("/api/vars/AUDITED?org=true", nil, 204),
			actions: []string{"var.delete"}, target: "AUDITED", bad: req("/api/vars/MISSING?org=true", nil, 404)},
		{route: "PUT /api/repos/{id}/environments/{name}", ok: req(repo+"/environments/staging", api.EnvironmentInput{WaitMinutes: 1}, 200),
			actions: []string{"environment.set"}, target: "environment staging"},
		{route: "DELETE /api/repos/{id}/environments/{name}", ok: req(repo+"/environments/doomed", nil, 204),
			actions: []string{"environment.delete"}, target: "environment doomed", bad: req(repo+"/environments/missing", nil, 404)},
		{route: "POST /api/runs/{id}/jobs/{job}/approve", ok: req(fmt.Sprintf("/api/runs/%d/jobs/%d/approve", fx.gatedRun, fx.gatedJob), api.ApprovalInput{}, 200),
			actions: []string{"approval.approve"}, target: "job deploy",
			bad: req(fmt.Sprintf("/api/runs/%d/jobs/%d/approve", fx.runs[1], fx.onlyJobOf(fx.runs[1])), api.ApprovalInput{}, 409)},
		{route: "POST /api/runs/{id}/jobs/{job}/reject", ok: req(fmt.Sprintf("/api/runs/%d/jobs/%d/reject", fx.rejectRun, fx.rejectJob), api.ApprovalInput{Comment: "no"}, 200),
			actions: []string{"approval.reject"}, target: "job deploy"},
		{route: "POST /api/runs/{id}/approve", ok: req(fmt.Sprintf("/api/runs/%d/approve", fx.forkRun), api.ApprovalInput{}, 200),
			actions: []string{"approval.run.approve"}, target: fmt.Sprintf("run %d", fx.forkRun),
			bad: req(fmt.Sprintf("/api/runs/%d/approve", fx.runs[1]), api.ApprovalInput{}, 409)},
		{route: "POST /api/runs/{id}/reject", ok: req(fmt.Sprintf("/api/runs/%d/reject", fx.forkReject), api.ApprovalInput{}, 200),
			actions: []string{"approval.run.reject"}, target: fmt.Sprintf("run %d", fx.forkReject)},
		{route: "POST /api/orgs", ok: req("/api/orgs", api.OrgInput{Name: "audited-org"}, 201),
			actions: []string{"org.create"}, target: "org audited-org", bad: req("/api/orgs", api.OrgInput{Name: "audited-org"}, 409)},
		// A new user is made, then added: two changes, two entries.
		{route: "POST /api/users", ok: req("/api/users", api.UserInput{Name: "auditor", Role: "viewer", Password: "auditor-pass-1"}, 201),
			actions: []string{"user.create", "member.add"}, target: "user auditor",
			bad: req("/api/users", api.UserInput{Name: "auditor", Role: "viewer"}, 409)},
		{route: "PUT /api/users/{name}/role", ok: req("/api/users/auditor/role", api.RoleInput{Role: "developer"}, 200),
			actions: []string{"member.role"}, target: "user auditor", bad: req("/api/users/auditor/role", api.RoleInput{Role: "boss"}, 400)},
		{route: "POST /api/login", ok: func() auditReq {
			return auditReq{path: "/api/login", body: api.LoginInput{User: "auditor", Password: "auditor-pass-1"}, want: 200}
		}, actions: []string{"session.create"}, target: "user auditor",
			bad: req("/api/login", api.LoginInput{User: "auditor", Password: "wrong-password"}, 401),
			after: func(b []byte) {
				var res api.LoginResult
				_ = json.Unmarshal(b, &res)
				fx.session = res.Token
			}},
		{route: "PUT /api/password", ok: func() auditReq {
			return auditReq{path: "/api/password", body: api.PasswordInput{Current: "auditor-pass-1", New: "auditor-pass-2"},
				token: fx.session, want: 204}
		}, actions: []string{"user.password"}, target: "user auditor"},
		{route: "DELETE /api/users/{name}", ok: req("/api/users/auditor", nil, 204),
			actions: []string{"member.remove"}, target: "user auditor", bad: req("/api/users/nobody", nil, 404)},
		{route: "POST /api/tokens", ok: req("/api/tokens", api.TokenInput{Name: "laptop", Scope: "read"}, 201),
			actions: []string{"token.create"}, target: `"laptop"`, bad: req("/api/tokens", api.TokenInput{Name: "laptop", Scope: "root"}, 400)},
		{route: "DELETE /api/tokens/{id}", ok: req(fmt.Sprintf("/api/tokens/%d", fx.tokens[0]), nil, 204),
			actions: []string{"token.revoke"}, target: fmt.Sprintf("token %d", fx.tokens[0]), bad: req("/api/tokens/99999", nil, 404)},
		{route: "POST /api/tokens/{id}/rotate", ok: req(fmt.Sprintf("/api/tokens/%d/rotate", fx.tokens[1]), nil, 200),
			actions: []string{"token.rotate"}, target: fmt.Sprintf("token %d", fx.tokens[1]), bad: req("/api/tokens/99999/rotate", nil, 404)},
	}
}

func (fx *auditFixture) onlyJobOf(runID int64) int64 { return fx.onlyJob(fx.h.t, runID) }
