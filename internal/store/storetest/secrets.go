package storetest

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

var secretTests = []test{
	{"SecretsNarrowestWins", testSecretsNarrowest},
	{"SecretsListAndDelete", testSecretsList},
	{"SecretsTenantIsolation", testSecretsIsolation},
	{"JobTokens", testJobTokens},
}

func (e *env) putSecret(kind string, sc store.Scope, name, value string) {
	e.t.Helper()
	x := &store.Secret{Kind: kind, Scope: sc, Name: name, Value: value, UpdatedBy: "alice"}
	e.must(e.s.PutSecret(e.ctx, x))
	if x.Updated.IsZero() {
		e.t.Fatal("PutSecret left Updated zero")
	}
}

func testSecretsNarrowest(t *testing.T, e *env) {
	org := store.Scope{OrgID: e.org.ID}
	repo := store.Scope{OrgID: e.org.ID, RepoID: e.repo.ID}
	prod := store.Scope{OrgID: e.org.ID, RepoID: e.repo.ID, Env: "production"}
	other := e.newRepo(e.org.ID, "acme/other")
	e.putSecret(store.KindSecret, org, "TOKEN", "org-token")
	e.putSecret(store.KindSecret, org, "ORG_ONLY", "o")
	e.putSecret(store.KindSecret, repo, "TOKEN", "repo-token")
	e.putSecret(store.KindSecret, prod, "TOKEN", "prod-token")
	e.putSecret(store.KindSecret, store.Scope{OrgID: e.org.ID, RepoID: other.ID}, "TOKEN", "other-repo")
	e.putSecret(store.KindSecret, store.Scope{OrgID: e.org.ID, RepoID: e.repo.ID, Env: "staging"}, "TOKEN", "staging")
	e.putSecret(store.KindVar, org, "REGION", "eu")
	e.putSecret(store.KindVar, prod, "REGION", "us")
	// Replacing keeps one row and the new value.
	e.putSecret(store.KindSecret, repo, "TOKEN", "repo-token-2")

	for _, c := range []struct {
		env        string
		sec, vars  map[string]string
		repoID     int64
		otherCheck bool
	}{
		{"", map[string]string{"TOKEN": "repo-token-2", "ORG_ONLY": "o"}, map[string]string{"REGION": "eu"}, e.repo.ID, false},
		{"production", map[string]string{"TOKEN": "prod-token", "ORG_ONLY": "o"}, map[string]string{"REGION": "us"}, e.repo.ID, false},
		{"unknown", map[string]string{"TOKEN": "repo-token-2", "ORG_ONLY": "o"}, map[string]string{"REGION": "eu"}, e.repo.ID, false},
		{"production", map[string]string{"TOKEN": "other-repo", "ORG_ONLY": "o"}, map[string]string{"REGION": "eu"}, other.ID, true},
	} {
		sec, vars, err := e.s.JobValues(e.ctx, e.org.ID, c.repoID, c.env)
		e.must(err)
		if !maps.Equal(sec, c.sec) || !maps.Equal(vars, c.vars) {
			t.Errorf("JobValues(repo %d, env %q) = %v, %v; want %v, %v", c.repoID, c.env, sec, vars, c.sec, c.vars)
		}
	}
	err := e.s.PutSecret(e.ctx, &store.Secret{Kind: store.KindSecret, Scope: store.Scope{OrgID: e.org.ID, Env: "x"}, Name: "A"})
	wantKind(t, err, errs.Invalid, "an environment without a repository")
	err = e.s.PutSecret(e.ctx, &store.Secret{Kind: "nope", Scope: org, Name: "A"})
	wantKind(t, err, errs.Invalid, "unknown kind")
}

func testSecretsList(t *testing.T, e *env) {
	org := store.Scope{OrgID: e.org.ID}
	repo := store.Scope{OrgID: e.org.ID, RepoID: e.repo.ID}
	e.putSecret(store.KindSecret, repo, "B", "b-value")
	e.putSecret(store.KindSecret, org, "A", "a-value")
	e.putSecret(store.KindSecret, store.Scope{OrgID: e.org.ID, RepoID: e.repo.ID, Env: "prod"}, "C", "c-value")
	e.putSecret(store.KindVar, repo, "V", "shown")

	all, err := e.s.ListSecrets(e.ctx, e.org.ID, store.SecretFilter{Kind: store.KindSecret})
	e.must(err)
	var names []string
	for _, x := range all {
		if x.Value != "" {
			t.Errorf("ListSecrets shows the value of %s", x.Name)
		}
		if x.UpdatedBy != "alice" || x.Updated.IsZero() {
			t.Errorf("ListSecrets: %s lacks who and when: %+v", x.Name, x)
		}
		names = append(names, x.Scope.Level()+":"+x.Name)
	}
	if want := []string{"org:A", "repo:B", "env:C"}; !slices.Equal(names, want) {
		t.Errorf("ListSecrets = %v, want %v", names, want)
	}
	repoOnly, err := e.s.ListSecrets(e.ctx, e.org.ID, store.SecretFilter{Kind: store.KindSecret, RepoID: e.repo.ID, Env: "staging"})
	e.must(err)
	if len(repoOnly) != 2 {
		t.Errorf("ListSecrets(repo, env staging) = %d entries, want A and B", len(repoOnly))
	}
	vars, err := e.s.ListSecrets(e.ctx, e.org.ID, store.SecretFilter{Kind: store.KindVar})
	e.must(err)
	if len(vars) != 1 || vars[0].Value != "shown" {
		t.Errorf("ListSecrets(var) = %+v, want V=shown", vars)
	}

	e.must(e.s.DeleteSecret(e.ctx, store.KindSecret, repo, "B"))
	wantKind(t, e.s.DeleteSecret(e.ctx, store.KindSecret, repo, "B"), errs.NotFound, "deleting twice")
	wantKind(t, e.s.DeleteSecret(e.ctx, store.KindVar, repo, "A"), errs.NotFound, "deleting a secret as a var")
	sec, _, err := e.s.JobValues(e.ctx, e.org.ID, e.repo.ID, "")
	e.must(err)
	if _, ok := sec["B"]; ok || sec["A"] != "a-value" {
		t.Errorf("after delete: %v", sec)
	}
}

