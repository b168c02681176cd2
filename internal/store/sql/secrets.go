package sqlstore

import (
	"context"
	dbsql "database/sql"
	"strconv"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/secrets"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// secretPurpose is the additional data a secret's value is sealed with:
// its organisation, repository, environment and name, so that a sealed
// value copied to another row (another repository's, another name) does
// not open.
func secretPurpose(sc store.Scope, name string) string {
	return "secrets." + strconv.FormatInt(sc.OrgID, 10) + "." + strconv.FormatInt(sc.RepoID, 10) + "." +
		strconv.Quote(sc.Env) + "." + name
}

func checkSecret(op string, s *store.Secret) error {
	switch {
	case s.Kind != store.KindSecret && s.Kind != store.KindVar:
		return errs.E(op, errs.Invalid, "unknown kind %q (secret or var)", s.Kind)
	case s.Scope.OrgID == 0 || s.Name == "":
		return errs.E(op, errs.Invalid, "a secret needs an organisation and a name")
	case s.Scope.RepoID == 0 && s.Scope.Env != "":
		return errs.E(op, errs.Invalid, "an environment belongs to a repository")
	}
	return nil
}

// sealValue seals a secret's value (variables stay as they are); as it
// is without a keyring (tests).
func (s *DB) sealValue(x *store.Secret) (string, error) {
	if x.Kind != store.KindSecret || s.keys == nil {
		return x.Value, nil
	}
	return s.keys.Seal(secretPurpose(x.Scope, x.Name), x.Value)
}

func (s *DB) openValue(kind string, sc store.Scope, name, v string) (string, error) {
	if kind != store.KindSecret || !secrets.IsSealed(v) {
		return v, nil
	}
	if s.keys == nil {
		return "", errs.E("store", errs.Invalid, "secret %s is encrypted and no secret key is loaded", name)
	}
	out, err := s.keys.Open(secretPurpose(sc, name), v)
	if err != nil {
		return "", errs.E("store", errs.Invalid, "secret %s: %v", name, err)
	}
	return out, nil
}

// PutSecret creates or replaces a secret or variable.
func (s *DB) PutSecret(ctx context.Context, x *store.Secret) error {
	const op = "store.PutSecret"
	if err := checkSecret(op, x); err != nil {
		return err
	}
	v, err := s.sealValue(x)
	if err != nil {
		return err
	}
	updated := now()
	err = s.write(ctx, op, func(tx *dbsql.Tx) error {
		if x.Scope.RepoID != 0 {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM repos WHERE id = $1 AND org_id = $2`,
				x.Scope.RepoID, x.Scope.OrgID).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return errs.E(op, errs.NotFound, "repository %d", x.Scope.RepoID)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO secrets (org_id, repo_id, env, kind, name, value, updated, updated_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (org_id, repo_id, env, kind, name) DO UPDATE
			SET value = excluded.value, updated = excluded.updated, updated_by = excluded.updated_by`,
			x.Scope.OrgID, x.Scope.RepoID, x.Scope.Env, x.Kind, x.Name, v, us(updated), x.UpdatedBy)
		return err
	})
	if err == nil {
		x.Updated = updated
	}
	return err
}

// DeleteSecret removes a secret or variable.
func (s *DB) DeleteSecret(ctx context.Context, kind string, sc store.Scope, name string) error {
	const op = "store.DeleteSecret"
	return s.write(ctx, op, func(tx *dbsql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM secrets WHERE org_id = $1 AND repo_id = $2 AND env = $3 AND kind = $4 AND name = $5`,
			sc.OrgID, sc.RepoID, sc.Env, kind, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errs.E(op, errs.NotFound, "%s %s", kind, name)
		}
		return nil
	})
}

const secretCols = `org_id, repo_id, env, kind, name, value, updated, updated_by`

func scanSecret(sc scanner) (*store.Secret, error) {
	var x store.Secret
	var updated int64
	err := sc.Scan(&x.Scope.OrgID, &x.Scope.RepoID, &x.Scope.Env, &x.Kind, &x.Name, &x.Value, &updated, &x.UpdatedBy)
	x.Updated = tm(updated)
	return &x, err
}

// ListSecrets lists by scope (organisation first), then name; secrets'
// values are left empty.
func (s *DB) ListSecrets(ctx context.Context, orgID int64, f store.SecretFilter) ([]*store.Secret, error) {
	q := `SELECT ` + secretCols + ` FROM secrets WHERE org_id = $1 AND kind = $2`
	args := []any{orgID, f.Kind}
	if f.RepoID != 0 {
		q += ` AND repo_id IN (0, $3)`
		args = append(args, f.RepoID)
		if f.Env != "" {
			q += ` AND env IN ('', $4)`
			args = append(args, f.Env)
		}
	}
	out, err := queryAll(ctx, s.r, scanSecret, q+` ORDER BY repo_id, env, name`, args...)
	if err != nil {
		return nil, mapErr("store.ListSecrets", err)
	}
	for _, x := range out {
		if x.Kind == store.KindSecret {
			x.Value = ""
		}
	}
	return out, nil
}

// JobValues reads the organisation's, the repository's and the
// environment's values, narrowest last so that it wins.
func (s *DB) JobValues(ctx context.Context, orgID, repoID int64, env string) (map[string]string, map[string]string, error) {
	const op = "store.JobValues"
	rows, err := queryAll(ctx, s.r, scanSecret, `SELECT `+secretCols+` FROM secrets
		WHERE org_id = $1 AND (repo_id = 0 OR repo_id = $2 AND (env = '' OR env = $3))
		ORDER BY repo_id, env`, orgID, repoID, env)
	if err != nil {
		return nil, nil, mapErr(op, err)
	}
	sec, vars := map[string]string{}, map[string]string{}
	for _, x := range rows {
		v, err := s.openValue(x.Kind, x.Scope, x.Name, x.Value)
		if err != nil {
			return nil, nil, err
		}
		if x.Kind == store.KindSecret {
			sec[x.Name] = v
		} else {
			vars[x.Name] = v
		}
	}
	return sec, vars, nil
}

// rawSecret is a stored secret's row as it is.
type rawSecret struct {
	id    int64
	scope store.Scope
	name  string
	value string
}

func loadSecrets(ctx context.Context, q querier) ([]rawSecret, error) {
	return queryAll(ctx, q, func(sc scanner) (rawSecret, error) {
		var r rawSecret
		return r, sc.Scan(&r.id, &r.scope.OrgID, &r.scope.RepoID, &r.scope.Env, &r.name, &r.value)
	}, `SELECT id, org_id, repo_id, env, name, value FROM secrets WHERE kind = 'secret' ORDER BY id`)
}

// resealSecrets is resealRepos for the secrets table: plain values are
// sealed, and with all set those sealed by another key than the current
// one are sealed again. It returns how many it rewrote.
func resealSecrets(ctx context.Context, tx *dbsql.Tx, keys *secrets.Keyring, all bool) (int, error) {
	rows, err := loadSecrets(ctx, tx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rows {
		sealed := secrets.IsSealed(r.value)
		if sealed && (!all || secrets.KeyID(r.value) == keys.Current()) {
			continue
		}
		purpose, v := secretPurpose(r.scope, r.name), r.value
		if sealed {
			if v, err = keys.Open(purpose, v); err != nil {
				return n, errs.E("store.RotateKey", errs.Invalid, "secret %s: %v", r.name, err)
			}
		}
		if v, err = keys.Seal(purpose, v); err != nil {
			return n, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE secrets SET value = $1 WHERE id = $2`, v, r.id); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// checkSecretKeys opens one secret per key id, so a wrong key stops the
// server at start rather than at a job.
func (s *DB) checkSecretKeys(ctx context.Context) error {
	const op = "store.Open"
	rows, err := loadSecrets(ctx, s.r)
	if err != nil {
		return mapErr(op, err)
	}
	tried := map[string]bool{}
	for _, r := range rows {
		id := secrets.KeyID(r.value)
		if id == "" || tried[id] {
			continue
		}
		tried[id] = true
		if s.keys == nil {
			return errs.E(op, errs.Invalid, "the database holds secrets encrypted with key %s and no secret key was given (CONVEYOR_SECRET_KEY or the key file)", id)
		}
		if _, err := s.keys.Open(secretPurpose(r.scope, r.name), r.value); err != nil {
			return errs.E(op, errs.Invalid, "the secret key does not open the stored secret %s: %v", r.name, err)
		}
	}
	return nil
}
