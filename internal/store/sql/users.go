package sqlstore

import (
	"context"
	dbsql "database/sql"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

const userCols = `id, name, password_hash, server_admin, created`

func scanUser(sc scanner) (*store.User, error) {
	var u store.User
	var admin, created int64
	if err := sc.Scan(&u.ID, &u.Name, &u.PasswordHash, &admin, &created); err != nil {
		return nil, err
	}
	u.ServerAdmin, u.Created = admin != 0, tm(created)
	return &u, nil
}

const memberCols = `m.org_id, m.user_id, u.name, m.role, u.server_admin`

func scanMember(sc scanner) (*store.Member, error) {
	var m store.Member
	var role string
	var admin int64
	if err := sc.Scan(&m.OrgID, &m.UserID, &m.Name, &role, &admin); err != nil {
		return nil, err
	}
	m.Role, m.ServerAdmin = store.OrgRole(role), admin != 0
	return &m, nil
}

// ValidUserName reports whether name can name a user: 1 to 64 letters,
// digits, '.', '_', '-' and '@', not starting with a punctuation mark.
func validUserName(name string) bool {
	if name == "" || len(name) > 64 || strings.ContainsRune("._-@", rune(name[0])) {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-@", c)) {
			return false
		}
	}
	return true
}

// CreateUser stores u and sets its ID and Created.
func (s *DB) CreateUser(ctx context.Context, u *store.User) error {
	const op = "store.CreateUser"
	if !validUserName(u.Name) {
		return errs.E(op, errs.Invalid, "user name %q: use 1 to 64 letters, digits, '.', '_', '-' or '@'", u.Name)
	}
	err := s.write(ctx, op, func(tx *dbsql.Tx) error { return insertUser(ctx, tx, u) })
	if errs.Is(err, errs.Conflict) {
		return errs.E(op, errs.Conflict, "user %q already exists", u.Name)
	}
	return err
}

func insertUser(ctx context.Context, tx *dbsql.Tx, u *store.User) error {
	created := now()
	if err := tx.QueryRowContext(ctx, `INSERT INTO users (name, password_hash, server_admin, created)
		VALUES ($1, $2, $3, $4) RETURNING id`, u.Name, u.PasswordHash, b2i(u.ServerAdmin), us(created)).Scan(&u.ID); err != nil {
		return err
	}
	u.Created = created
	return nil
}

// GetUser returns a user by id.
func (s *DB) GetUser(ctx context.Context, id int64) (*store.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
	if err != nil {
		return nil, notFound("store.GetUser", err, "no user %d", id)
	}
	return u, nil
}

// UserByName returns the user called name.
func (s *DB) UserByName(ctx context.Context, name string) (*store.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE name = $1`, name))
	if err != nil {
		return nil, notFound("store.UserByName", err, "no user %q", name)
	}
	return u, nil
}

// SetPassword replaces a user's password hash.
func (s *DB) SetPassword(ctx context.Context, userID int64, hash string) error {
	const op = "store.SetPassword"
	return s.write(ctx, op, func(tx *dbsql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2`, hash, userID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errs.E(op, errs.NotFound, "no user %d", userID)
		}
		return nil
	})
}

