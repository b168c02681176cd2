package sqlstore

import (
	"context"
	dbsql "database/sql"
	"fmt"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

func scanOrg(sc scanner) (*store.Org, error) {
	var o store.Org
	var created int64
	if err := sc.Scan(&o.ID, &o.Name, &created); err != nil {
		return nil, err
	}
	o.Created = tm(created)
	return &o, nil
}

// CreateOrg makes a new organisation; Conflict when the name is taken.
func (s *DB) CreateOrg(ctx context.Context, name string, adminID int64) (*store.Org, error) {
	const op = "store.CreateOrg"
	if !validUserName(name) {
		return nil, errs.E(op, errs.Invalid, "organisation name %q: use 1 to 64 letters, digits, '.', '_', '-' or '@'", name)
	}
	o := &store.Org{Name: name, Created: now()}
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO orgs (name, created) VALUES ($1, $2) RETURNING id`, name, us(o.Created)).Scan(&o.ID)
		if err != nil || adminID == 0 {
			return err
		}
		var user int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE id = $1`, adminID).Scan(&user); err != nil {
			return notFound(op, err, "no user %d", adminID)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO members (org_id, user_id, role) VALUES ($1, $2, $3)`, o.ID, adminID, string(store.OrgAdmin))
		return err
	})
	if errs.Is(err, errs.Conflict) {
		return nil, errs.E(op, errs.Conflict, "organisation %q already exists", name)
	}
	if err != nil {
		return nil, err
	}
	return o, nil
}

// OrgByName returns the organisation called name.
func (s *DB) OrgByName(ctx context.Context, name string) (*store.Org, error) {
	o, err := scanOrg(s.r.QueryRowContext(ctx, `SELECT id, name, created FROM orgs WHERE name = $1`, name))
	if err != nil {
		return nil, notFound("store.OrgByName", err, "no organisation %q", name)
	}
	return o, nil
}

// GetOrg returns an organisation by id.
func (s *DB) GetOrg(ctx context.Context, id int64) (*store.Org, error) {
	o, err := scanOrg(s.r.QueryRowContext(ctx, `SELECT id, name, created FROM orgs WHERE id = $1`, id))
	if err != nil {
		return nil, notFound("store.GetOrg", err, "no organisation %d", id)
	}
	return o, nil
}

// ListOrgs lists every organisation by name.
func (s *DB) ListOrgs(ctx context.Context) ([]*store.Org, error) {
	os, err := queryAll(ctx, s.r, scanOrg, `SELECT id, name, created FROM orgs ORDER BY name`)
	return os, mapErr("store.ListOrgs", err)
}

// AppendAudit stores an audit entry.
func (s *DB) AppendAudit(ctx context.Context, e *store.AuditEntry) error {
	const op = "store.AppendAudit"
	if e.Action == "" {
		return errs.E(op, errs.Invalid, "an audit entry needs an action")
	}
	return s.write(ctx, op, func(tx *dbsql.Tx) error { return insertAudit(ctx, tx, e) })
}

// insertAudit inserts e in tx and sets its ID (and Time when zero).
func insertAudit(ctx context.Context, tx *dbsql.Tx, e *store.AuditEntry) error {
	if e.Action == "" {
		return errs.E("store.audit", errs.Invalid, "an audit entry needs an action")
	}
	if e.Time.IsZero() {
		e.Time = now()
	}
	return tx.QueryRowContext(ctx, `INSERT INTO audit (org_id, actor_id, actor, action, target, detail, created)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		e.OrgID, e.ActorID, e.Actor, e.Action, e.Target, e.Detail, us(e.Time)).Scan(&e.ID)
}

// ListAudit lists an organisation's audit entries, newest first.
func (s *DB) ListAudit(ctx context.Context, orgID int64, f store.AuditFilter) ([]*store.AuditEntry, error) {
	q := `SELECT id, org_id, actor_id, actor, action, target, detail, created FROM audit WHERE (org_id = $1`
	if f.Server {
		q += ` OR org_id = 0`
	}
	q += `)`
	args := []any{orgID}
	if f.Before > 0 {
		args = append(args, f.Before)
		q += fmt.Sprintf(` AND id < $%d`, len(args))
	}
	q += ` ORDER BY id DESC`
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += fmt.Sprintf(` LIMIT $%d`, len(args))
	}
	es, err := queryAll(ctx, s.r, func(sc scanner) (*store.AuditEntry, error) {
		var e store.AuditEntry
		var t int64
		err := sc.Scan(&e.ID, &e.OrgID, &e.ActorID, &e.Actor, &e.Action, &e.Target, &e.Detail, &t)
		e.Time = tm(t)
		return &e, err
	}, q, args...)
	return es, mapErr("store.ListAudit", err)
}
