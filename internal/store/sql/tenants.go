package sqlstore

import (
	"context"
	dbsql "database/sql"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// EnsureOrg returns the organisation called name, creating it if missing.
func (s *DB) EnsureOrg(ctx context.Context, name string) (*store.Org, error) {
	const op = "store.EnsureOrg"
	if name == "" {
		return nil, errs.E(op, errs.Invalid, "empty organisation name")
	}
	var o store.Org
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO orgs (name, created) VALUES ($1, $2)
			ON CONFLICT (name) DO NOTHING`, name, us(now())); err != nil {
			return err
		}
		var created int64
		err := tx.QueryRowContext(ctx, `SELECT id, name, created FROM orgs WHERE name = $1`, name).
			Scan(&o.ID, &o.Name, &created)
		o.Created = tm(created)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &o, nil
}

func validRole(r store.Role) bool {
	switch r {
	case store.RoleAdmin, store.RoleWrite, store.RoleRead, store.RoleAgent:
		return true
	}
	return false
}

// CreateToken stores t and sets its ID and Created. Conflict when a token
// with the same hash exists.
func (s *DB) CreateToken(ctx context.Context, t *store.Token) error {
	const op = "store.CreateToken"
	if !validRole(t.Role) {
		return errs.E(op, errs.Invalid, "unknown role %q", t.Role)
	}
	if len(t.Hash) == 0 || t.OrgID == 0 {
		return errs.E(op, errs.Invalid, "a token needs an organisation and a hash")
	}
	_, err := s.createToken(ctx, op, t, false)
	return err
}

// CreateFirstToken creates t when its organisation has none (see
// store.Tokens).
func (s *DB) CreateFirstToken(ctx context.Context, t *store.Token) (bool, error) {
	const op = "store.CreateFirstToken"
	if !validRole(t.Role) {
		return false, errs.E(op, errs.Invalid, "unknown role %q", t.Role)
	}
	if len(t.Hash) == 0 || t.OrgID == 0 {
		return false, errs.E(op, errs.Invalid, "a token needs an organisation and a hash")
	}
	return s.createToken(ctx, op, t, true)
}

func (s *DB) createToken(ctx context.Context, op string, t *store.Token, first bool) (bool, error) {
	created := now()
	var id int64
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		id = 0
		if first {
			// The organisation's row lock (PostgreSQL) serialises replicas.
			var org int64
			if err := tx.QueryRowContext(ctx, `SELECT id FROM orgs WHERE id = $1`+s.forUpdate, t.OrgID).Scan(&org); err != nil {
				return notFound(op, err, "no organisation %d", t.OrgID)
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens WHERE org_id = $1`, t.OrgID).Scan(&n); err != nil || n > 0 {
				return err
			}
		}
		return tx.QueryRowContext(ctx, `INSERT INTO tokens (org_id, name, role, hash, created, last_used)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			t.OrgID, t.Name, string(t.Role), t.Hash, us(created), us(t.LastUsed)).Scan(&id)
	})
	if err != nil || id == 0 {
		return false, err
	}
	t.ID, t.Created = id, created
	return true, nil
}

// lastUsedEvery bounds how often TokenByHash writes: an exact last-use
// time is not worth an fsync on every API request.
const lastUsedEvery = time.Minute

// TokenByHash returns the token with hash and records its use.
func (s *DB) TokenByHash(ctx context.Context, hash []byte) (*store.Token, error) {
	const op = "store.TokenByHash"
	var t store.Token
	var role string
	var created, lastUsed int64
	err := s.r.QueryRowContext(ctx, `SELECT id, org_id, name, role, hash, created, last_used
		FROM tokens WHERE hash = $1`, blob(hash)).
		Scan(&t.ID, &t.OrgID, &t.Name, &role, &t.Hash, &created, &lastUsed)
	if err != nil {
		return nil, notFound(op, err, "no such token")
	}
	t.Role, t.Created, t.LastUsed = store.Role(role), tm(created), tm(lastUsed)
	if n := now(); n.Sub(t.LastUsed) >= lastUsedEvery {
		err := s.write(ctx, op, func(tx *dbsql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE tokens SET last_used = $1 WHERE id = $2 AND last_used < $1`, us(n), t.ID)
			return err
		})
		if err != nil {
			return nil, err
		}
		t.LastUsed = n
	}
	return &t, nil
}

