package sqlstore

import (
	"context"
	dbsql "database/sql"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

const tokenCols = `id, org_id, user_id, name, role, kind, hash, expires, created, last_used`

func scanToken(sc scanner) (*store.Token, error) {
	var t store.Token
	var role string
	var expires, created, lastUsed int64
	if err := sc.Scan(&t.ID, &t.OrgID, &t.UserID, &t.Name, &role, &t.Kind, &t.Hash, &expires, &created, &lastUsed); err != nil {
		return nil, err
	}
	t.Role, t.Expires, t.Created, t.LastUsed = store.Role(role), tm(expires), tm(created), tm(lastUsed)
	return &t, nil
}

func checkToken(op string, t *store.Token) error {
	switch {
	case !store.ValidScope(t.Role):
		return errs.E(op, errs.Invalid, "unknown token scope %q (read, write or admin)", t.Role)
	case len(t.Hash) == 0 || t.OrgID == 0 || t.UserID == 0:
		return errs.E(op, errs.Invalid, "a token needs an organisation, a user and a hash")
	case t.Kind != "" && t.Kind != store.TokenAPI && t.Kind != store.TokenSession:
		return errs.E(op, errs.Invalid, "unknown token kind %q", t.Kind)
	}
	if t.Kind == "" {
		t.Kind = store.TokenAPI
	}
	return nil
}

// CreateToken stores t and sets its ID and Created. Conflict when a token
// with the same hash exists.
func (s *DB) CreateToken(ctx context.Context, t *store.Token) error {
	const op = "store.CreateToken"
	if err := checkToken(op, t); err != nil {
		return err
	}
	return s.write(ctx, op, func(tx *dbsql.Tx) error {
		if t.Kind == store.TokenSession {
			// Each login makes a session: the user's expired ones go.
			if _, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE user_id = $1 AND kind = 'session' AND expires > 0 AND expires <= $2`,
				t.UserID, us(now())); err != nil {
				return err
			}
		}
		return insertToken(ctx, tx, t)
	})
}

func insertToken(ctx context.Context, tx *dbsql.Tx, t *store.Token) error {
	created := now()
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO tokens (org_id, user_id, name, role, kind, hash, expires, created, last_used)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
		t.OrgID, t.UserID, t.Name, string(t.Role), t.Kind, t.Hash, us(t.Expires), us(created), us(t.LastUsed)).Scan(&id)
	if err != nil {
		return err
	}
	t.ID, t.Created = id, created
	return nil
}

// lastUsedEvery bounds how often TokenByHash writes: an exact last-use
// time is not worth an fsync on every API request.
const lastUsedEvery = time.Minute

// TokenByHash returns the token with hash and records its use.
func (s *DB) TokenByHash(ctx context.Context, hash []byte) (*store.Token, error) {
	const op = "store.TokenByHash"
	t, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = $1`, blob(hash)))
	if err != nil {
		return nil, notFound(op, err, "no such token")
	}
	if n := now(); n.Sub(t.LastUsed) >= lastUsedEvery && !t.Expired(n) {
		err := s.write(ctx, op, func(tx *dbsql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE tokens SET last_used = $1 WHERE id = $2 AND last_used < $1`, us(n), t.ID)
			return err
		})
		if err != nil {
			return nil, err
		}
		t.LastUsed = n
	}
	return t, nil
}

// CountTokens counts the tokens of an organisation.
func (s *DB) CountTokens(ctx context.Context, orgID int64) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens WHERE org_id = $1`, orgID).Scan(&n)
	return n, mapErr("store.CountTokens", err)
}

// ListTokens lists a user's tokens by id.
func (s *DB) ListTokens(ctx context.Context, userID int64) ([]*store.Token, error) {
	ts, err := queryAll(ctx, s.r, scanToken, `SELECT `+tokenCols+` FROM tokens WHERE user_id = $1 ORDER BY id`, userID)
	return ts, mapErr("store.ListTokens", err)
}

// RevokeToken deletes a token of the user.
func (s *DB) RevokeToken(ctx context.Context, userID, id int64) error {
	const op = "store.RevokeToken"
	return s.write(ctx, op, func(tx *dbsql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE id = $1 AND user_id = $2`, id, userID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errs.E(op, errs.NotFound, "no token %d", id)
		}
		return nil
	})
}

// RotateToken gives a token of the user a new hash.
func (s *DB) RotateToken(ctx context.Context, userID, id int64, hash []byte) (*store.Token, error) {
	const op = "store.RotateToken"
	if len(hash) == 0 {
		return nil, errs.E(op, errs.Invalid, "empty token hash")
	}
	var t *store.Token
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tokens SET hash = $1, last_used = 0 WHERE id = $2 AND user_id = $3`, hash, id, userID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errs.E(op, errs.NotFound, "no token %d", id)
		}
		t, err = scanToken(tx.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE id = $1`, id))
		return err
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}
