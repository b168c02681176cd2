package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/secrets"
	sqlstore "github.com/conveyor-ci/conveyor/internal/store/sql"
)

// Where the secret key that seals credentials at rest comes from: the
// environment (CONVEYOR_SECRET_KEY, the base64 of 32 bytes) or else a key
// file in the data folder, created with mode 0600 on first start. Old keys
// stay readable during a rotation: CONVEYOR_SECRET_KEY_OLD (comma-
// separated), or the key file's .old and .new siblings.
const (
	envSecretKey    = "CONVEYOR_SECRET_KEY"
	envSecretKeyOld = "CONVEYOR_SECRET_KEY_OLD"
	envSecretKeyNew = "CONVEYOR_SECRET_KEY_NEW"
)

// keySource is the key settings of one start.
type keySource struct {
	env, envOld, envNew string // the variables' values
	file                string // the key file (when env is empty)
}

func keySourceOf(data, file string) keySource {
	if file == "" {
		file = filepath.Join(data, secrets.KeyFileName)
	}
	return keySource{env: os.Getenv(envSecretKey), envOld: os.Getenv(envSecretKeyOld), envNew: os.Getenv(envSecretKeyNew), file: file}
}

// keyring loads the current key and the old ones; with create, a missing
// key file is made (first start). It says where the key came from.
func (k keySource) keyring(create bool) (*secrets.Keyring, string, error) {
	if k.env != "" {
		cur, err := secrets.ParseKey(k.env)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %v", envSecretKey, err)
		}
		old, err := parseKeys(envSecretKeyOld, k.envOld)
		if err != nil {
			return nil, "", err
		}
		return secrets.NewKeyring(cur, old...), envSecretKey, nil
	}
	var cur *secrets.Key
	var err error
	if create {
		var made bool
		cur, made, err = secrets.LoadOrCreateKeyFile(k.file)
		if made {
			return secrets.NewKeyring(cur), k.file + " (new)", err
		}
	} else {
		cur, err = secrets.LoadKeyFile(k.file)
	}
	if err != nil {
		return nil, "", err
	}
	old, err := siblingKeys(k.file)
	if err != nil {
		return nil, "", err
	}
	return secrets.NewKeyring(cur, old...), k.file, nil
}

func parseKeys(name, list string) ([]*secrets.Key, error) {
	var out []*secrets.Key
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		k, err := secrets.ParseKey(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// siblingKeys are the keys of file.old (the key before the last rotation)
// and file.new (a rotation that stopped half-way), when present.
func siblingKeys(file string) ([]*secrets.Key, error) {
	var out []*secrets.Key
	for _, p := range []string{file + ".old", file + ".new"} {
		k, err := secrets.LoadKeyFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// adminMain is `conveyor admin`: maintenance run beside the server on its
// database.
func adminMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) > 0 && args[0] == "rotate-key":
		return rotateKeyMain(ctx, args[1:], stdout, stderr)
	case len(args) == 1 && args[0] == "new-key":
		// A key for CONVEYOR_SECRET_KEY (replicas on PostgreSQL share one).
		k, err := secrets.GenerateKey()
		if err != nil {
			fmt.Fprintln(stderr, "conveyor admin new-key:", err)
			return 1
		}
		fmt.Fprintln(stdout, k)
		return 0
	}
	fmt.Fprintln(stderr, "usage: conveyor admin rotate-key [flags] | conveyor admin new-key")
	return 2
}

// rotateKeyMain re-encrypts every credential with a new key. With a key
// file it makes the new key beside the current one (file.new), re-seals,
// keeps the current key as file.old and moves the new one in place; every
// step leaves a state the server starts from. With CONVEYOR_SECRET_KEY
// the new key comes from CONVEYOR_SECRET_KEY_NEW.
func rotateKeyMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("admin rotate-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var data, database, keyFile, configFile string
	fs.StringVar(&configFile, "config", "", "YAML config file of the server")
	fs.StringVar(&data, "data", "conveyor-data", "the server's data directory")
	fs.StringVar(&database, "database", "", "database: postgres://... (default: SQLite in the data directory)")
	fs.StringVar(&keyFile, "secret-key-file", "", "key file (default DATA/"+secrets.KeyFileName+"); unused with "+envSecretKey)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := applyEnvAndFile(fs, configFile); err != nil {
		fmt.Fprintln(stderr, "conveyor admin rotate-key:", err)
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "conveyor admin rotate-key:", err)
		return 1
	}
	if database == "" {
		database = filepath.Join(data, "conveyor.db")
	}
	src := keySourceOf(data, keyFile)
	cur, from, err := src.keyring(false)
	if err != nil {
		return fail(err)
	}
	var newKey *secrets.Key
	if src.env != "" {
		if src.envNew == "" {
			return fail(fmt.Errorf("the key comes from %s: put the new key in %s", envSecretKey, envSecretKeyNew))
		}
		if newKey, err = secrets.ParseKey(src.envNew); err != nil {
			return fail(fmt.Errorf("%s: %v", envSecretKeyNew, err))
		}
	} else if newKey, err = newKeyFile(src.file); err != nil {
		return fail(err)
	}
	st, err := sqlstore.Open(ctx, database, sqlstore.Options{Keys: secrets.NewKeyring(newKey, cur.Keys()...)})
	if err != nil {
		return fail(err)
	}
	n, err := st.RotateKey(ctx)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "re-encrypted %d rows (repositories' credentials and secrets) with key %s (was %s, from %s)\n", n, newKey.ID(), cur.Current(), from)
	if src.env != "" {
		fmt.Fprintf(stdout, "now set %s to the new key and restart every replica; keep the old key in %s until all have restarted\n", envSecretKey, envSecretKeyOld)
		return 0
	}
	if err := swapKeyFiles(src.file); err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "%s holds the new key, %s.old the previous one: restart every replica, then delete %s.old\n", src.file, src.file, src.file)
	return 0
}

// newKeyFile is the key of file.new: made now, or left by a rotation that
// stopped half-way (then it may already seal some values).
func newKeyFile(file string) (*secrets.Key, error) {
	k, err := secrets.LoadKeyFile(file + ".new")
	if errors.Is(err, fs.ErrNotExist) {
		return secrets.WriteKeyFile(file + ".new")
	}
	return k, err
}

// swapKeyFiles keeps file's key as file.old and moves file.new to file.
// The rename is atomic: the server finds either key pair.
func swapKeyFiles(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	os.Remove(file + ".old.tmp") // a left-over would keep its mode
	if err := os.WriteFile(file+".old.tmp", b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(file+".old.tmp", file+".old"); err != nil {
		return err
	}
	return os.Rename(file+".new", file)
}
