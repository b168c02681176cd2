package sqlstore

import (
	"context"
	dbsql "database/sql"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

const agentCols = `id, org_id, name, hash, labels, allowed_labels, capacity, version, hostname, draining, revoked, created, last_seen`

func scanAgent(sc scanner) (*store.Agent, error) {
	var a store.Agent
	var labels, allowed string
	var created, seen int64
	err := sc.Scan(&a.ID, &a.OrgID, &a.Name, &a.Hash, &labels, &allowed, &a.Capacity, &a.Version, &a.Hostname,
		&a.Draining, &a.Revoked, &created, &seen)
	a.Labels, a.Created, a.LastSeen = decodeList(labels), tm(created), tm(seen)
	if allowed != "" {
		a.AllowedLabels = decodeList(allowed)
	}
	return &a, err
}

// CreateAgent stores a and sets its ID and Created (see store.Agents).
func (s *DB) CreateAgent(ctx context.Context, a *store.Agent) error {
	const op = "store.CreateAgent"
	if a.OrgID == 0 || a.Name == "" || len(a.Hash) == 0 {
		return errs.E(op, errs.Invalid, "an agent needs an organisation, a name and a token hash")
	}
	created := now()
	var id int64
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		allowed := ""
		if len(a.AllowedLabels) > 0 {
			allowed = encode(a.AllowedLabels)
		}
		return tx.QueryRowContext(ctx, `INSERT INTO agents (org_id, name, hash, labels, allowed_labels, capacity, version,
			hostname, draining, revoked, created, last_seen)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id`,
			a.OrgID, a.Name, a.Hash, encode(nonNil(a.Labels)), allowed, a.Capacity, a.Version, a.Hostname,
			b2i(a.Draining), b2i(a.Revoked), us(created), us(a.LastSeen)).Scan(&id)
	})
	if errs.Is(err, errs.Conflict) {
		return errs.E(op, errs.Conflict, "agent %q exists or its token is taken", a.Name)
	}
	if err != nil {
		return err
	}
	a.ID, a.Created = id, created
	return nil
}

// AgentByHash finds the non-revoked agent whose token has hash.
func (s *DB) AgentByHash(ctx context.Context, hash []byte) (*store.Agent, error) {
	a, err := scanAgent(s.r.QueryRowContext(ctx, `SELECT `+agentCols+` FROM agents WHERE hash = $1 AND revoked = 0`, blob(hash)))
	if err != nil {
		return nil, notFound("store.AgentByHash", err, "no such agent")
	}
	return a, nil
}

// GetAgent returns an agent of the organisation, revoked or not.
func (s *DB) GetAgent(ctx context.Context, orgID, id int64) (*store.Agent, error) {
	a, err := scanAgent(s.r.QueryRowContext(ctx, `SELECT `+agentCols+` FROM agents WHERE id = $1 AND org_id = $2`, id, orgID))
	if err != nil {
		return nil, notFound("store.GetAgent", err, "no agent %d", id)
	}
	return a, nil
}

// ListAgents lists the organisation's agents, revoked ones included, by
// name.
func (s *DB) ListAgents(ctx context.Context, orgID int64) ([]*store.Agent, error) {
	as, err := queryAll(ctx, s.r, scanAgent, `SELECT `+agentCols+` FROM agents WHERE org_id = $1 ORDER BY name, id`, orgID)
	return as, mapErr("store.ListAgents", err)
}

// AgentSeen records what a non-revoked agent reports, and now as its last
// contact.
func (s *DB) AgentSeen(ctx context.Context, id int64, labels []string, capacity int, version, hostname string) error {
	const op = "store.AgentSeen"
	return s.write(ctx, op, func(tx *dbsql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE agents SET labels = $1, capacity = $2, version = $3, hostname = $4,
			last_seen = $5 WHERE id = $6 AND revoked = 0`, encode(nonNil(labels)), capacity, version, hostname, us(now()), id)
		return affected(op, res, err, "no agent %d", id)
	})
}

// SetDraining sets or clears an agent's draining flag.
func (s *DB) SetDraining(ctx context.Context, orgID, id int64, draining bool) error {
	const op = "store.SetDraining"
	return s.write(ctx, op, func(tx *dbsql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE agents SET draining = $1 WHERE id = $2 AND org_id = $3`,
			b2i(draining), id, orgID)
		return affected(op, res, err, "no agent %d", id)
	})
}

// RevokeAgent revokes an agent: its token is no longer found. Its leases
// are left to expire, as its calls are refused from now on.
func (s *DB) RevokeAgent(ctx context.Context, orgID, id int64) error {
	const op = "store.RevokeAgent"
	return s.write(ctx, op, func(tx *dbsql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE agents SET revoked = 1 WHERE id = $1 AND org_id = $2`, id, orgID)
		return affected(op, res, err, "no agent %d", id)
	})
}

// qRunningJobs reads the jobs_owner index.
const qRunningJobs = `SELECT ` + jobCols + ` FROM jobs WHERE status = 'running' AND lease_owner = $1 ORDER BY id`

// RunningJobs lists the running jobs leased by owner, oldest first.
func (s *DB) RunningJobs(ctx context.Context, owner string) ([]*store.Job, error) {
	js, err := queryAll(ctx, s.r, scanJob, qRunningJobs, owner)
	return js, mapErr("store.RunningJobs", err)
}

// affected turns an update of no row into NotFound.
func affected(op string, res dbsql.Result, err error, format string, args ...any) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return errs.E(op, errs.NotFound, format, args...)
	}
	return nil
}