func testSecretsIsolation(t *testing.T, e *env) {
	other := e.newOrg("other")
	otherRepo := e.newRepo(other.ID, "evil/repo")
	e.putSecret(store.KindSecret, store.Scope{OrgID: e.org.ID}, "A", "mine")
	// A repository of another organisation is not a scope of this one.
	err := e.s.PutSecret(e.ctx, &store.Secret{Kind: store.KindSecret, Scope: store.Scope{OrgID: e.org.ID, RepoID: otherRepo.ID},
		Name: "X", Value: "v"})
	wantKind(t, err, errs.NotFound, "PutSecret on another organisation's repository")
	sec, _, err := e.s.JobValues(e.ctx, other.ID, otherRepo.ID, "")
	e.must(err)
	if len(sec) != 0 {
		t.Errorf("another organisation's job sees %v", sec)
	}
	list, err := e.s.ListSecrets(e.ctx, other.ID, store.SecretFilter{Kind: store.KindSecret})
	e.must(err)
	if len(list) != 0 {
		t.Errorf("another organisation lists %d secrets", len(list))
	}
	wantKind(t, e.s.DeleteSecret(e.ctx, store.KindSecret, store.Scope{OrgID: other.ID}, "A"), errs.NotFound, "deleting another's")
}

func testJobTokens(t *testing.T, e *env) {
	run := e.newRun(e.repo, nil, job("a"), job("b"))
	l := e.leaseKey("a")
	tok := &store.JobToken{Hash: []byte("hash-a-0123456789abcdef0123456789"), OrgID: e.org.ID, RunID: run.ID, JobID: l.Job.ID,
		Lease: l.Job.LeaseToken, ReadRun: true, Expires: time.Now().Add(time.Hour)}
	e.must(e.s.CreateJobToken(e.ctx, tok))
	got, err := e.s.JobTokenByHash(e.ctx, tok.Hash)
	e.must(err)
	if got.RunID != run.ID || got.JobID != l.Job.ID || !got.ReadRun || got.OrgID != e.org.ID {
		t.Errorf("JobTokenByHash = %+v", got)
	}
	_, err = e.s.JobTokenByHash(e.ctx, []byte("another-hash-0123456789abcdef0123"))
	wantKind(t, err, errs.NotFound, "an unknown hash")
	expired := *tok
	expired.Hash, expired.Expires = []byte("hash-expired-0123456789abcdef012"), time.Now().Add(-time.Second)
	e.must(e.s.CreateJobToken(e.ctx, &expired))
	_, err = e.s.JobTokenByHash(e.ctx, expired.Hash)
	wantKind(t, err, errs.NotFound, "an expired token")

	// The job ends: its token stops working, even before it is revoked.
	e.must(e.s.Complete(e.ctx, l.Job.ID, l.Job.LeaseToken, store.Completion{Status: store.StatusSuccess}))
	_, err = e.s.JobTokenByHash(e.ctx, tok.Hash)
	wantKind(t, err, errs.NotFound, "the token of a finished job")
	e.must(e.s.RevokeJobTokens(e.ctx, l.Job.ID))

	// A token of an earlier lease of a job does not work for a later one.
	lb := e.leaseKey("b")
	stale := &store.JobToken{Hash: []byte("hash-stale-0123456789abcdef01234"), OrgID: e.org.ID, RunID: run.ID, JobID: lb.Job.ID,
		Lease: lb.Job.LeaseToken - 1, ReadRun: true, Expires: time.Now().Add(time.Hour)}
	e.must(e.s.CreateJobToken(e.ctx, stale))
	_, err = e.s.JobTokenByHash(e.ctx, stale.Hash)
	wantKind(t, err, errs.NotFound, "a token of another lease")
	wantKind(t, e.s.CreateJobToken(e.ctx, &store.JobToken{OrgID: e.org.ID}), errs.Invalid, "a token without a hash")
}
