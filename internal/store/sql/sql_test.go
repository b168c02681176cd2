package sqlstore

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/secrets"
	"github.com/conveyor-ci/conveyor/internal/store"
	"github.com/conveyor-ci/conveyor/internal/store/storetest"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

func openTestSQLite(t testing.TB, opts Options) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "conveyor.db")
	s, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// repoSQLite is openTestSQLite with the default organisation and one
// repository, acme/app, to store events for.
func repoSQLite(t testing.TB) (*DB, *store.Repo, string) {
	t.Helper()
	s, path := openTestSQLite(t, Options{})
	org, err := s.EnsureOrg(context.Background(), "default")
	must(t, err)
	repo := &store.Repo{OrgID: org.ID, Name: "acme/app"}
	must(t, s.CreateRepo(context.Background(), repo))
	return s, repo, path
}

// postgresDSN returns the address of a fresh, empty schema in the test
// PostgreSQL (see scripts/postgres.sh), dropped when t ends; it skips t
// when CONVEYOR_TEST_POSTGRES is unset (fails it under CI).
func postgresDSN(t testing.TB) string { return testenv.PostgresSchema(t, "test") }

func openTestPostgres(t testing.TB, opts Options) *DB {
	t.Helper()
	dsn := postgresDSN(t)
	if opts.MaxConns == 0 {
		opts.MaxConns = 8
	}
	s, err := Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The suite runs with credentials encrypted, as the server stores them.
func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := openTestSQLite(t, Options{Keys: secrets.NewKeyring(testKey(t))})
		return s
	})
}

func TestPostgres(t *testing.T) {
	postgresDSN(t) // skips early without a server
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTestPostgres(t, Options{Keys: secrets.NewKeyring(testKey(t))})
	})
}

// dialects runs f against SQLite and, when configured, PostgreSQL, giving
// it a database address with nothing in it.
func dialects(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, filepath.Join(t.TempDir(), "conveyor.db")) })
	t.Run("postgres", func(t *testing.T) { f(t, postgresDSN(t)) })
}

// createRepoV1 inserts r as schema version 1 stored repositories (the
// columns CreateRepo writes today may not exist yet) and sets its ID.
func createRepoV1(t *testing.T, s *DB, r *store.Repo) {
	t.Helper()
	must(t, s.w.QueryRowContext(t.Context(), `INSERT INTO repos (org_id, name, url, forge, secret, branch, allow_sha1,
		status_token, api_url, clone_user, clone_password, created) VALUES ($1, $2, $3, $4, $5, $6, 0, '', '', '', '', 1)
		RETURNING id`, r.OrgID, r.Name, r.URL, r.Forge, r.Secret, r.Branch).Scan(&r.ID))
}

