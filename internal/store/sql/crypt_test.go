package sqlstore

import (
	"bytes"
	dbsql "database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/secrets"
	"github.com/conveyor-ci/conveyor/internal/store"
)

func testKey(t testing.TB) *secrets.Key {
	t.Helper()
	text, err := secrets.GenerateKey()
	must(t, err)
	k, err := secrets.ParseKey(text)
	must(t, err)
	return k
}

// The credentials of a test repository, each one distinctive enough to be
// found in a database file.
var testCreds = store.Repo{Name: "acme/app", Secret: "hook-secret-4ab1c9", StatusToken: "status-token-77e0d2",
	CloneUser: "bot", ClonePassword: "clone-password-93f5aa", Forge: "gitlab"}

func createTestRepo(t *testing.T, s *DB) *store.Repo {
	t.Helper()
	org, err := s.EnsureOrg(t.Context(), "default")
	must(t, err)
	r := testCreds
	r.OrgID = org.ID
	must(t, s.CreateRepo(t.Context(), &r))
	return &r
}

// rawDB opens dsn with no store on top, to read rows as they are stored.
func rawDB(t *testing.T, dsn string) *dbsql.DB {
	t.Helper()
	driver := "sqlite"
	if strings.HasPrefix(dsn, "postgres") {
		driver = "pgx"
	}
	db, err := dbsql.Open(driver, dsn)
	must(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// storedText is every credential column and stored event header, as text.
func storedText(t *testing.T, dsn string) string {
	t.Helper()
	db := rawDB(t, dsn)
	var b strings.Builder
	for _, q := range []string{`SELECT secret || ' ' || status_token || ' ' || clone_password FROM repos`, `SELECT headers FROM event_payloads`} {
		rows, err := db.Query(q)
		must(t, err)
		for rows.Next() {
			var s string
			must(t, rows.Scan(&s))
			b.WriteString(s + "\n")
		}
		must(t, rows.Err())
		rows.Close()
	}
	return b.String()
}

// plaintextLeaks lists the test secrets found in text.
func plaintextLeaks(text []byte) []string {
	var found []string
	for _, s := range []string{testCreds.Secret, testCreds.StatusToken, testCreds.ClonePassword, "gitlab-token-in-header", "sha256=feedface"} {
		if bytes.Contains(text, []byte(s)) {
			found = append(found, s)
		}
	}
	return found
}

// A repository's credentials and an event's secret headers are never in
// the database in plain text: not in the rows, not anywhere in SQLite's
// files; the store still hands them back decrypted.
func TestCredentialsEncryptedAtRest(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		keys := secrets.NewKeyring(testKey(t))
		s, err := Open(ctx, dsn, Options{Keys: keys})
		must(t, err)
		repo := createTestRepo(t, s)
		_, err = s.Accept(ctx, []*store.Event{{RepoID: repo.ID, Source: "webhook", Forge: "gitlab", Name: "push",
			DeliveryID: "d1", Body: []byte(`{}`), Headers: map[string]string{"X-Gitlab-Event": "Push Hook",
				"X-Gitlab-Token": "gitlab-token-in-header", "X-Hub-Signature-256": "sha256=feedface", "Authorization": "Bearer x"}}})
		must(t, err)
		must(t, s.Close())

		if leaks := plaintextLeaks([]byte(storedText(t, dsn))); len(leaks) > 0 {
			t.Errorf("in plain text in the rows: %v\n%s", leaks, storedText(t, dsn))
		}
		if !strings.HasPrefix(dsn, "postgres") {
			files, _ := filepath.Glob(dsn + "*") // the database, its WAL and shared memory
			for _, f := range files {
				b, err := os.ReadFile(f)
				must(t, err)
				if leaks := plaintextLeaks(b); len(leaks) > 0 {
					t.Errorf("in plain text in %s: %v", filepath.Base(f), leaks)
				}
			}
		}

		s, err = Open(ctx, dsn, Options{Keys: keys})
		must(t, err)
		defer s.Close()
		got, err := s.RepoByName(ctx, repo.OrgID, repo.Name)
		if err != nil || got.Secret != testCreds.Secret || got.StatusToken != testCreds.StatusToken ||
			got.ClonePassword != testCreds.ClonePassword || got.CloneUser != "bot" {
			t.Errorf("RepoByName = %+v, %v", got, err)
		}
		for _, get := range []func() (*store.Repo, error){
			func() (*store.Repo, error) { return s.GetRepo(ctx, repo.OrgID, repo.ID) },
			func() (*store.Repo, error) { return s.RepoForHook(ctx, repo.ID) },
		} {
			if r, err := get(); err != nil || r.Secret != testCreds.Secret {
				t.Errorf("read back %+v, %v", r, err)
			}
		}
		if rs, err := s.ListRepos(ctx, repo.OrgID); err != nil || len(rs) != 1 || rs[0].ClonePassword != testCreds.ClonePassword {
			t.Errorf("ListRepos = %+v, %v", rs, err)
		}
		evs, err := s.ClaimEvents(ctx, "w", 10, 60e9)
		must(t, err)
		if len(evs) != 1 || evs[0].Headers["X-Gitlab-Event"] != "Push Hook" || len(evs[0].Headers) != 1 {
			t.Errorf("stored headers %v: want X-Gitlab-Event only", evs[0].Headers)
		}
	})
}

