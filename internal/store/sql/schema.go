package sqlstore

import (
	"context"
	dbsql "database/sql"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// migration is one schema version. Statements are shared by both dialects
// after substituting {{id}} and {{blob}}; sqlite and postgres hold what
// only one of them needs; fill, when set, runs last, in the same
// transaction, for data SQL cannot derive. Never edit a released
// migration: add one.
type migration struct {
	shared   []string
	sqlite   []string
	postgres []string
	fill     func(ctx context.Context, tx *dbsql.Tx, s *DB) error
}

// migrations[i] makes schema version i+1.
var migrations = []migration{
	{ // 1: the first schema.
		shared: []string{
			`CREATE TABLE orgs (
				id {{id}},
				name TEXT NOT NULL UNIQUE,
				created BIGINT NOT NULL
			)`,
			`CREATE TABLE tokens (
				id {{id}},
				org_id BIGINT NOT NULL REFERENCES orgs(id),
				name TEXT NOT NULL,
				role TEXT NOT NULL,
				hash {{blob}} NOT NULL UNIQUE,
				created BIGINT NOT NULL,
				last_used BIGINT NOT NULL DEFAULT 0
			)`,
			`CREATE INDEX tokens_org ON tokens (org_id)`,
			`CREATE TABLE repos (
				id {{id}},
				org_id BIGINT NOT NULL REFERENCES orgs(id),
				name TEXT NOT NULL,
				url TEXT NOT NULL,
				forge TEXT NOT NULL,
				secret TEXT NOT NULL,
				branch TEXT NOT NULL,
				allow_sha1 BIGINT NOT NULL,
				status_token TEXT NOT NULL,
				api_url TEXT NOT NULL,
				clone_user TEXT NOT NULL,
				clone_password TEXT NOT NULL,
				created BIGINT NOT NULL,
				UNIQUE (org_id, name)
			)`,
			`CREATE TABLE events (
				id {{id}},
				org_id BIGINT NOT NULL REFERENCES orgs(id),
				repo_id BIGINT NOT NULL REFERENCES repos(id),
				source TEXT NOT NULL,
				forge TEXT NOT NULL,
				name TEXT NOT NULL,
				delivery_id TEXT NOT NULL,
				body_hash {{blob}} NOT NULL,
				headers TEXT NOT NULL,
				body {{blob}} NOT NULL,
				received BIGINT NOT NULL,
				state TEXT NOT NULL,
				error TEXT NOT NULL DEFAULT '',
				attempts BIGINT NOT NULL DEFAULT 0,
				lease_owner TEXT NOT NULL DEFAULT '',
				lease_expires BIGINT NOT NULL DEFAULT 0
			)`,
			// A delivery is stored once per repository, whoever races.
			`CREATE UNIQUE INDEX events_delivery ON events (repo_id, delivery_id) WHERE delivery_id <> ''`,
			`CREATE INDEX events_body ON events (repo_id, body_hash)`,
			`CREATE INDEX events_open ON events (id) WHERE state IN ('pending', 'processing')`,
			`CREATE TABLE runs (
				id {{id}},
				org_id BIGINT NOT NULL REFERENCES orgs(id),
				repo_id BIGINT NOT NULL REFERENCES repos(id),
				event_id BIGINT NOT NULL,
				number BIGINT NOT NULL,
				workflow TEXT NOT NULL,
				name TEXT NOT NULL,
				event TEXT NOT NULL,
				ref TEXT NOT NULL,
				sha TEXT NOT NULL,
				trigger_source TEXT NOT NULL,
				status TEXT NOT NULL,
				inputs TEXT NOT NULL,
				event_json {{blob}} NOT NULL,
				workflow_yaml {{blob}} NOT NULL,
				concurrency_group TEXT NOT NULL,
				cancel_in_progress BIGINT NOT NULL,
				attempt BIGINT NOT NULL,
				rerun_of BIGINT NOT NULL,
				created BIGINT NOT NULL,
				started BIGINT NOT NULL DEFAULT 0,
				finished BIGINT NOT NULL DEFAULT 0,
				error TEXT NOT NULL DEFAULT '',
				UNIQUE (repo_id, number)
			)`,
			`CREATE INDEX runs_org ON runs (org_id, id)`,
			`CREATE INDEX runs_repo ON runs (repo_id, id)`,
			`CREATE INDEX runs_group ON runs (repo_id, concurrency_group, status) WHERE concurrency_group <> ''`,
			`CREATE TABLE jobs (
				id {{id}},
				run_id BIGINT NOT NULL REFERENCES runs(id),
				org_id BIGINT NOT NULL,
				repo_id BIGINT NOT NULL,
				job_key TEXT NOT NULL,
				name TEXT NOT NULL,
				needs TEXT NOT NULL,
				status TEXT NOT NULL,
				priority BIGINT NOT NULL,
				labels TEXT NOT NULL,
				backend TEXT NOT NULL,
				attempt BIGINT NOT NULL DEFAULT 0,
				max_attempts BIGINT NOT NULL,
				outputs TEXT NOT NULL DEFAULT '{}',
				results {{blob}} NOT NULL,
				error TEXT NOT NULL DEFAULT '',
				lease_owner TEXT NOT NULL DEFAULT '',
				lease_token BIGINT NOT NULL DEFAULT 0,
				lease_expires BIGINT NOT NULL DEFAULT 0,
				cancel_requested BIGINT NOT NULL DEFAULT 0,
				reused_from BIGINT NOT NULL,
				created BIGINT NOT NULL,
				queued BIGINT NOT NULL DEFAULT 0,
				started BIGINT NOT NULL DEFAULT 0,
				finished BIGINT NOT NULL DEFAULT 0
			)`,
			`CREATE INDEX jobs_run ON jobs (run_id)`,
			// Leading with repo_id, not status: an index on status alone
			// would lure SQLite's planner away from jobs_queue and
			// jobs_lease (see TestQueryPlans).
			`CREATE INDEX jobs_repo ON jobs (repo_id, status)`,
			`CREATE INDEX jobs_lease ON jobs (lease_expires) WHERE status = 'running'`,
			`CREATE TABLE job_attempts (
				job_id BIGINT NOT NULL REFERENCES jobs(id),
				attempt BIGINT NOT NULL,
				owner TEXT NOT NULL,
				started BIGINT NOT NULL,
				finished BIGINT NOT NULL,
				reason TEXT NOT NULL,
				PRIMARY KEY (job_id, attempt)
			)`,
			`CREATE TABLE log_chunks (
				job_id BIGINT NOT NULL REFERENCES jobs(id),
				seq BIGINT NOT NULL,
				data {{blob}} NOT NULL,
				at BIGINT NOT NULL,
				PRIMARY KEY (job_id, seq)
			)`,
			`CREATE TABLE crons (
				cron_key TEXT PRIMARY KEY,
				last BIGINT NOT NULL
			)`,
			`CREATE TABLE statuses (
				id {{id}},
				run_id BIGINT NOT NULL REFERENCES runs(id),
				repo_id BIGINT NOT NULL,
				sha TEXT NOT NULL,
				context TEXT NOT NULL,
				state TEXT NOT NULL,
				description TEXT NOT NULL,
				target_url TEXT NOT NULL,
				attempts BIGINT NOT NULL DEFAULT 0,
				next_attempt BIGINT NOT NULL,
				last_error TEXT NOT NULL DEFAULT '',
				done BIGINT NOT NULL DEFAULT 0
			)`,
			`CREATE INDEX statuses_due ON statuses (next_attempt) WHERE done = 0`,
		},
		// Fencing tokens: a sequence never blocks concurrent leases on
		// PostgreSQL; SQLite's single writer makes a counter row enough.
		sqlite: []string{
			`CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)`,
			`INSERT INTO counters (name, value) VALUES ('lease_token', 0)`,
		},
		postgres: []string{`CREATE SEQUENCE lease_tokens`},
	},
	{ // 2: Lease reads one partial index instead of joining runs.
		shared: []string{
			// Jobs of a blocked run are held out of the queue.
			`ALTER TABLE jobs ADD COLUMN held BIGINT NOT NULL DEFAULT 0`,
			`UPDATE jobs SET held = 1 WHERE run_id IN (SELECT id FROM runs WHERE status = 'blocked')`,
			`CREATE INDEX jobs_queue ON jobs (priority DESC, id) WHERE status = 'queued' AND held = 0`,
			// Accept's 24-hour duplicate window is answered from the index.
			`DROP INDEX events_body`,
			`CREATE INDEX events_body ON events (repo_id, body_hash, received)`,
		},
	},
	{ // 3: remote agents; Lease by organisation and runs-on labels.
		shared: []string{
			`CREATE TABLE agents (
				id {{id}},
				org_id BIGINT NOT NULL REFERENCES orgs(id),
				name TEXT NOT NULL,
				hash {{blob}} NOT NULL UNIQUE,
				labels TEXT NOT NULL,
				capacity BIGINT NOT NULL DEFAULT 0,
				version TEXT NOT NULL DEFAULT '',
				hostname TEXT NOT NULL DEFAULT '',
				draining BIGINT NOT NULL DEFAULT 0,
				revoked BIGINT NOT NULL DEFAULT 0,
				created BIGINT NOT NULL,
				last_seen BIGINT NOT NULL DEFAULT 0
			)`,
			// A revoked agent's name may be given to a new one.
			`CREATE UNIQUE INDEX agents_name ON agents (org_id, name) WHERE revoked = 0`,
			// store.NormalizeLabels(labels) as JSON, which Lease matches
			// against the worker's: Go's case folding, not each database's.
			`ALTER TABLE jobs ADD COLUMN label_key TEXT NOT NULL DEFAULT '[]'`,
			`CREATE INDEX jobs_queue_org ON jobs (org_id, priority DESC, id) WHERE status = 'queued' AND held = 0`,
			`CREATE INDEX jobs_owner ON jobs (lease_owner) WHERE status = 'running'`,
		},
		fill: fillLabelKeys,
	},
	{ // 4: job-level concurrency groups.
		shared: []string{
			// held: 0 in the queue, 1 its run is blocked, 2 waits for its
			// job concurrency group, 3 just queued, not yet admitted.
			`ALTER TABLE jobs ADD COLUMN concurrency_group TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE jobs ADD COLUMN cancel_in_progress BIGINT NOT NULL DEFAULT 0`,
			`CREATE INDEX jobs_group ON jobs (repo_id, concurrency_group, status) WHERE concurrency_group <> ''`,
		},
	},
	{ // 5: artifacts of runs, their content in chunks (see artifacts.go).
		shared: []string{
			`CREATE TABLE artifacts (
				id {{id}},
				org_id BIGINT NOT NULL REFERENCES orgs(id),
				run_id BIGINT NOT NULL REFERENCES runs(id),
				name TEXT NOT NULL,
				job TEXT NOT NULL,
				size BIGINT NOT NULL DEFAULT 0,
				retention_days BIGINT NOT NULL DEFAULT 0,
				complete BIGINT NOT NULL DEFAULT 0,
				created BIGINT NOT NULL
			)`,
			// One complete artifact per name and run; uploads in progress
			// (complete = 0) do not take the name yet.
			`CREATE UNIQUE INDEX artifacts_name ON artifacts (run_id, name) WHERE complete = 1`,
			`CREATE INDEX artifacts_run ON artifacts (org_id, run_id)`,
			`CREATE TABLE artifact_chunks (
				artifact_id BIGINT NOT NULL REFERENCES artifacts(id),
				seq BIGINT NOT NULL,
				data {{blob}} NOT NULL,
				PRIMARY KEY (artifact_id, seq)
			)`,
		},
	}, { // 6: the labels an agent token may claim (see store.Agent).
		shared: []string{`ALTER TABLE agents ADD COLUMN allowed_labels TEXT NOT NULL DEFAULT ''`},
	}, { // 7: an event's headers and body in a table of their own.
		// They never change, while the event's state changes twice (claimed,
		// done): on SQLite every change rewrote the whole row, a 4 KB push
		// body and its overflow pages included, on the writer the webhooks
		// are group-committed on.
		shared: []string{
			`CREATE TABLE event_payloads (
				event_id {{key}} REFERENCES events(id),
				headers TEXT NOT NULL,
				body {{blob}} NOT NULL
			)`,
			`INSERT INTO event_payloads (event_id, headers, body) SELECT id, headers, body FROM events`,
			`ALTER TABLE events DROP COLUMN headers`,
			`ALTER TABLE events DROP COLUMN body`,
		},
	}, { // 8: users, their roles in organisations, personal tokens, the audit log.
		shared: []string{
			`CREATE TABLE users (
				id {{id}},
				name TEXT NOT NULL UNIQUE,
				password_hash TEXT NOT NULL DEFAULT '',
				server_admin BIGINT NOT NULL DEFAULT 0,
				created BIGINT NOT NULL
			)`,
			`CREATE TABLE members (
				org_id BIGINT NOT NULL REFERENCES orgs(id),
				user_id BIGINT NOT NULL REFERENCES users(id),
				role TEXT NOT NULL,
				PRIMARY KEY (org_id, user_id)
			)`,
			`CREATE INDEX members_user ON members (user_id)`,
			`ALTER TABLE tokens ADD COLUMN user_id BIGINT NOT NULL DEFAULT 0`,
			`ALTER TABLE tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'api'`,
			`ALTER TABLE tokens ADD COLUMN expires BIGINT NOT NULL DEFAULT 0`,
			`CREATE INDEX tokens_user ON tokens (user_id)`,
			`CREATE TABLE audit (
				id {{id}},
				org_id BIGINT NOT NULL,
				actor_id BIGINT NOT NULL,
				actor TEXT NOT NULL,
				action TEXT NOT NULL,
				target TEXT NOT NULL,
				detail TEXT NOT NULL,
				created BIGINT NOT NULL
			)`,
			`CREATE INDEX audit_org ON audit (org_id, id)`,
		},
		fill: adoptTokens,
	}, { // 9: credentials at rest. The repositories' webhook secret, status
		// token and clone password are sealed with the server's key (when
		// the store has one; otherwise at the first Open with one), and
		// secret headers (X-Gitlab-Token, signatures) leave stored events.
		fill: func(ctx context.Context, tx *dbsql.Tx, s *DB) error {
			n := 0
			if s.keys != nil {
				var err error
				if n, err = resealRepos(ctx, tx, s.keys, false); err != nil {
					return err
				}
			}
			m, err := scrubHeaders(ctx, tx)
			s.rewrote = s.rewrote || n+m > 0
			return err
		},
	}, { // 10: secrets and variables of organisations, repositories and
		// environments (see secrets.go; repo_id 0 is the organisation), and
		// the jobs' GITHUB_TOKENs.
		shared: []string{
			`CREATE TABLE secrets (
				id {{id}},
				org_id BIGINT NOT NULL REFERENCES orgs(id),
				repo_id BIGINT NOT NULL DEFAULT 0,
				env TEXT NOT NULL DEFAULT '',
				kind TEXT NOT NULL,
				name TEXT NOT NULL,
				value TEXT NOT NULL,
				updated BIGINT NOT NULL,
				updated_by TEXT NOT NULL
			)`,
			`CREATE UNIQUE INDEX secrets_name ON secrets (org_id, repo_id, env, kind, name)`,
			// Each job's GITHUB_TOKEN (see jobtokens.go), by hash.
			`CREATE TABLE job_tokens (
				hash {{blob}} NOT NULL UNIQUE,
				org_id BIGINT NOT NULL,
				run_id BIGINT NOT NULL,
				job_id BIGINT NOT NULL,
				lease_token BIGINT NOT NULL,
				read_run BIGINT NOT NULL,
				expires BIGINT NOT NULL
			)`,
			`CREATE INDEX job_tokens_job ON job_tokens (job_id)`,
		},
	}, { // 11: quotas per organisation and metered build time (see quotas.go).
		shared: []string{
			`CREATE TABLE quotas (
				org_id {{key}} REFERENCES orgs(id),
				max_jobs BIGINT NOT NULL DEFAULT 0,
				max_timeout_minutes BIGINT NOT NULL DEFAULT 0,
				monthly_build_seconds BIGINT NOT NULL DEFAULT 0,
				updated BIGINT NOT NULL
			)`,
			`CREATE TABLE build_usage (
				org_id BIGINT NOT NULL REFERENCES orgs(id),
				month TEXT NOT NULL,
				build_ms BIGINT NOT NULL DEFAULT 0,
				jobs BIGINT NOT NULL DEFAULT 0,
				PRIMARY KEY (org_id, month)
			)`,
			`ALTER TABLE jobs ADD COLUMN build_ms BIGINT NOT NULL DEFAULT 0`,
			// Lease counts an organisation's running jobs against its quota.
			`CREATE INDEX jobs_org_running ON jobs (org_id) WHERE status = 'running'`,
		},
	}, { // 12: whether Gitea's "Test delivery" pushes start runs (store.Repo.RunTestDeliveries).
		shared: []string{`ALTER TABLE repos ADD COLUMN run_test_deliveries BIGINT NOT NULL DEFAULT 0`},
	}, { // 13: history. Log chunks may be zstd-compressed (older ones stay
		// readable as they are); the runs list filtered by status reads an
		// index; retention settings, and indexes for the sweeper.
		shared: []string{
			`ALTER TABLE log_chunks ADD COLUMN compressed BIGINT NOT NULL DEFAULT 0`,
			`CREATE INDEX runs_org_status ON runs (org_id, status, id)`,
			// Retention settings: repo_id 0 is the organisation's; NULL
			// days follow the organisation (repository) or keep forever.
			`CREATE TABLE retention (
				org_id BIGINT NOT NULL REFERENCES orgs(id),
				repo_id BIGINT NOT NULL,
				runs_days BIGINT,
				logs_days BIGINT,
				artifacts_days BIGINT,
				PRIMARY KEY (org_id, repo_id)
			)`,
			`CREATE INDEX statuses_run ON statuses (run_id)`,
			`CREATE INDEX statuses_done ON statuses (next_attempt) WHERE done = 1`,
			`CREATE INDEX runs_finished ON runs (finished) WHERE finished > 0`,
			`CREATE INDEX runs_event ON runs (event_id)`,
			`CREATE INDEX events_received ON events (received)`,
		},
	}, { // 14: environments of repositories with their protection rules, and
		// jobs' deployments: a gated job waits as awaiting_approval (never
		// leased) until reviewed and its timer ends (see environments.go).
		shared: []string{
			`CREATE TABLE environments (
				id {{id}},
				org_id BIGINT NOT NULL REFERENCES orgs(id),
				repo_id BIGINT NOT NULL REFERENCES repos(id),
				name TEXT NOT NULL,
				name_key TEXT NOT NULL,
				protection TEXT NOT NULL,
				branch TEXT NOT NULL DEFAULT '',
				created BIGINT NOT NULL,
				updated BIGINT NOT NULL,
				UNIQUE (repo_id, name_key)
			)`,
			// deploy is the job's store.Deployment as JSON; gate is 0 (none),
			// 1 (needs a review) or 2 (reviewed or needs none: its timer).
			`ALTER TABLE jobs ADD COLUMN deploy TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE jobs ADD COLUMN gate BIGINT NOT NULL DEFAULT 0`,
			`ALTER TABLE jobs ADD COLUMN wait_ms BIGINT NOT NULL DEFAULT 0`,
			`ALTER TABLE jobs ADD COLUMN wait_until BIGINT NOT NULL DEFAULT 0`,
			`CREATE INDEX jobs_gate ON jobs (wait_until) WHERE status = 'awaiting_approval'`,
		},
	}, { // 15: repositories' branch-to-environment mapping (store.EnvMapping as
		// JSON), whether fork pull requests' runs skip the approval they
		// otherwise wait for, and their jobs' network policy and runtime.
		shared: []string{
			`ALTER TABLE repos ADD COLUMN env_map TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE repos ADD COLUMN skip_fork_approval BIGINT NOT NULL DEFAULT 0`,
			// The sandbox settings of its jobs (store.Repo.NetworkPolicy, Runtime).
			`ALTER TABLE repos ADD COLUMN network_policy TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE repos ADD COLUMN runtime TEXT NOT NULL DEFAULT ''`,
		},
	}, { // 16: logs and artifacts in an object store, indexed here (see objects.go).
		shared: []string{
			`CREATE TABLE log_segments (
				job_id BIGINT NOT NULL REFERENCES jobs(id),
				first_seq BIGINT NOT NULL,
				last_seq BIGINT NOT NULL,
				object_key TEXT NOT NULL,
				size BIGINT NOT NULL,
				checksum TEXT NOT NULL,
				PRIMARY KEY (job_id, first_seq)
			)`,
			`CREATE INDEX log_segments_last ON log_segments (job_id, last_seq)`,
			`ALTER TABLE artifacts ADD COLUMN object_key TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE artifacts ADD COLUMN checksum TEXT NOT NULL DEFAULT ''`,
			// Objects whose index rows are gone, deleted after the commit.
			`CREATE TABLE object_trash (
				object_key TEXT PRIMARY KEY,
				since BIGINT NOT NULL
			)`,
		},
	}, { // 17: /metrics counts live jobs from an index of them only (see Stats).
		shared: []string{`CREATE INDEX jobs_live ON jobs (status) WHERE status IN ('waiting', 'awaiting_approval', 'queued', 'running')`},
	}, { // 18: caches' retention (store.Retention.CachesDays).
		shared: []string{`ALTER TABLE retention ADD COLUMN caches_days BIGINT`},
	}, { // 19: failed logins counted across replicas (store.FailureBuckets).
		shared: []string{
			`CREATE TABLE failure_buckets (
				key TEXT PRIMARY KEY,
				tokens DOUBLE PRECISION NOT NULL,
				at_ms BIGINT NOT NULL
			)`,
			`CREATE INDEX failure_buckets_at ON failure_buckets (at_ms)`,
		},
	}, { // 20: jobs' compiled form (store.Job.Spec, the job contract's Job as
		// JSON), made once when the run is created; NULL for older jobs.
		shared: []string{`ALTER TABLE jobs ADD COLUMN spec {{blob}}`},
	},
}

// SchemaVersion is the newest schema this package writes.
const SchemaVersion = 20

// migrateLock is the PostgreSQL advisory lock that keeps replicas starting
// together from migrating the same database twice.
const migrateLock = 7120_0001

func (s *DB) migrate(ctx context.Context, max int) error {
	const op = "store.migrate"
	if max <= 0 || max > len(migrations) {
		max = len(migrations)
	}
	var current int
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		if err := s.lockMigrations(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)`); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current)
	})
	if err != nil {
		return err
	}
	if current > len(migrations) {
		return errs.E(op, errs.Invalid, "database schema version %d is newer than this binary's %d", current, len(migrations))
	}
	for v := current + 1; v <= max; v++ {
		err := s.write(ctx, op, func(tx *dbsql.Tx) error {
			if err := s.lockMigrations(ctx, tx); err != nil {
				return err
			}
			var done int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, v).Scan(&done); err != nil || done > 0 {
				return err // another replica applied it meanwhile
			}
			for _, stmt := range s.statements(migrations[v-1]) {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return errs.E(op, errs.Invalid, "migration %d: %w\n%s", v, err, stmt)
				}
			}
			if fill := migrations[v-1].fill; fill != nil {
				if err := fill(ctx, tx, s); err != nil {
					return errs.E(op, errs.Invalid, "migration %d: %w", v, err)
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied) VALUES ($1, $2)`, v, us(now()))
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// fillLabelKeys computes label_key for the jobs that may still be leased;
// ended jobs never are, and a large history stays untouched.
func fillLabelKeys(ctx context.Context, tx *dbsql.Tx, _ *DB) error {
	type row struct {
		id     int64
		labels string
	}
	rows, err := queryAll(ctx, tx, func(sc scanner) (row, error) {
		var r row
		return r, sc.Scan(&r.id, &r.labels)
	}, `SELECT id, labels FROM jobs WHERE status IN ('waiting', 'queued', 'running') AND labels <> '[]'`)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET label_key = $1 WHERE id = $2`,
			labelKey(decodeList(r.labels)), r.id); err != nil {
			return err
		}
	}
	return nil
}

// adoptTokens gives the tokens made before users existed (the admin token
// printed on first start, and any other) an owner: a user "admin", server
// admin and admin of every organisation that has tokens. Each token keeps
// its role as its scope, so it does exactly what it did before; tokens of
// role agent, which no command made, are expired.
func adoptTokens(ctx context.Context, tx *dbsql.Tx, _ *DB) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens`).Scan(&n); err != nil || n == 0 {
		return err
	}
	t := us(now())
	var admin int64
	if err := tx.QueryRowContext(ctx, `INSERT INTO users (name, password_hash, server_admin, created)
		VALUES ('admin', '', 1, $1) RETURNING id`, t).Scan(&admin); err != nil {
		return err
	}
	stmts := []struct {
		q    string
		args []any
	}{
		{`INSERT INTO members (org_id, user_id, role) SELECT DISTINCT org_id, CAST($1 AS BIGINT), 'admin' FROM tokens`, []any{admin}},
		{`UPDATE tokens SET user_id = $1`, []any{admin}},
		{`UPDATE tokens SET expires = $1 WHERE role NOT IN ('admin', 'write', 'read')`, []any{t}},
		{`INSERT INTO audit (org_id, actor_id, actor, action, target, detail, created)
			VALUES (0, 0, 'conveyor', 'user.create', 'user admin', 'schema 8: owner of the tokens made before users existed', $1)`, []any{t}},
	}
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
			return err
		}
	}
	return nil
}

func (s *DB) lockMigrations(ctx context.Context, tx *dbsql.Tx) error {
	if s.dialect != dialectPostgres {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLock))
	return err
}

// statements returns m's SQL for this dialect.
func (s *DB) statements(m migration) []string {
	// {{key}} is a primary key given by the row's writer: on SQLite the
	// rowid itself, so the row lives in the table's b-tree, not beside it.
	id, key, blob, extra := "INTEGER PRIMARY KEY", "INTEGER PRIMARY KEY", "BLOB", m.sqlite
	if s.dialect == dialectPostgres {
		id, key, blob, extra = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "BIGINT PRIMARY KEY", "BYTEA", m.postgres
	}
	r := strings.NewReplacer("{{id}}", id, "{{key}}", key, "{{blob}}", blob)
	out := make([]string, 0, len(m.shared)+len(extra))
	for _, q := range m.shared {
		out = append(out, r.Replace(q))
	}
	return append(out, extra...)
}

// Version reports the schema version of the open database (for tests and
// diagnostics).
func (s *DB) Version(ctx context.Context) (int, error) {
	var v int
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, mapErr("store.SchemaVersion", err)
}