// TestMigrationUpgrade opens a database at schema version 1, writes rows
// as that release would have, and reopens it with every migration.
func TestMigrationUpgrade(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		old, err := Open(ctx, dsn, Options{MaxMigration: 1})
		if err != nil {
			t.Fatal(err)
		}
		if v, err := old.Version(ctx); err != nil || v != 1 {
			t.Fatalf("Version = %d, %v; want 1", v, err)
		}
		org, err := old.EnsureOrg(ctx, "acme")
		must(t, err)
		// Tokens as version 1 stored them: the admin token printed on first
		// start, a read token, and a token of role agent.
		for _, tk := range []struct{ name, role, hash string }{{"admin", "admin", "h"}, {"ro", "read", "r"}, {"x", "agent", "a"}} {
			_, err := old.w.ExecContext(ctx, `INSERT INTO tokens (org_id, name, role, hash, created) VALUES ($1, $2, $3, $4, 1)`,
				org.ID, tk.name, tk.role, []byte(tk.hash))
			must(t, err)
		}
		repo := &store.Repo{OrgID: org.ID, Name: "acme/app", Secret: "s"}
		createRepoV1(t, old, repo)
		// An event as version 1 stored it: its headers and body in its row.
		var eventID int64
		must(t, old.w.QueryRowContext(ctx, `INSERT INTO events (org_id, repo_id, source, forge, name, delivery_id,
			body_hash, headers, body, received, state) VALUES ($1, $2, 'webhook', 'github', 'push', 'd1', $3,
			'{"X-Github-Event":"push"}', $4, $5, 'pending') RETURNING id`,
			org.ID, repo.ID, []byte("hash"), []byte(`{"ref":"refs/heads/main"}`), us(now())).Scan(&eventID))
		// A run blocked by its concurrency group, written by version 1:
		// migration 2 must hold its job out of the queue.
		var runID int64
		must(t, old.w.QueryRowContext(ctx, `INSERT INTO runs (org_id, repo_id, event_id, number, workflow, name, event,
			ref, sha, trigger_source, status, inputs, event_json, workflow_yaml, concurrency_group, cancel_in_progress,
			attempt, rerun_of, created) VALUES ($1, $2, 0, 1, 'ci.yml', 'ci', 'push', 'refs/heads/main', 'abc', 'webhook',
			'blocked', '{}', $3, $3, 'deploy', 0, 1, 0, 1) RETURNING id`, org.ID, repo.ID, []byte{}).Scan(&runID))
		_, err = old.w.ExecContext(ctx, `INSERT INTO jobs (run_id, org_id, repo_id, job_key, name, needs, status, priority,
			labels, backend, max_attempts, results, reused_from, created) VALUES ($1, $2, $3, 'a', 'a', '[]', 'queued', 0,
			'[]', '', 2, $4, 0, 1)`, runID, org.ID, repo.ID, []byte{})
		must(t, err)
		must(t, old.Close())

		s, err := Open(ctx, dsn, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if v, err := s.Version(ctx); err != nil || v != SchemaVersion {
			t.Fatalf("Version after upgrade = %d, %v; want %d", v, err, SchemaVersion)
		}
		checkAdoptedTokens(t, s, org.ID)
		if r, err := s.RepoByName(ctx, org.ID, "acme/app"); err != nil || r.ID != repo.ID {
			t.Errorf("repository after upgrade: %+v, %v", r, err)
		}
		if got, err := s.GetEvent(ctx, org.ID, eventID); err != nil || got.DeliveryID != "d1" ||
			string(got.Body) != `{"ref":"refs/heads/main"}` || got.Headers["X-Github-Event"] != "push" {
			t.Errorf("event after upgrade: %+v, %v", got, err)
		}
		if evs, err := s.ClaimEvents(ctx, "w", 10, time.Minute); err != nil || len(evs) != 1 || evs[0].ID != eventID ||
			string(evs[0].Body) != `{"ref":"refs/heads/main"}` || evs[0].Headers["X-Github-Event"] != "push" {
			t.Errorf("ClaimEvents after upgrade: %+v, %v", evs, err)
		}
		if as, err := s.Accept(ctx, []*store.Event{{RepoID: repo.ID, DeliveryID: "d1"}}); err != nil || !as[0].Duplicate {
			t.Errorf("an old delivery is not a duplicate after upgrade: %+v, %v", as, err)
		}
		if l, err := s.Lease(ctx, store.LeaseRequest{Owner: "w", TTL: time.Minute}); err != nil || l != nil {
			t.Errorf("job of a blocked run leased after upgrade: %+v, %v", l, err)
		}
		runs, err := s.CreateRuns(ctx, []store.NewRun{{Run: &store.Run{RepoID: repo.ID}, Jobs: []*store.Job{{Key: "b"}}}})
		must(t, err)
		if runs[0].Number != 2 {
			t.Errorf("new run after upgrade has number %d, want 2", runs[0].Number)
		}
		if l, err := s.Lease(ctx, store.LeaseRequest{Owner: "w", TTL: time.Minute}); err != nil || l == nil || l.Job.Key != "b" {
			t.Errorf("Lease after upgrade: %+v, %v", l, err)
		}
	})
}

// checkAdoptedTokens: after schema 8 the old tokens belong to a user
// "admin", server admin and admin of their organisation, each with its old
// role as its scope; the agent-role token no longer works.
func checkAdoptedTokens(t *testing.T, s *DB, orgID int64) {
	t.Helper()
	ctx := t.Context()
	admin, err := s.UserByName(ctx, "admin")
	if err != nil || !admin.ServerAdmin || admin.PasswordHash != "" {
		t.Fatalf("user admin after upgrade: %+v, %v", admin, err)
	}
	if m, err := s.Member(ctx, orgID, admin.ID); err != nil || m.Role != store.OrgAdmin {
		t.Errorf("admin's membership after upgrade: %+v, %v", m, err)
	}
	for hash, scope := range map[string]store.Role{"h": store.RoleAdmin, "r": store.RoleRead} {
		tok, err := s.TokenByHash(ctx, []byte(hash))
		if err != nil || tok.OrgID != orgID || tok.UserID != admin.ID || tok.Role != scope || tok.Kind != store.TokenAPI || tok.Expired(time.Now()) {
			t.Errorf("token %s after upgrade: %+v, %v", hash, tok, err)
		}
	}
	if tok, err := s.TokenByHash(ctx, []byte("a")); err != nil || !tok.Expired(time.Now()) {
		t.Errorf("agent-role token after upgrade: %+v, %v; want expired", tok, err)
	}
	if list, err := s.ListAudit(ctx, orgID, store.AuditFilter{Server: true}); err != nil || len(list) != 1 || list[0].Action != "user.create" {
		t.Errorf("audit after upgrade: %+v, %v", list, err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentOpen: replicas starting together migrate once.
func TestConcurrentOpen(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				s, err := Open(t.Context(), dsn, Options{})
				if err != nil {
					t.Error(err)
					return
				}
				s.Close()
			})
		}
		wg.Wait()
	})
}

