package storetest

import (
	"context"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

var auditTests = []test{
	{"AuditWithChange", testAuditWithChange},
	{"AuditFailureUndoesChange", testAuditFailureUndoesChange},
	{"AuditSettings", testAuditSettings},
}

// audited is ctx carrying an entry of action (store.WithAudit); an empty
// action makes an entry whose insert fails.
func (e *env) audited(action string) (context.Context, *store.PendingAudit) {
	return store.WithAudit(e.ctx, func() *store.AuditEntry {
		return &store.AuditEntry{OrgID: e.org.ID, Actor: "alice", Action: action, Target: "t"}
	})
}

func (e *env) auditActions() []string {
	e.t.Helper()
	list, err := e.s.ListAudit(e.ctx, e.org.ID, store.AuditFilter{Limit: 100})
	e.must(err)
	var out []string
	for _, x := range list {
		out = append(out, x.Action)
	}
	return out
}

// The entry is written with a change that commits, once; a change that
// fails writes none.
func testAuditWithChange(t *testing.T, e *env) {
	ctx, p := e.audited("secret.set")
	e.must(e.s.PutSecret(ctx, &store.Secret{Kind: store.KindSecret, Scope: store.Scope{OrgID: e.org.ID}, Name: "A", Value: "v1"}))
	if !p.Written() {
		t.Fatal("PutSecret committed without taking the pending audit entry")
	}
	// The same context again writes no second entry.
	e.must(e.s.PutSecret(ctx, &store.Secret{Kind: store.KindSecret, Scope: store.Scope{OrgID: e.org.ID}, Name: "B", Value: "v"}))
	if got := e.auditActions(); len(got) != 1 || got[0] != "secret.set" {
		t.Fatalf("audit after two writes of one entry: %v", got)
	}
	ctx, p = e.audited("secret.set")
	err := e.s.PutSecret(ctx, &store.Secret{Kind: store.KindSecret, Scope: store.Scope{OrgID: e.org.ID, RepoID: 9999}, Name: "A", Value: "v"})
	wantKind(t, err, errs.NotFound, "a secret of an unknown repository")
	ctx2, p2 := e.audited("member.role")
	err = e.s.SetMember(ctx2, e.org.ID, 9999, store.OrgViewer)
	wantKind(t, err, errs.NotFound, "an unknown user")
	if p.Written() || p2.Written() {
		t.Fatal("a failed change reported its audit entry written")
	}
	if got := e.auditActions(); len(got) != 1 {
		t.Fatalf("failed changes left audit entries: %v", got)
	}
}

// When the entry cannot be inserted, the change is undone: secrets,
// roles, tokens, environments and approvals.
func testAuditFailureUndoesChange(t *testing.T, e *env) {
	sc := store.Scope{OrgID: e.org.ID}
	e.must(e.s.PutSecret(e.ctx, &store.Secret{Kind: store.KindSecret, Scope: sc, Name: "A", Value: "v1"}))
	bad, p := e.audited("")
	wantKind(t, e.s.PutSecret(bad, &store.Secret{Kind: store.KindSecret, Scope: sc, Name: "A", Value: "v2"}), errs.Invalid, "PutSecret with a failing audit")
	if sec, _, err := e.s.JobValues(e.ctx, e.org.ID, e.repo.ID, ""); err != nil || sec["A"] != "v1" {
		t.Fatalf("secret after a failed audit: %v %v, want v1", sec, err)
	}
	wantKind(t, e.s.DeleteSecret(bad, store.KindSecret, sc, "A"), errs.Invalid, "DeleteSecret with a failing audit")
	if sec, _, _ := e.s.JobValues(e.ctx, e.org.ID, e.repo.ID, ""); sec["A"] != "v1" {
		t.Fatalf("secret deleted by a change whose audit failed: %v", sec)
	}

	u := e.newUser("carol")
	wantKind(t, e.s.SetMember(bad, e.org.ID, u.ID, store.OrgAdmin), errs.Invalid, "SetMember with a failing audit")
	if _, err := e.s.Member(e.ctx, e.org.ID, u.ID); !errs.Is(err, errs.NotFound) {
		t.Fatalf("member after a failed audit: %v", err)
	}
	wantKind(t, e.s.CreateUser(bad, &store.User{Name: "dave"}), errs.Invalid, "CreateUser with a failing audit")
	if _, err := e.s.UserByName(e.ctx, "dave"); !errs.Is(err, errs.NotFound) {
		t.Fatalf("user after a failed audit: %v", err)
	}

	e.must(e.s.SetMember(e.ctx, e.org.ID, u.ID, store.OrgViewer))
	tok := &store.Token{OrgID: e.org.ID, UserID: u.ID, Name: "laptop", Role: store.RoleRead, Kind: store.TokenAPI, Hash: []byte("h-carol-1")}
	wantKind(t, e.s.CreateToken(bad, tok), errs.Invalid, "CreateToken with a failing audit")
	if ts, err := e.s.ListTokens(e.ctx, u.ID); err != nil || len(ts) != 0 {
		t.Fatalf("tokens after a failed audit: %d %v", len(ts), err)
	}

	env := &store.Environment{OrgID: e.org.ID, RepoID: e.repo.ID, Name: "production",
		Protection: store.Protection{Reviewers: []store.Reviewer{{User: "bob"}}}}
	wantKind(t, e.s.PutEnvironment(bad, env), errs.Invalid, "PutEnvironment with a failing audit")
	if _, err := e.s.GetEnvironment(e.ctx, e.org.ID, e.repo.ID, "production"); !errs.Is(err, errs.NotFound) {
		t.Fatalf("environment after a failed audit: %v", err)
	}

	r := e.newRun(e.repo, nil, gated("deploy", 0))
	d := e.jobs(r.ID)["deploy"]
	_, err := e.s.DecideJob(bad, e.org.ID, d.ID, store.Decision{User: "bob", Decision: store.Approved})
	wantKind(t, err, errs.Invalid, "DecideJob with a failing audit")
	e.wantJobs(r.ID, map[string]string{"deploy": store.StatusAwaitingApproval})

	if p.Written() {
		t.Fatal("a failed audit insert reported written")
	}
	if got := e.auditActions(); len(got) != 0 {
		t.Fatalf("audit entries of undone changes: %v", got)
	}
}

// auditedChange is a change the API audits, with a way to make it fail
// and a way to see whether it took effect.
type auditedChange struct {
	name string
	// change succeeds on a fresh env; failing is the same change refused
	// with kind (a conflict, an unknown target, an invalid value).
	change, failing func(ctx context.Context) error
	kind            errs.Kind
	applied         func() bool
}

// settingsChanges are the settings changes of repositories, agents,
// quotas and retention, on e's store.
func (e *env) settingsChanges() []auditedChange {
	changes := e.repoChanges()
	changes = append(changes, e.agentChanges()...)
	return append(changes, e.orgChanges()...)
}

// repoChanges: a repository's settings, its webhook secret, a new one.
func (e *env) repoChanges() []auditedChange {
	policy, secret, empty := "no-private", "n3w-s3cret", ""
	return []auditedChange{{
		name: "UpdateRepo",
		change: func(ctx context.Context) error {
			_, err := e.s.UpdateRepo(ctx, e.org.ID, e.repo.ID, store.RepoSettings{NetworkPolicy: &policy})
			return err
		},
		failing: func(ctx context.Context) error {
			_, err := e.s.UpdateRepo(ctx, e.org.ID, 99999, store.RepoSettings{NetworkPolicy: &policy})
			return err
		},
		kind: errs.NotFound,
		applied: func() bool {
			r, err := e.s.GetRepo(e.ctx, e.org.ID, e.repo.ID)
			e.must(err)
			return r.NetworkPolicy == policy
		},
	}, {
		name: "UpdateRepoSecret", // a new webhook secret; an empty one is invalid
		change: func(ctx context.Context) error {
			_, err := e.s.UpdateRepo(ctx, e.org.ID, e.repo.ID, store.RepoSettings{Secret: &secret})
			return err
		},
		failing: func(ctx context.Context) error {
			_, err := e.s.UpdateRepo(ctx, e.org.ID, e.repo.ID, store.RepoSettings{Secret: &empty})
			return err
		},
		kind: errs.Invalid,
		applied: func() bool {
			r, err := e.s.GetRepo(e.ctx, e.org.ID, e.repo.ID)
			e.must(err)
			return r.Secret == secret
		},
	}, {
		name: "CreateRepo",
		change: func(ctx context.Context) error {
			return e.s.CreateRepo(ctx, &store.Repo{OrgID: e.org.ID, Name: "acme/new", URL: "https://example.com/acme/new", Forge: "github", Secret: "s"})
		},
		failing: func(ctx context.Context) error {
			return e.s.CreateRepo(ctx, &store.Repo{OrgID: e.org.ID, Name: e.repo.Name, URL: e.repo.URL, Forge: "github", Secret: "s"})
		},
		kind: errs.Conflict,
		applied: func() bool {
			_, err := e.s.RepoByName(e.ctx, e.org.ID, "acme/new")
			return err == nil
		},
	}}
}

// agentChanges: a new agent, draining and revoking one.
func (e *env) agentChanges() []auditedChange {
	draining := e.newAgent(e.org.ID, "to-drain", "h-drain")
	revoked := e.newAgent(e.org.ID, "to-revoke", "h-revoke")
	e.newAgent(e.org.ID, "taken", "h-taken")
	return []auditedChange{{
		name: "CreateAgent",
		change: func(ctx context.Context) error {
			return e.s.CreateAgent(ctx, &store.Agent{OrgID: e.org.ID, Name: "new-agent", Hash: []byte("h-new")})
		},
		failing: func(ctx context.Context) error {
			return e.s.CreateAgent(ctx, &store.Agent{OrgID: e.org.ID, Name: "taken", Hash: []byte("h-other")})
		},
		kind: errs.Conflict,
		applied: func() bool {
			_, err := e.s.AgentByHash(e.ctx, []byte("h-new"))
			return err == nil
		},
	}, {
		name:    "SetDraining",
		change:  func(ctx context.Context) error { return e.s.SetDraining(ctx, e.org.ID, draining.ID, true) },
		failing: func(ctx context.Context) error { return e.s.SetDraining(ctx, e.org.ID, 99999, true) },
		kind:    errs.NotFound,
		applied: func() bool { return e.getAgent(draining.ID).Draining },
	}, {
		name:    "RevokeAgent",
		change:  func(ctx context.Context) error { return e.s.RevokeAgent(ctx, e.org.ID, revoked.ID) },
		failing: func(ctx context.Context) error { return e.s.RevokeAgent(ctx, e.org.ID, 99999) },
		kind:    errs.NotFound,
		applied: func() bool { return e.getAgent(revoked.ID).Revoked },
	}}
}

// orgChanges: cancelling a run, a new organisation, its quota and a
// repository's retention.
func (e *env) orgChanges() []auditedChange {
	days := 7
	run := e.newRun(e.repo, nil, job("build"))
	admin := e.newUser("org-admin")
	return []auditedChange{{
		name: "CancelRun",
		change: func(ctx context.Context) error {
			_, err := e.s.CancelRun(ctx, e.org.ID, run.ID, "cancelled by a user")
			return err
		},
		failing: func(ctx context.Context) error {
			_, err := e.s.CancelRun(ctx, e.org.ID, 99999, "cancelled by a user")
			return err
		},
		kind:    errs.NotFound,
		applied: func() bool { return e.jobs(run.ID)["build"].Status == store.StatusCancelled },
	}, {
		name: "CreateOrg", // with its admin: an unknown one creates nothing
		change: func(ctx context.Context) error {
			_, err := e.s.CreateOrg(ctx, "new-org", admin.ID)
			return err
		},
		failing: func(ctx context.Context) error {
			_, err := e.s.CreateOrg(ctx, "new-org", 99999)
			return err
		},
		kind: errs.NotFound,
		applied: func() bool {
			o, err := e.s.OrgByName(e.ctx, "new-org")
			if errs.Is(err, errs.NotFound) {
				return false
			}
			e.must(err)
			m, err := e.s.Member(e.ctx, o.ID, admin.ID)
			e.must(err)
			return m.Role == store.OrgAdmin
		},
	}, {
		name: "SetQuota",
		change: func(ctx context.Context) error {
			return e.s.SetQuota(ctx, &store.Quota{OrgID: e.org.ID, MaxConcurrentJobs: 3})
		},
		failing: func(ctx context.Context) error {
			return e.s.SetQuota(ctx, &store.Quota{OrgID: 99999, MaxConcurrentJobs: 3})
		},
		kind: errs.NotFound,
		applied: func() bool {
			q, err := e.s.Quota(e.ctx, e.org.ID)
			e.must(err)
			return q.MaxConcurrentJobs == 3
		},
	}, {
		name: "SetRetention",
		change: func(ctx context.Context) error {
			return e.s.SetRetention(ctx, e.org.ID, e.repo.ID, store.Retention{LogsDays: &days})
		},
		failing: func(ctx context.Context) error {
			return e.s.SetRetention(ctx, e.org.ID, 99999, store.Retention{LogsDays: &days})
		},
		kind: errs.NotFound,
		applied: func() bool {
			r, err := e.s.GetRetention(e.ctx, e.org.ID, e.repo.ID)
			e.must(err)
			return r.LogsDays != nil && *r.LogsDays == days
		},
	}}
}

// Settings changes (repositories, webhook secrets, agents, quotas,
// retention, a new organisation) and cancelling a run take their audit entry in their transaction: one entry after
// a change that commits, none after one that is refused, and the change
// undone when its entry cannot be written.
func testAuditSettings(t *testing.T, e *env) {
	for _, c := range e.settingsChanges() {
		t.Run(c.name, func(t *testing.T) {
			e := e.with(t)
			before := len(e.auditActions())
			bad, p := e.audited("")
			wantKind(t, c.change(bad), errs.Invalid, c.name+" with a failing audit")
			if c.applied() || p.Written() {
				t.Fatalf("%s took effect although its audit entry could not be written", c.name)
			}
			ctx, p := e.audited("settings.fail")
			wantKind(t, c.failing(ctx), c.kind, c.name+" refused")
			if p.Written() {
				t.Fatalf("%s refused reported its audit entry written", c.name)
			}
			if got := e.auditActions(); len(got) != before {
				t.Fatalf("failed %s changes left audit entries: %v", c.name, got)
			}
			ctx, p = e.audited("settings.set")
			e.must(c.change(ctx))
			if !c.applied() || !p.Written() {
				t.Fatalf("%s: applied %v, audit written %v", c.name, c.applied(), p.Written())
			}
			list, err := e.s.ListAudit(e.ctx, e.org.ID, store.AuditFilter{Limit: 100})
			e.must(err)
			if len(list) != before+1 || list[0].Action != "settings.set" || list[0].Actor != "alice" || list[0].Target != "t" {
				t.Fatalf("audit after %s: %d entries (want %d), newest %+v", c.name, len(list), before+1, list[0])
			}
		})
	}
}
