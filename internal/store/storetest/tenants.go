package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

var tenantTests = []test{
	{"Orgs", testOrgs},
	{"Tokens", testTokens},
	{"FirstToken", testFirstToken},
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

func testTokens(t *testing.T, e *env) {
	other := e.newOrg("other")
	tok := &store.Token{OrgID: e.org.ID, Name: "ci", Role: store.RoleWrite, Hash: []byte("hash-1")}
	e.must(e.s.CreateToken(e.ctx, tok))
	if tok.ID == 0 || tok.Created.IsZero() {
		t.Fatalf("CreateToken did not set ID and Created: %+v", tok)
	}
	dup := &store.Token{OrgID: other.ID, Name: "x", Role: store.RoleRead, Hash: []byte("hash-1")}
	wantKind(t, e.s.CreateToken(e.ctx, dup), errs.Conflict, "token with a taken hash")
	bad := &store.Token{OrgID: e.org.ID, Name: "x", Role: "root", Hash: []byte("hash-2")}
	wantKind(t, e.s.CreateToken(e.ctx, bad), errs.Invalid, "token with an unknown role")
	e.must(e.s.CreateToken(e.ctx, &store.Token{OrgID: e.org.ID, Name: "agent", Role: store.RoleAgent, Hash: []byte("hash-3")}))
	e.must(e.s.CreateToken(e.ctx, &store.Token{OrgID: other.ID, Name: "adm", Role: store.RoleAdmin, Hash: []byte("hash-4")}))

	got, err := e.s.TokenByHash(e.ctx, []byte("hash-1"))
	e.must(err)
	if got.ID != tok.ID || got.OrgID != e.org.ID || got.Name != "ci" || got.Role != store.RoleWrite ||
		!bytes.Equal(got.Hash, tok.Hash) || !got.Created.Equal(tok.Created) {
		t.Errorf("TokenByHash = %+v, want %+v", got, tok)
	}
	if !near(got.LastUsed, time.Now(), time.Minute) {
		t.Errorf("TokenByHash did not record the use: LastUsed %v", got.LastUsed)
	}
	_, err = e.s.TokenByHash(e.ctx, []byte("nope"))
	wantKind(t, err, errs.NotFound, "TokenByHash(unknown)")

	for _, c := range []struct {
		org  int64
		want int
	}{{e.org.ID, 2}, {other.ID, 1}, {-1, 0}} {
		n, err := e.s.CountTokens(e.ctx, c.org)
		e.must(err)
		if n != c.want {
			t.Errorf("CountTokens(%d) = %d, want %d", c.org, n, c.want)
		}
	}
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

// testFirstToken: replicas starting together on an empty database make one
// admin token between them.
func testFirstToken(t *testing.T, e *env) {
	org := e.newOrg("fresh")
	var wg sync.WaitGroup
	made := make([]bool, 8)
	errc := make(chan error, len(made))
	for i := range made {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := &store.Token{OrgID: org.ID, Name: "admin", Role: store.RoleAdmin, Hash: []byte(fmt.Sprintf("first-%d", i))}
			ok, err := e.s.CreateFirstToken(e.ctx, tok)
			made[i] = ok
			if err != nil {
				errc <- err
			}
			if ok && tok.ID == 0 {
				errc <- fmt.Errorf("token %d made without an id", i)
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	n := 0
	for _, ok := range made {
		if ok {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d of %d concurrent CreateFirstToken calls made a token, want 1", n, len(made))
	}
	if c, err := e.s.CountTokens(e.ctx, org.ID); err != nil || c != 1 {
		t.Errorf("CountTokens = %d, %v; want 1", c, err)
	}
	ok, err := e.s.CreateFirstToken(e.ctx, &store.Token{OrgID: org.ID, Name: "admin", Role: store.RoleAdmin, Hash: []byte("later")})
	if err != nil || ok {
		t.Errorf("CreateFirstToken on an organisation with a token = %v, %v; want false", ok, err)
	}
	_, err = e.s.CreateFirstToken(e.ctx, &store.Token{OrgID: org.ID, Name: "admin", Role: "root", Hash: []byte("bad")})
	wantKind(t, err, errs.Invalid, "CreateFirstToken with an unknown role")
}
