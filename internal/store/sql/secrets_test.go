package sqlstore

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/secrets"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// Secrets are sealed at rest (variables are not), bound to their row, and
// rotate-key moves them to the new key.
func TestSecretsEncryptedAtRest(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		oldK, newK := testKey(t), testKey(t)
		s, err := Open(ctx, dsn, Options{Keys: secrets.NewKeyring(oldK)})
		must(t, err)
		repo := createTestRepo(t, s)
		sc := store.Scope{OrgID: repo.OrgID, RepoID: repo.ID}
		must(t, s.PutSecret(ctx, &store.Secret{Kind: store.KindSecret, Scope: sc, Name: "A", Value: "plain-secret-value-A"}))
		must(t, s.PutSecret(ctx, &store.Secret{Kind: store.KindSecret, Scope: sc, Name: "B", Value: "plain-secret-value-B"}))
		must(t, s.PutSecret(ctx, &store.Secret{Kind: store.KindVar, Scope: sc, Name: "V", Value: "a-variable"}))
		must(t, s.Close())

		db := rawDB(t, dsn)
		var stored string
		must(t, db.QueryRow(`SELECT value FROM secrets WHERE name = 'A'`).Scan(&stored))
		if !secrets.IsSealed(stored) || strings.Contains(stored, "plain-secret-value") {
			t.Fatalf("secret A stored as %q", stored)
		}
		if !strings.HasPrefix(dsn, "postgres") {
			files, _ := filepath.Glob(dsn + "*")
			for _, f := range files {
				b, err := os.ReadFile(f)
				must(t, err)
				if strings.Contains(string(b), "plain-secret-value") {
					t.Errorf("a secret in plain text in %s", filepath.Base(f))
				}
			}
		}
		// A sealed value copied to another row does not open there.
		_, err = db.Exec(`UPDATE secrets SET value = $1 WHERE name = 'B'`, stored)
		must(t, err)
		if s, err := Open(ctx, dsn, Options{Keys: secrets.NewKeyring(oldK)}); err == nil {
			_, _, err = s.JobValues(ctx, repo.OrgID, repo.ID, "")
			s.Close()
			if !errs.Is(err, errs.Invalid) {
				t.Errorf("a moved value: %v, want Invalid", err)
			}
		}
		_, err = db.Exec(`DELETE FROM secrets WHERE name = 'B'`)
		must(t, err)

		s, err = Open(ctx, dsn, Options{Keys: secrets.NewKeyring(newK, oldK)})
		must(t, err)
		if n, err := s.RotateKey(ctx); err != nil || n != 2 { // the repository and secret A
			t.Errorf("RotateKey = %d, %v; want 2", n, err)
		}
		must(t, s.Close())
		if s, err := Open(ctx, dsn, Options{Keys: secrets.NewKeyring(oldK)}); err == nil {
			s.Close()
			t.Error("the old key alone opened the database after the rotation")
		}
		s, err = Open(ctx, dsn, Options{Keys: secrets.NewKeyring(newK)})
		must(t, err)
		defer s.Close()
		sec, vars, err := s.JobValues(ctx, repo.OrgID, repo.ID, "")
		if err != nil || sec["A"] != "plain-secret-value-A" || vars["V"] != "a-variable" {
			t.Errorf("after rotation: %v %v %v", sec, vars, err)
		}
	})
}

// BenchmarkJobValues is what a lease adds for secrets: reading and
// opening the job's values (50 organisation, 50 repository and 10
// environment secrets and 20 variables, sealed), and storing its token.
func BenchmarkJobValues(b *testing.B) {
	s, _ := openTestSQLite(b, Options{Keys: secrets.NewKeyring(testKey(b))})
	ctx := b.Context()
	org, err := s.EnsureOrg(ctx, "default")
	must(b, err)
	repo := &store.Repo{OrgID: org.ID, Name: "acme/app"}
	must(b, s.CreateRepo(ctx, repo))
	put := func(kind string, sc store.Scope, n int) {
		for i := range n {
			must(b, s.PutSecret(ctx, &store.Secret{Kind: kind, Scope: sc, Name: fmt.Sprintf("S%d", i), Value: strings.Repeat("v", 40)}))
		}
	}
	put(store.KindSecret, store.Scope{OrgID: org.ID}, 50)
	put(store.KindSecret, store.Scope{OrgID: org.ID, RepoID: repo.ID}, 50)
	put(store.KindSecret, store.Scope{OrgID: org.ID, RepoID: repo.ID, Env: "production"}, 10)
	put(store.KindVar, store.Scope{OrgID: org.ID, RepoID: repo.ID}, 20)
	runs, err := s.CreateRuns(ctx, []store.NewRun{{Run: &store.Run{OrgID: org.ID, RepoID: repo.ID, Workflow: "w", Name: "n",
		Event: "push", Ref: "refs/heads/main", SHA: "abc", Trigger: "api"}, Jobs: []*store.Job{{Key: "a", Name: "a"}}}})
	must(b, err)
	b.Run("read", func(b *testing.B) {
		for b.Loop() {
			sec, vars, err := s.JobValues(ctx, org.ID, repo.ID, "production")
			if err != nil || len(sec) != 50 || len(vars) != 20 {
				b.Fatalf("JobValues: %d %d %v", len(sec), len(vars), err)
			}
		}
	})
	b.Run("token", func(b *testing.B) {
		n := 0
		for b.Loop() {
			n++
			sum := sha256.Sum256([]byte(fmt.Sprint(n)))
			must(b, s.CreateJobToken(ctx, &store.JobToken{Hash: sum[:], OrgID: org.ID, RunID: runs[0].ID, JobID: 1, Expires: time.Now().Add(time.Hour)}))
		}
	})
}