// SetMember sets (or, with role "", removes) a user's role in an
// organisation, never leaving it without an admin.
func (s *DB) SetMember(ctx context.Context, orgID, userID int64, role store.OrgRole) error {
	const op = "store.SetMember"
	if role != "" && role.Rank() == 0 {
		return errs.E(op, errs.Invalid, "unknown role %q (admin, maintainer, developer or viewer)", role)
	}
	return s.write(ctx, op, func(tx *dbsql.Tx) error {
		// The organisation's row lock (PostgreSQL) serialises two admins
		// demoting each other.
		var org int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM orgs WHERE id = $1`+s.forUpdate, orgID).Scan(&org); err != nil {
			return notFound(op, err, "no organisation %d", orgID)
		}
		var user int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE id = $1`, userID).Scan(&user); err != nil {
			return notFound(op, err, "no user %d", userID)
		}
		var old string
		err := tx.QueryRowContext(ctx, `SELECT role FROM members WHERE org_id = $1 AND user_id = $2`, orgID, userID).Scan(&old)
		if err != nil && err != dbsql.ErrNoRows {
			return err
		}
		if old == string(store.OrgAdmin) && role != store.OrgAdmin {
			var admins int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM members WHERE org_id = $1 AND role = 'admin'`, orgID).Scan(&admins); err != nil {
				return err
			}
			if admins <= 1 {
				return errs.E(op, errs.Conflict, "the organisation's last admin cannot be removed or demoted")
			}
		}
		switch {
		case role == "" && old == "":
			return errs.E(op, errs.NotFound, "user %d is not a member", userID)
		case role == "":
			_, err = tx.ExecContext(ctx, `DELETE FROM members WHERE org_id = $1 AND user_id = $2`, orgID, userID)
		case old == "":
			_, err = tx.ExecContext(ctx, `INSERT INTO members (org_id, user_id, role) VALUES ($1, $2, $3)`, orgID, userID, string(role))
		default:
			_, err = tx.ExecContext(ctx, `UPDATE members SET role = $1 WHERE org_id = $2 AND user_id = $3`, string(role), orgID, userID)
		}
		return err
	})
}

// Member returns the user's membership of the organisation.
func (s *DB) Member(ctx context.Context, orgID, userID int64) (*store.Member, error) {
	m, err := scanMember(s.r.QueryRowContext(ctx, `SELECT `+memberCols+` FROM members m JOIN users u ON u.id = m.user_id
		WHERE m.org_id = $1 AND m.user_id = $2`, orgID, userID))
	if err != nil {
		return nil, notFound("store.Member", err, "user %d is not a member", userID)
	}
	return m, nil
}

// ListMembers lists an organisation's members by name.
func (s *DB) ListMembers(ctx context.Context, orgID int64) ([]*store.Member, error) {
	ms, err := queryAll(ctx, s.r, scanMember, `SELECT `+memberCols+` FROM members m JOIN users u ON u.id = m.user_id
		WHERE m.org_id = $1 ORDER BY u.name`, orgID)
	return ms, mapErr("store.ListMembers", err)
}

// Memberships lists a user's organisations.
func (s *DB) Memberships(ctx context.Context, userID int64) ([]*store.Member, error) {
	ms, err := queryAll(ctx, s.r, scanMember, `SELECT `+memberCols+` FROM members m JOIN users u ON u.id = m.user_id
		WHERE m.user_id = $1 ORDER BY m.org_id`, userID)
	return ms, mapErr("store.Memberships", err)
}

// CreateFirstAdmin creates the first user (see store.Users).
func (s *DB) CreateFirstAdmin(ctx context.Context, u *store.User, orgID int64, t *store.Token) (bool, error) {
	const op = "store.CreateFirstAdmin"
	if !validUserName(u.Name) {
		return false, errs.E(op, errs.Invalid, "user name %q is not valid", u.Name)
	}
	t.OrgID, t.UserID = orgID, -1 // checked before the user exists
	if err := checkToken(op, t); err != nil {
		return false, err
	}
	made := false
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		made = false
		// The organisation's row lock (PostgreSQL) serialises replicas.
		var org int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM orgs WHERE id = $1`+s.forUpdate, orgID).Scan(&org); err != nil {
			return notFound(op, err, "no organisation %d", orgID)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil || n > 0 {
			return err
		}
		u.ServerAdmin = true
		if err := insertUser(ctx, tx, u); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO members (org_id, user_id, role) VALUES ($1, $2, 'admin')`, orgID, u.ID); err != nil {
			return err
		}
		t.UserID = u.ID
		made = true
		return insertToken(ctx, tx, t)
	})
	if err != nil {
		return false, err
	}
	return made, nil
}