// Upgrading from the schema before encryption seals the credentials written in plain text and
// drops the secret headers of stored events.
func TestMigrationSealsCredentials(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		old, err := Open(ctx, dsn, Options{MaxMigration: 8}) // before migration 9 (credentials at rest)
		must(t, err)
		repo := createTestRepo(t, old) // no keys: as the release before wrote it
		var eventID int64
		must(t, old.w.QueryRowContext(ctx, `INSERT INTO events (org_id, repo_id, source, forge, name, delivery_id,
			body_hash, received, state) VALUES ($1, $2, 'webhook', 'gitlab', 'push', 'd1', $3, $4, 'pending') RETURNING id`,
			repo.OrgID, repo.ID, []byte("hash"), us(now())).Scan(&eventID))
		_, err = old.w.ExecContext(ctx, `INSERT INTO event_payloads (event_id, headers, body) VALUES ($1, $2, $3)`, eventID,
			`{"X-Gitlab-Event":"Push Hook","X-Gitlab-Token":"gitlab-token-in-header","X-Gitlab-Event-Uuid":"u1"}`, []byte(`{}`))
		must(t, err)
		must(t, old.Close())
		if leaks := plaintextLeaks([]byte(storedText(t, dsn))); len(leaks) != 4 {
			t.Fatalf("the old release's rows hold %v in plain text; want the 3 credentials and the token", leaks)
		}

		keys := secrets.NewKeyring(testKey(t))
		s, err := Open(ctx, dsn, Options{Keys: keys})
		must(t, err)
		defer s.Close()
		if v, err := s.Version(ctx); err != nil || v != SchemaVersion || SchemaVersion < 9 {
			t.Fatalf("Version = %d, %v", v, err)
		}
		text := storedText(t, dsn)
		if leaks := plaintextLeaks([]byte(text)); len(leaks) > 0 {
			t.Errorf("still in plain text after the upgrade: %v\n%s", leaks, text)
		}
		if !strings.HasPrefix(dsn, "postgres") {
			files, _ := filepath.Glob(dsn + "*")
			for _, f := range files {
				b, err := os.ReadFile(f)
				must(t, err)
				if leaks := plaintextLeaks(b); len(leaks) > 0 {
					t.Errorf("in plain text in %s after the upgrade: %v", filepath.Base(f), leaks)
				}
			}
		}
		if !strings.Contains(text, "X-Gitlab-Event-Uuid") {
			t.Errorf("the upgrade dropped harmless headers: %s", text)
		}
		if got, err := s.RepoByName(ctx, repo.OrgID, repo.Name); err != nil || got.Secret != testCreds.Secret ||
			got.StatusToken != testCreds.StatusToken || got.ClonePassword != testCreds.ClonePassword {
			t.Errorf("after upgrade: %+v, %v", got, err)
		}
		if ids, err := s.KeyIDs(ctx); err != nil || len(ids) != 1 || ids[0] != keys.Current() {
			t.Errorf("KeyIDs = %v, %v; want [%s]", ids, err, keys.Current())
		}
	})
}

