package sqlstore

import (
	"context"
	dbsql "database/sql"
	"sort"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/secrets"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// The repository columns holding credentials, sealed with Options.Keys
// (see internal/secrets); the purpose of each is "repos." + the column.
var repoSecretCols = []string{"secret", "status_token", "clone_password"}

// repoSecrets are r's fields of repoSecretCols, in that order.
func repoSecrets(r *store.Repo) []*string {
	return []*string{&r.Secret, &r.StatusToken, &r.ClonePassword}
}

// sealRepo returns r's credentials sealed for storage, in repoSecretCols'
// order; as they are without a keyring (tests).
func (s *DB) sealRepo(r *store.Repo) ([]any, error) {
	out := make([]any, len(repoSecretCols))
	for i, f := range repoSecrets(r) {
		v := *f
		if s.keys != nil {
			var err error
			if v, err = s.keys.Seal("repos."+repoSecretCols[i], v); err != nil {
				return nil, err
			}
		}
		out[i] = v
	}
	return out, nil
}

// openRepo decrypts r's credentials in place. A value written before
// encryption (no keyring then) reads as it is; the next Open with a
// keyring seals it.
func (s *DB) openRepo(r *store.Repo) error {
	for i, f := range repoSecrets(r) {
		if !secrets.IsSealed(*f) {
			continue
		}
		if s.keys == nil {
			return errs.E("store", errs.Invalid, "repository %q has encrypted credentials and no secret key is loaded", r.Name)
		}
		v, err := s.keys.Open("repos."+repoSecretCols[i], *f)
		if err != nil {
			return errs.E("store", errs.Invalid, "repository %q: %v", r.Name, err)
		}
		*f = v
	}
	return nil
}

// scanRepo scans a row of repoCols and decrypts its credentials.
func (s *DB) scanRepo(sc scanner) (*store.Repo, error) {
	r, err := scanRepo(sc)
	if err != nil {
		return nil, err
	}
	return r, s.openRepo(r)
}

// rawCreds is one repository's credential columns as stored.
type rawCreds struct {
	id   int64
	name string
	vals []string
}

func loadCreds(ctx context.Context, q querier) ([]rawCreds, error) {
	return queryAll(ctx, q, func(sc scanner) (rawCreds, error) {
		c := rawCreds{vals: make([]string, len(repoSecretCols))}
		return c, sc.Scan(&c.id, &c.name, &c.vals[0], &c.vals[1], &c.vals[2])
	}, `SELECT id, name, `+strings.Join(repoSecretCols, ", ")+` FROM repos ORDER BY id`)
}

// resealRepos seals with keys' current key every credential that is in
// plain text, and with all set every one sealed by another key too. It
// returns how many repositories it rewrote.
func resealRepos(ctx context.Context, tx *dbsql.Tx, keys *secrets.Keyring, all bool) (int, error) {
	creds, err := loadCreds(ctx, tx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range creds {
		changed := false
		for i, v := range c.vals {
			sealed := secrets.IsSealed(v)
			if v == "" || sealed && (!all || secrets.KeyID(v) == keys.Current()) {
				continue
			}
			purpose := "repos." + repoSecretCols[i]
			if sealed {
				if v, err = keys.Open(purpose, v); err != nil {
					return n, errs.E("store.RotateKey", errs.Invalid, "repository %q: %v", c.name, err)
				}
			}
			if c.vals[i], err = keys.Seal(purpose, v); err != nil {
				return n, err
			}
			changed = true
		}
		if !changed {
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE repos SET secret = $1, status_token = $2, clone_password = $3 WHERE id = $4`,
			c.vals[0], c.vals[1], c.vals[2], c.id); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// checkKeys makes sure every sealed credential can be opened, so a wrong
// or missing key stops the server at start with the reason, not at the
// first webhook. Each key id is tried once per column.
func (s *DB) checkKeys(ctx context.Context) error {
	const op = "store.Open"
	creds, err := loadCreds(ctx, s.r)
	if err != nil {
		return mapErr(op, err)
	}
	tried := map[string]bool{}
	for _, c := range creds {
		for i, v := range c.vals {
			id := secrets.KeyID(v)
			if id == "" || tried[repoSecretCols[i]+id] {
				continue
			}
			tried[repoSecretCols[i]+id] = true
			if s.keys == nil {
				return errs.E(op, errs.Invalid, "the database holds credentials encrypted with key %s and no secret key was given (CONVEYOR_SECRET_KEY or the key file)", id)
			}
			if _, err := s.keys.Open("repos."+repoSecretCols[i], v); err != nil {
				return errs.E(op, errs.Invalid, "the secret key does not open the stored credentials (repository %q): %v", c.name, err)
			}
		}
	}
	return nil
}

// sealAtOpen seals credentials left in plain text (by a release before
// encryption, or an open without a key), then checks the keys.
func (s *DB) sealAtOpen(ctx context.Context) error {
	if s.keys != nil {
		err := s.write(ctx, "store.Open", func(tx *dbsql.Tx) error {
			n, err := resealRepos(ctx, tx, s.keys, false)
			if err == nil {
				var m int
				m, err = resealSecrets(ctx, tx, s.keys, false)
				n += m
			}
			s.rewrote = s.rewrote || n > 0
			return err
		})
		if err != nil {
			return err
		}
	}
	if s.rewrote && s.dialect == dialectSQLite {
		// The plain text lives on in SQLite's free pages and its WAL
		// until they are rewritten: once, after the upgrade.
		for _, q := range []string{"VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"} {
			if _, err := s.w.ExecContext(ctx, q); err != nil {
				return mapErr("store.Open", err)
			}
		}
	}
	if err := s.checkKeys(ctx); err != nil {
		return err
	}
	return s.checkSecretKeys(ctx)
}

// RotateKey re-encrypts every stored credential and secret with the
// keyring's current key, in one transaction; the old keys must be in the
// keyring. It returns how many repositories and secrets it rewrote (0
// when all were current).
func (s *DB) RotateKey(ctx context.Context) (int, error) {
	const op = "store.RotateKey"
	if s.keys == nil {
		return 0, errs.E(op, errs.Invalid, "no secret key is loaded")
	}
	var n int
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		var err error
		n, err = resealRepos(ctx, tx, s.keys, true)
		if err != nil {
			return err
		}
		m, err := resealSecrets(ctx, tx, s.keys, true)
		n += m
		return err
	})
	return n, err
}

// KeyIDs reports the ids of the keys the stored credentials are sealed
// with, sorted ("" stands for values in plain text), for the admin
// command's report.
func (s *DB) KeyIDs(ctx context.Context) ([]string, error) {
	creds, err := loadCreds(ctx, s.r)
	if err != nil {
		return nil, mapErr("store.KeyIDs", err)
	}
	seen := map[string]bool{}
	for _, c := range creds {
		for _, v := range c.vals {
			if v != "" {
				seen[secrets.KeyID(v)] = true
			}
		}
	}
	sec, err := loadSecrets(ctx, s.r)
	if err != nil {
		return nil, mapErr("store.KeyIDs", err)
	}
	for _, r := range sec {
		seen[secrets.KeyID(r.value)] = true
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

// scrubHeaders drops secret headers (see secrets.IsSecretHeader) from the
// events stored before they were dropped at intake, and says from how
// many. Only rows whose headers mention a suspicious word are decoded.
func scrubHeaders(ctx context.Context, tx *dbsql.Tx) (int, error) {
	type row struct {
		id      int64
		headers string
	}
	rows, err := queryAll(ctx, tx, func(sc scanner) (row, error) {
		var r row
		return r, sc.Scan(&r.id, &r.headers)
	}, `SELECT event_id, headers FROM event_payloads WHERE lower(headers) LIKE '%token%'
		OR lower(headers) LIKE '%signature%' OR lower(headers) LIKE '%auth%' OR lower(headers) LIKE '%cookie%'
		OR lower(headers) LIKE '%secret%' OR lower(headers) LIKE '%password%' OR lower(headers) LIKE '%key%'`)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rows {
		h := decodeMap(r.headers)
		kept := secrets.DropSecretHeaders(h)
		if len(kept) == len(h) {
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE event_payloads SET headers = $1 WHERE event_id = $2`, encode(kept), r.id); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