// CountTokens counts the tokens of an organisation.
func (s *DB) CountTokens(ctx context.Context, orgID int64) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens WHERE org_id = $1`, orgID).Scan(&n)
	return n, mapErr("store.CountTokens", err)
}

// CreateRepo stores r and sets its ID and Created; Conflict when the
// organisation has a repository of that name.
func (s *DB) CreateRepo(ctx context.Context, r *store.Repo) error {
	const op = "store.CreateRepo"
	if r.OrgID == 0 || r.Name == "" {
		return errs.E(op, errs.Invalid, "a repository needs an organisation and a name")
	}
	created := now()
	sealed, err := s.sealRepo(r)
	if err != nil {
		return err
	}
	var id int64
	err = s.write(ctx, op, func(tx *dbsql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO repos (org_id, name, url, forge, secret, branch,
			allow_sha1, status_token, api_url, clone_user, clone_password, created)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`,
			r.OrgID, r.Name, r.URL, r.Forge, sealed[0], r.Branch, b2i(r.AllowSHA1), sealed[1], r.APIURL,
			r.CloneUser, sealed[2], us(created)).Scan(&id)
	})
	if errs.Is(err, errs.Conflict) {
		return errs.E(op, errs.Conflict, "repository %q already exists", r.Name)
	}
	if err != nil {
		return err
	}
	r.ID, r.Created = id, created
	return nil
}

// GetRepo returns a repository of the organisation.
func (s *DB) GetRepo(ctx context.Context, orgID, id int64) (*store.Repo, error) {
	st, err := s.prepared(ctx, `SELECT `+repoCols+` FROM repos WHERE id = $1 AND org_id = $2`)
	if err != nil {
		return nil, mapErr("store.GetRepo", err)
	}
	r, err := scanRepo(st.QueryRowContext(ctx, id, orgID))
	if err != nil {
		return nil, notFound("store.GetRepo", err, "no repository %d", id)
	}
	if err := s.openRepo(r); err != nil {
		return nil, err
	}
	return r, nil
}

// RepoForHook returns a repository by id in any organisation: the webhook
// signature check that follows is what authenticates the caller.
func (s *DB) RepoForHook(ctx context.Context, id int64) (*store.Repo, error) {
	st, err := s.prepared(ctx, `SELECT `+repoCols+` FROM repos WHERE id = $1`)
	if err != nil {
		return nil, mapErr("store.RepoForHook", err)
	}
	r, err := scanRepo(st.QueryRowContext(ctx, id))
	if err != nil {
		return nil, notFound("store.RepoForHook", err, "no repository %d", id)
	}
	if err := s.openRepo(r); err != nil {
		return nil, err
	}
	return r, nil
}

// RepoByName returns the organisation's repository called name.
func (s *DB) RepoByName(ctx context.Context, orgID int64, name string) (*store.Repo, error) {
	r, err := scanRepo(s.r.QueryRowContext(ctx, `SELECT `+repoCols+` FROM repos WHERE org_id = $1 AND name = $2`, orgID, name))
	if err != nil {
		return nil, notFound("store.RepoByName", err, "no repository %q", name)
	}
	if err := s.openRepo(r); err != nil {
		return nil, err
	}
	return r, nil
}

// AllRepos lists every organisation's repositories, for the server's own
// loops (cron); no API reaches it.
func (s *DB) AllRepos(ctx context.Context) ([]*store.Repo, error) {
	rs, err := queryAll(ctx, s.r, s.scanRepo, `SELECT `+repoCols+` FROM repos ORDER BY id`)
	return rs, mapErr("store.AllRepos", err)
}

// ListRepos lists the organisation's repositories by name.
func (s *DB) ListRepos(ctx context.Context, orgID int64) ([]*store.Repo, error) {
	rs, err := queryAll(ctx, s.r, s.scanRepo, `SELECT `+repoCols+` FROM repos WHERE org_id = $1 ORDER BY name`, orgID)
	return rs, mapErr("store.ListRepos", err)
}