// Opening with a key that did not seal the credentials, or with none, is
// a clear error at start; the right key among others works.
func TestWrongKey(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		a, b := testKey(t), testKey(t)
		s, err := Open(ctx, dsn, Options{Keys: secrets.NewKeyring(a)})
		must(t, err)
		createTestRepo(t, s)
		must(t, s.Close())
		for name, tc := range map[string]struct {
			keys *secrets.Keyring
			want string
		}{
			"other key": {secrets.NewKeyring(b), "key " + a.ID() + ", which is not loaded"},
			"no key":    {nil, "no secret key was given"},
		} {
			s, err := Open(ctx, dsn, Options{Keys: tc.keys})
			if err == nil {
				s.Close()
			}
			if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: Open = %v; want an Invalid error saying %q", name, err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), testCreds.Secret) {
				t.Errorf("%s: the error shows a secret: %v", name, err)
			}
		}
		s, err = Open(ctx, dsn, Options{Keys: secrets.NewKeyring(b, a)})
		must(t, err)
		defer s.Close()
		if r, err := s.RepoByName(ctx, 1, testCreds.Name); err != nil || r.Secret != testCreds.Secret {
			t.Errorf("with both keys: %+v, %v", r, err)
		}
	})
}

// RotateKey re-seals every credential with the new key: afterwards the new
// key alone opens them, the old alone does not, and a second rotation has
// nothing to do.
func TestRotateKey(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		oldK, newK := testKey(t), testKey(t)
		s, err := Open(ctx, dsn, Options{Keys: secrets.NewKeyring(oldK)})
		must(t, err)
		repo := createTestRepo(t, s)
		second := testCreds
		second.OrgID, second.Name, second.StatusToken = repo.OrgID, "acme/other", "" // an empty one stays empty
		must(t, s.CreateRepo(ctx, &second))
		must(t, s.Close())

		s, err = Open(ctx, dsn, Options{Keys: secrets.NewKeyring(newK, oldK)})
		must(t, err)
		// A repository created during the rotation is sealed with the new key.
		third := testCreds
		third.OrgID, third.Name = repo.OrgID, "acme/third"
		must(t, s.CreateRepo(ctx, &third))
		if n, err := s.RotateKey(ctx); err != nil || n != 2 {
			t.Errorf("RotateKey = %d, %v; want 2 repositories rewritten", n, err)
		}
		if n, err := s.RotateKey(ctx); err != nil || n != 0 {
			t.Errorf("second RotateKey = %d, %v; want 0", n, err)
		}
		if ids, err := s.KeyIDs(ctx); err != nil || len(ids) != 1 || ids[0] != newK.ID() {
			t.Errorf("KeyIDs = %v, %v; want [%s]", ids, err, newK.ID())
		}
		must(t, s.Close())

		if s, err := Open(ctx, dsn, Options{Keys: secrets.NewKeyring(oldK)}); err == nil {
			s.Close()
			t.Error("the old key alone opened the database after the rotation")
		}
		s, err = Open(ctx, dsn, Options{Keys: secrets.NewKeyring(newK)})
		must(t, err)
		defer s.Close()
		rs, err := s.ListRepos(ctx, repo.OrgID)
		must(t, err)
		if len(rs) != 3 || rs[0].Secret != testCreds.Secret || rs[1].StatusToken != "" || rs[1].ClonePassword != testCreds.ClonePassword {
			t.Errorf("after rotation: %+v", rs)
		}
	})
}
