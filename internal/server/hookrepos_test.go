package server

import (
	dbsql "database/sql"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
)

// The webhook's repository is cached; a secret changed in the database
// is taken at once for new signatures and the old one stops passing once
// the entry is stale; a repository is never verified with another's
// secret.
func TestHookRepoCacheFollowsTheSecret(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "conveyor.db")
	h := newHarness(t, harnessOpts{dsn: dsn, files: map[string]string{"README.md": "hi\n"}})
	other := newGitRepo(t, map[string]string{"README.md": "other\n"})
	var out struct {
		Repo struct {
			ID int64 `json:"id"`
		} `json:"repo"`
	}
	h.api("POST", "/api/repos", api.RepoInput{URL: "file://" + other.dir, Forge: "github", Name: "acme/other", Secret: "other-secret"}, http.StatusCreated, &out)

	n := 0
	post := func(repoID int64, secret string) int {
		t.Helper()
		n++
		body, _ := json.Marshal(map[string]any{"zen": n, "hook_id": n}) // a ping: verified, then answered 200
		saved := h.repo.ID
		h.repo.ID = repoID
		defer func() { h.repo.ID = saved }()
		code, _ := h.hookRaw("ping", body, "d-"+itoa(int64(n)), sign(secret, body))
		return code
	}
	if c := post(h.repo.ID, "s3cret"); c != http.StatusOK {
		t.Fatalf("signed with the secret: %d", c)
	}
	if c := post(out.Repo.ID, "s3cret"); c != http.StatusUnauthorized {
		t.Fatalf("signed with another repository's secret: %d", c)
	}
	if c := post(out.Repo.ID, "other-secret"); c != http.StatusOK {
		t.Fatalf("other repository, its secret: %d", c)
	}

	// Rotate the secret behind the server's back (as another replica would).
	db, err := dbsql.Open("sqlite", dsn+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE repos SET secret = 'rotated' WHERE id = $1`, h.repo.ID); err != nil {
		t.Fatal(err)
	}
	if c := post(h.repo.ID, "rotated"); c != http.StatusOK {
		t.Fatalf("signed with the new secret: %d", c)
	}
	if c := post(h.repo.ID, "s3cret"); c != http.StatusUnauthorized {
		t.Fatalf("signed with the old secret after the store was read again: %d", c)
	}
	// A stale entry is read again: the change is seen without a failed
	// signature too.
	if _, err := db.Exec(`UPDATE repos SET secret = 'rotated-again' WHERE id = $1`, h.repo.ID); err != nil {
		t.Fatal(err)
	}
	h.srv.hooks.repos.mu.Lock()
	e := h.srv.hooks.repos.m[h.repo.ID]
	e.at = e.at.Add(-hookRepoTTL - time.Millisecond)
	h.srv.hooks.repos.m[h.repo.ID] = e
	h.srv.hooks.repos.mu.Unlock()
	if c := post(h.repo.ID, "rotated"); c != http.StatusUnauthorized {
		t.Fatalf("signed with the old secret once the entry is stale: %d", c)
	}
	if c := post(h.repo.ID, "rotated-again"); c != http.StatusOK {
		t.Fatalf("signed with the newest secret: %d", c)
	}
}