func TestNewerSchemaRefused(t *testing.T) {
	s, path := openTestSQLite(t, Options{})
	_, err := s.w.Exec(`INSERT INTO schema_migrations (version, applied) VALUES ($1, 0)`, SchemaVersion+1)
	must(t, err)
	s.Close()
	_, err = Open(t.Context(), "sqlite://"+path, Options{})
	if !errs.Is(err, errs.Invalid) {
		t.Fatalf("opening a database from a newer release: %v, want an Invalid error", err)
	}
}

func TestOpenBadAddress(t *testing.T) {
	for _, dsn := range []string{"", "x.db?mode=ro", ":memory:"} {
		if _, err := Open(t.Context(), dsn, Options{}); !errs.Is(err, errs.Invalid) {
			t.Errorf("Open(%q) = %v, want an Invalid error", dsn, err)
		}
	}
	if _, err := Open(t.Context(), filepath.Join(t.TempDir(), "no", "such", "dir", "x.db"), Options{}); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
}

// TestDurable: what a commit acknowledged is there after a reopen.
func TestDurable(t *testing.T) {
	s, repo, path := repoSQLite(t)
	ctx := t.Context()
	as, err := s.Accept(ctx, []*store.Event{{RepoID: repo.ID, DeliveryID: "d", Body: []byte("payload")}})
	must(t, err)
	runs, err := s.CreateRuns(ctx, []store.NewRun{{Run: &store.Run{RepoID: repo.ID}, Jobs: []*store.Job{{Key: "a"}}}})
	must(t, err)
	must(t, s.Close())

	s2, err := Open(ctx, path, Options{})
	must(t, err)
	defer s2.Close()
	if s2.Dialect() != "sqlite" {
		t.Errorf("Dialect = %q", s2.Dialect())
	}
	ev, err := s2.GetEvent(ctx, repo.OrgID, as[0].ID)
	if err != nil || string(ev.Body) != "payload" {
		t.Fatalf("event after reopen: %+v, %v", ev, err)
	}
	if r, err := s2.GetRun(ctx, repo.OrgID, runs[0].ID); err != nil || r.Status != store.StatusQueued {
		t.Fatalf("run after reopen: %+v, %v", r, err)
	}
	if l, err := s2.Lease(ctx, store.LeaseRequest{Owner: "w", TTL: time.Minute}); err != nil || l == nil {
		t.Fatalf("queue after reopen: %+v, %v", l, err)
	}
}

// TestMigrationLabelKeys: jobs queued before migration 3 are leased by
// their labels after it.
func TestMigrationLabelKeys(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		old, err := Open(ctx, dsn, Options{MaxMigration: 2})
		must(t, err)
		org, err := old.EnsureOrg(ctx, "acme")
		must(t, err)
		repo := &store.Repo{OrgID: org.ID, Name: "acme/app"}
		createRepoV1(t, old, repo)
		var runID int64
		must(t, old.w.QueryRowContext(ctx, `INSERT INTO runs (org_id, repo_id, event_id, number, workflow, name, event,
			ref, sha, trigger_source, status, inputs, event_json, workflow_yaml, concurrency_group, cancel_in_progress,
			attempt, rerun_of, created) VALUES ($1, $2, 0, 1, 'ci.yml', 'ci', 'push', 'refs/heads/main', 'abc', 'webhook',
			'queued', '{}', $3, $3, '', 0, 1, 0, 1) RETURNING id`, org.ID, repo.ID, []byte{}).Scan(&runID))
		for _, j := range []struct{ key, labels string }{
			{"gpu", `["GPU"]`}, {"linux", `["Linux","${{ matrix.os }}"]`}, {"none", `[]`},
		} {
			_, err = old.w.ExecContext(ctx, `INSERT INTO jobs (run_id, org_id, repo_id, job_key, name, needs, status,
				priority, labels, backend, max_attempts, results, reused_from, created) VALUES ($1, $2, $3, $4, $4, '[]',
				'queued', 0, $5, '', 2, $6, 0, 1)`, runID, org.ID, repo.ID, j.key, j.labels, []byte{})
			must(t, err)
		}
		must(t, old.Close())

		s, err := Open(ctx, dsn, Options{})
		must(t, err)
		defer s.Close()
		var got []string
		for {
			l, err := s.Lease(ctx, store.LeaseRequest{Owner: "w", TTL: time.Minute, Labels: []string{"linux"}})
			must(t, err)
			if l == nil {
				break
			}
			got = append(got, l.Job.Key)
		}
		if fmt.Sprint(got) != "[linux none]" {
			t.Errorf("a linux worker leased %v after the upgrade, want [linux none]", got)
		}
	})
}
