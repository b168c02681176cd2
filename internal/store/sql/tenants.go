package sqlstore

import (
	"context"
	dbsql "database/sql"
	"fmt"

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
			allow_sha1, status_token, api_url, clone_user, clone_password, created, run_test_deliveries)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id`,
			r.OrgID, r.Name, r.URL, r.Forge, sealed[0], r.Branch, b2i(r.AllowSHA1), sealed[1], r.APIURL,
			r.CloneUser, sealed[2], us(created), b2i(r.RunTestDeliveries)).Scan(&id)
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

// UpdateRepo changes a repository's settings (nil fields stay).
func (s *DB) UpdateRepo(ctx context.Context, orgID, id int64, set store.RepoSettings) (*store.Repo, error) {
	const op = "store.UpdateRepo"
	var cols []string
	var args []any
	if set.RunTestDeliveries != nil {
		cols, args = append(cols, "run_test_deliveries"), append(args, b2i(*set.RunTestDeliveries))
	}
	if set.Secret != nil {
		if *set.Secret == "" {
			return nil, errs.E(op, errs.Invalid, "an empty webhook secret")
		}
		sealed, err := s.sealRepo(&store.Repo{Secret: *set.Secret})
		if err != nil {
			return nil, err
		}
		cols, args = append(cols, "secret"), append(args, sealed[0])
	}
	if len(cols) > 0 {
		q := "UPDATE repos SET "
		for i, c := range cols {
			if i > 0 {
				q += ", "
			}
			q += fmt.Sprintf("%s = $%d", c, i+1)
		}
		q += fmt.Sprintf(" WHERE id = $%d AND org_id = $%d", len(cols)+1, len(cols)+2)
		args = append(args, id, orgID)
		err := s.write(ctx, op, func(tx *dbsql.Tx) error {
			res, err := tx.ExecContext(ctx, q, args...)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err == nil && n == 0 {
				return errs.E(op, errs.NotFound, "no repository %d", id)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return s.GetRepo(ctx, orgID, id)
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
