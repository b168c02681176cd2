package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/secrets"
	"github.com/conveyor-ci/conveyor/internal/store"
	sqlstore "github.com/conveyor-ci/conveyor/internal/store/sql"
)

func clearKeyEnv(t *testing.T) {
	for _, v := range []string{envSecretKey, envSecretKeyOld, envSecretKeyNew} {
		t.Setenv(v, "")
	}
}

// seedRepo stores a repository with a webhook secret under keys.
func seedRepo(t *testing.T, dsn string, keys *secrets.Keyring) {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), dsn, sqlstore.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	org, err := st.EnsureOrg(t.Context(), "default")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateRepo(t.Context(), &store.Repo{OrgID: org.ID, Name: "acme/app", Secret: "hook-secret"}); err != nil {
		t.Fatal(err)
	}
}

func storedRepoSecret(t *testing.T, dsn string, keys *secrets.Keyring) (string, error) {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), dsn, sqlstore.Options{Keys: keys})
	if err != nil {
		return "", err
	}
	defer st.Close()
	r, err := st.RepoByName(t.Context(), 1, "acme/app")
	if err != nil {
		return "", err
	}
	return r.Secret, nil
}

// The key file is made 0600 on first start, a looser one is refused, and
// rotate-key moves every credential to a new key file, keeping the old key
// as .old; the server then starts with the new key alone.
func TestRotateKeyFile(t *testing.T) {
	clearKeyEnv(t)
	data := t.TempDir()
	dsn := filepath.Join(data, "conveyor.db")
	src := keySourceOf(data, "")
	keys, _, err := src.keyring(true)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(src.file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	seedRepo(t, dsn, keys)

	var out, errOut bytes.Buffer
	if code := adminMain(t.Context(), []string{"rotate-key", "--data", data}, &out, &errOut); code != 0 {
		t.Fatalf("rotate-key = %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "re-encrypted 1 rows") {
		t.Errorf("rotate-key said %q", out.String())
	}
	newKey, err := secrets.LoadKeyFile(src.file)
	if err != nil || newKey.ID() == keys.Current() {
		t.Fatalf("key file after rotation: %v, same key %v", err, newKey != nil && newKey.ID() == keys.Current())
	}
	if old, err := secrets.LoadKeyFile(src.file + ".old"); err != nil || old.ID() != keys.Current() {
		t.Errorf(".old: %v", err)
	}
	if _, err := os.Stat(src.file + ".new"); !os.IsNotExist(err) {
		t.Errorf(".new left behind: %v", err)
	}
	if got, err := storedRepoSecret(t, dsn, secrets.NewKeyring(newKey)); err != nil || got != "hook-secret" {
		t.Errorf("with the new key alone: %q, %v", got, err)
	}
	if _, err := storedRepoSecret(t, dsn, keys); err == nil {
		t.Error("the old key alone still opens the credentials")
	}
	if again, _, err := src.keyring(true); err != nil || again.Current() != newKey.ID() {
		t.Errorf("next start: %v", err)
	}

	if err := os.Chmod(src.file, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.keyring(true); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a key file others may read: %v", err)
	}
}

// With the key in the environment, rotate-key takes the new key from
// CONVEYOR_SECRET_KEY_NEW; afterwards the new key opens, with the old one
// kept readable in CONVEYOR_SECRET_KEY_OLD.
func TestRotateKeyEnv(t *testing.T) {
	clearKeyEnv(t)
	data := t.TempDir()
	dsn := filepath.Join(data, "conveyor.db")
	oldText, _ := secrets.GenerateKey()
	newText, _ := secrets.GenerateKey()
	t.Setenv(envSecretKey, oldText)
	keys, from, err := keySourceOf(data, "").keyring(true)
	if err != nil || from != envSecretKey {
		t.Fatalf("keyring from %q: %v", from, err)
	}
	if _, err := os.Stat(filepath.Join(data, secrets.KeyFileName)); !os.IsNotExist(err) {
		t.Errorf("a key file was made although the key is in the environment")
	}
	seedRepo(t, dsn, keys)
	var out, errOut bytes.Buffer
	if code := adminMain(t.Context(), []string{"rotate-key", "--data", data}, &out, &errOut); code == 0 ||
		!strings.Contains(errOut.String(), envSecretKeyNew) {
		t.Errorf("without %s: %d %q", envSecretKeyNew, code, errOut.String())
	}
	t.Setenv(envSecretKeyNew, newText)
	errOut.Reset()
	if code := adminMain(t.Context(), []string{"rotate-key", "--data", data}, &out, &errOut); code != 0 {
		t.Fatalf("rotate-key = %d: %s", code, errOut.String())
	}
	t.Setenv(envSecretKey, newText)
	t.Setenv(envSecretKeyOld, oldText)
	rotated, _, err := keySourceOf(data, "").keyring(true)
	if err != nil || len(rotated.IDs()) != 2 {
		t.Fatalf("keyring with an old key: %v", err)
	}
	newOnly, _ := secrets.ParseKey(newText)
	if got, err := storedRepoSecret(t, dsn, secrets.NewKeyring(newOnly)); err != nil || got != "hook-secret" {
		t.Errorf("with the new key alone: %q, %v", got, err)
	}
	t.Setenv(envSecretKey, "bad")
	if _, _, err := keySourceOf(data, "").keyring(true); err == nil || !strings.Contains(err.Error(), envSecretKey) {
		t.Errorf("a bad key: %v", err)
	}
}
