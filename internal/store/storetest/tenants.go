package storetest

import (
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

var tenantTests = []test{
	{"Orgs", testOrgs},
	{"Tokens", testTokens},
	{"TokenLifecycle", testTokenLifecycle},
	{"FirstAdmin", testFirstAdmin},
	{"Users", testUsers},
	{"Members", testMembers},
	{"MembersRace", testMembersRace},
	{"Audit", testAudit},
	{"Repos", testRepos},
	{"TenantIsolation", testTenantIsolation},
}

func testOrgs(t *testing.T, e *env) {
	again := e.newOrg("default")
	if again.ID != e.org.ID || again.Name != "default" || again.Created.IsZero() {
		t.Fatalf("EnsureOrg(default) twice: %+v then %+v", e.org, again)
	}
	other := e.newOrg("other")
	if other.ID == e.org.ID {
		t.Fatal("two organisations share an id")
	}
	_, err := e.s.EnsureOrg(e.ctx, "")
	wantKind(t, err, errs.Invalid, "EnsureOrg(\"\")")
}

func testRepos(t *testing.T, e *env) {
	other := e.newOrg("other")
	r := &store.Repo{OrgID: e.org.ID, Name: "acme/lib", URL: "https://git.example/acme/lib", Forge: "gitlab",
		Secret: "hook", Branch: "trunk", AllowSHA1: true, StatusToken: "st", APIURL: "https://git.example/api/v4",
		CloneUser: "bot", ClonePassword: "pw"}
	e.must(e.s.CreateRepo(e.ctx, r))
	if r.ID == 0 || r.Created.IsZero() {
		t.Fatalf("CreateRepo did not set ID and Created: %+v", r)
	}
	got, err := e.s.GetRepo(e.ctx, e.org.ID, r.ID)
	e.must(err)
	if !sameRepo(got, r) {
		t.Errorf("GetRepo = %+v\nwant %+v", got, r)
	}
	wantKind(t, e.s.CreateRepo(e.ctx, &store.Repo{OrgID: e.org.ID, Name: "acme/lib"}), errs.Conflict, "same name, same org")
	e.must(e.s.CreateRepo(e.ctx, &store.Repo{OrgID: other.ID, Name: "acme/lib"}))
	wantKind(t, e.s.CreateRepo(e.ctx, &store.Repo{OrgID: e.org.ID}), errs.Invalid, "repository without a name")

	hook, err := e.s.RepoForHook(e.ctx, r.ID)
	e.must(err)
	if !sameRepo(hook, r) {
		t.Errorf("RepoForHook = %+v", hook)
	}
	_, err = e.s.RepoForHook(e.ctx, r.ID+1000)
	wantKind(t, err, errs.NotFound, "RepoForHook(unknown)")
	byName, err := e.s.RepoByName(e.ctx, e.org.ID, "acme/lib")
	e.must(err)
	if byName.ID != r.ID {
		t.Errorf("RepoByName found %d, want %d", byName.ID, r.ID)
	}
	list, err := e.s.ListRepos(e.ctx, e.org.ID)
	e.must(err)
	if len(list) != 2 || list[0].Name != "acme/app" || list[1].Name != "acme/lib" {
		t.Errorf("ListRepos = %v, want acme/app and acme/lib", repoNames(list))
	}
	all, err := e.s.AllRepos(e.ctx)
	e.must(err)
	if len(all) != 3 {
		t.Errorf("AllRepos = %v, want the 3 repositories of both organisations", repoNames(all))
	}
	testUpdateRepo(t, e, r, other)
}

// testUpdateRepo changes a setting, leaves the others, and refuses
// another organisation's repository.
func testUpdateRepo(t *testing.T, e *env, r *store.Repo, other *store.Org) {
	on := true
	got, err := e.s.UpdateRepo(e.ctx, e.org.ID, r.ID, store.RepoSettings{RunTestDeliveries: &on})
	e.must(err)
	want := *r
	want.RunTestDeliveries = true
	if !sameRepo(got, &want) {
		t.Errorf("UpdateRepo = %+v\nwant %+v", got, &want)
	}
	if hook, err := e.s.RepoForHook(e.ctx, r.ID); err != nil || !hook.RunTestDeliveries {
		t.Errorf("RepoForHook after UpdateRepo: %+v, %v", hook, err)
	}
	if same, err := e.s.UpdateRepo(e.ctx, e.org.ID, r.ID, store.RepoSettings{}); err != nil || !same.RunTestDeliveries {
		t.Errorf("UpdateRepo with nothing to change: %+v, %v", same, err)
	}
	_, err = e.s.UpdateRepo(e.ctx, other.ID, r.ID, store.RepoSettings{RunTestDeliveries: &on})
	wantKind(t, err, errs.NotFound, "UpdateRepo of another organisation's repository")
	secret := "the new webhook secret"
	got, err = e.s.UpdateRepo(e.ctx, e.org.ID, r.ID, store.RepoSettings{Secret: &secret})
	e.must(err)
	want.Secret = secret
	if !sameRepo(got, &want) {
		t.Errorf("UpdateRepo of the secret = %+v\nwant %+v", got, &want)
	}
	if hook, err := e.s.RepoForHook(e.ctx, r.ID); err != nil || hook.Secret != secret {
		t.Errorf("RepoForHook after a new secret: %+v, %v", hook, err)
	}
	empty := ""
	_, err = e.s.UpdateRepo(e.ctx, e.org.ID, r.ID, store.RepoSettings{Secret: &empty})
	wantKind(t, err, errs.Invalid, "UpdateRepo to an empty secret")
}

// sameRepo compares repositories, times by Equal.
func sameRepo(a, b *store.Repo) bool {
	x, y := *a, *b
	ok := x.Created.Equal(y.Created)
	x.Created, y.Created = time.Time{}, time.Time{}
	return ok && x == y
}

func repoNames(rs []*store.Repo) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

// testTenantIsolation reads every tenant-reachable row of one organisation
// as another: each read answers NotFound (or nothing, for lists).
func testTenantIsolation(t *testing.T, e *env) {
	other := e.newOrg("other")
	ev := event(e.repo, "d-1", "{}")
	e.accept(ev)
	run := e.newRun(e.repo, nil, job("build"))
	l := e.leaseKey("build")
	_, err := e.s.AppendLog(e.ctx, l.Job.ID, []byte("secret output"))
	e.must(err)

	notFound := map[string]func() error{
		"GetRepo":    func() error { _, err := e.s.GetRepo(e.ctx, other.ID, e.repo.ID); return err },
		"RepoByName": func() error { _, err := e.s.RepoByName(e.ctx, other.ID, e.repo.Name); return err },
		"GetEvent":   func() error { _, err := e.s.GetEvent(e.ctx, other.ID, ev.ID); return err },
		"GetRun":     func() error { _, err := e.s.GetRun(e.ctx, other.ID, run.ID); return err },
		"Jobs":       func() error { _, err := e.s.Jobs(e.ctx, other.ID, run.ID); return err },
		"GetJob":     func() error { _, err := e.s.GetJob(e.ctx, other.ID, l.Job.ID); return err },
		"Attempts":   func() error { _, err := e.s.Attempts(e.ctx, other.ID, l.Job.ID); return err },
		"ReadLog":    func() error { _, err := e.s.ReadLog(e.ctx, other.ID, l.Job.ID, 0, 10); return err },
		"CancelRun":  func() error { _, err := e.s.CancelRun(e.ctx, other.ID, run.ID, "x"); return err },
	}
	for name, f := range notFound {
		t.Run(name, func(t *testing.T) { wantKind(t, f(), errs.NotFound, name+" from another organisation") })
	}
	repos, err := e.s.ListRepos(e.ctx, other.ID)
	e.must(err)
	runs, err := e.s.ListRuns(e.ctx, other.ID, store.RunFilter{})
	e.must(err)
	if len(repos) != 0 || len(runs) != 0 {
		t.Errorf("another organisation lists %d repositories and %d runs, want none", len(repos), len(runs))
	}
	// The owner still sees everything.
	if _, err := e.s.ReadLog(e.ctx, e.org.ID, l.Job.ID, 0, 10); err != nil {
		t.Errorf("ReadLog by the owner: %v", err)
	}
	if r := e.getRun(run.ID); r.Status != store.StatusRunning {
		t.Errorf("run is %s after the foreign CancelRun, want running", r.Status)
	}
	// A run cannot be filed under a repository of another organisation.
	_, err = e.s.CreateRuns(e.ctx, []store.NewRun{{Run: &store.Run{OrgID: other.ID, RepoID: e.repo.ID}}})
	wantKind(t, err, errs.Invalid, "run naming another organisation")
	foreign := event(e.repo, "d-2", "x")
	foreign.OrgID = other.ID
	_, err = e.s.Accept(e.ctx, []*store.Event{foreign})
	wantKind(t, err, errs.Invalid, "event naming another organisation")
}
