// Package sqlstore implements store.Store on SQLite (embedded, the default)
// and PostgreSQL (several server replicas sharing the work).
//
// Both dialects share one schema and one set of queries written with $N
// placeholders, which SQLite also accepts. Timestamps are int64 unix
// microseconds and flags are 0/1 integers in both, so rows read the same
// everywhere. SQLite serialises every write on one connection (BEGIN
// IMMEDIATE) and reads from a small pool; PostgreSQL uses row locks and
// SKIP LOCKED so that replicas never hand out the same work.
package sqlstore

import (
	"context"
	dbsql "database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/secrets"
	"github.com/conveyor-ci/conveyor/internal/store"
)

const (
	dialectSQLite   = "sqlite"
	dialectPostgres = "postgres"
)

// Options tune Open. The zero value is right for production.
type Options struct {
	// MaxMigration stops the schema at this version (0: the newest). It
	// exists for tests that build a database as an older release left it;
	// some methods fail on an old schema.
	MaxMigration int
	// ReadConns is the size of SQLite's reader pool (default 4).
	ReadConns int
	// MaxConns is the size of PostgreSQL's pool (default 16).
	MaxConns int
	// Keys encrypt the repositories' credentials at rest (see crypt.go).
	// Nil keeps them in plain text, for tests only: the server always
	// gives one, and Open refuses a database with encrypted credentials
	// when none is given.
	Keys *secrets.Keyring
	// Objects, when set, keeps logs and artifacts in an object store, the
	// database holding their index only (see objects.go). Rows written
	// without one (or before) stay readable from the database.
	Objects store.Objects
}

// DB is a store.Store on a SQL database. It is safe for concurrent use.
type DB struct {
	dialect string
	// w takes every write transaction; r serves reads. For SQLite w has a
	// single connection, so writers queue in Go instead of spinning on
	// SQLITE_BUSY; for PostgreSQL both are the same pool.
	w, r *dbsql.DB
	// forUpdate is " FOR NO KEY UPDATE" on PostgreSQL and "" on SQLite,
	// whose single writer already excludes every other. NO KEY: we never
	// change keys, and the lock then leaves foreign-key checks (an event
	// or log chunk inserted for a locked row) free to proceed.
	forUpdate string
	// stmts are read statements prepared once on the reader pool, for the
	// per-request hot paths (the webhook's repository lookup): modernc's
	// driver otherwise parses the SQL again on every call. wstmts are the
	// same for SQLite's writer (the webhook group commit).
	stmts, wstmts stmtCache
	// ckpt checkpoints SQLite's WAL off the write path (nil on PostgreSQL).
	ckpt *checkpointer
	// keys seal the repositories' credentials (nil: plain text).
	keys *secrets.Keyring
	// rewrote says this Open replaced plain-text secrets (see sealAtOpen).
	rewrote bool
	// logz compresses log chunks.
	logz *logCodec
	// objects holds logs and artifacts (nil: the database does).
	objects store.Objects
	// moves is how far MoveLogs went.
	moves logMoves
}

// stmtCache prepares a statement on first use and keeps it until Close.
type stmtCache struct {
	mu sync.RWMutex
	m  map[string]*dbsql.Stmt
}

// prepared returns query prepared on the reader pool.
func (s *DB) prepared(ctx context.Context, query string) (*dbsql.Stmt, error) {
	return s.stmts.get(ctx, s.r, query)
}

// txStmt returns query prepared for tx, a write transaction: on SQLite
// from the statement prepared once on the writer's only connection by
// prepareWriter, if it is one of those; otherwise prepared in tx (on
// PostgreSQL pgx caches statements per connection). The caller closes it.
func (s *DB) txStmt(ctx context.Context, tx *dbsql.Tx, query string) (*dbsql.Stmt, error) {
	if st := s.writerStmt(query); st != nil {
		return tx.StmtContext(ctx, st), nil
	}
	return tx.PrepareContext(ctx, query)
}

// writerStmt is query as prepareWriter prepared it, or nil.
func (s *DB) writerStmt(query string) *dbsql.Stmt {
	c := &s.wstmts
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[query]
}

// wq is tx for queries run once each: on SQLite those prepareWriter knows
// run from their prepared statements (bound to tx, they close with it).
func (s *DB) wq(tx *dbsql.Tx) querier {
	if s.dialect != dialectSQLite {
		return tx
	}
	return writerTx{tx, s}
}

type writerTx struct {
	*dbsql.Tx
	s *DB
}

func (t writerTx) ExecContext(ctx context.Context, query string, args ...any) (dbsql.Result, error) {
	if st := t.s.writerStmt(query); st != nil {
		return t.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}

func (t writerTx) QueryContext(ctx context.Context, query string, args ...any) (*dbsql.Rows, error) {
	if st := t.s.writerStmt(query); st != nil {
		return t.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, query, args...)
}

func (t writerTx) QueryRowContext(ctx context.Context, query string, args ...any) *dbsql.Row {
	if st := t.s.writerStmt(query); st != nil {
		return t.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, query, args...)
}

// prepareWriter prepares the write hot path's statements on SQLite's
// writer. It runs once the schema is up to date and before any write
// transaction: preparing takes the writer's only connection, which a
// transaction would be holding.
func (s *DB) prepareWriter(ctx context.Context) error {
	if s.dialect != dialectSQLite {
		return nil
	}
	for _, q := range writerQueries(s) {
		if _, err := s.wstmts.get(ctx, s.w, q); err != nil {
			return err
		}
	}
	return nil
}

// get returns query prepared on db.
func (c *stmtCache) get(ctx context.Context, db *dbsql.DB, query string) (*dbsql.Stmt, error) {
	c.mu.RLock()
	st, ok := c.m[query]
	c.mu.RUnlock()
	if ok {
		return st, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st, nil
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*dbsql.Stmt{}
	}
	c.m[query] = st
	return st, nil
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
}

var _ store.Store = (*DB)(nil)

// Open connects to dsn and brings its schema up to date. dsn is a file path
// or sqlite://path for SQLite, postgres:// or postgresql:// for PostgreSQL
// (a search_path parameter selects the schema).
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	const op = "store.Open"
	var s *DB
	var err error
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		s, err = openPostgres(dsn, opts)
	case dsn == "":
		return nil, errs.E(op, errs.Invalid, "empty database address")
	default:
		s, err = openSQLite(strings.TrimPrefix(dsn, "sqlite://"), opts)
	}
	if err != nil {
		return nil, errs.Wrap(op, errs.Invalid, err)
	}
	s.keys = opts.Keys
	s.objects = opts.Objects
	if s.logz, err = newLogCodec(); err != nil {
		s.Close()
		return nil, errs.Wrap(op, errs.Other, err)
	}
	if err := s.r.PingContext(ctx); err != nil {
		s.Close()
		return nil, mapErr(op, err)
	}
	if err := s.migrate(ctx, opts.MaxMigration); err != nil {
		s.Close()
		return nil, err
	}
	if opts.MaxMigration == 0 {
		if err := s.vacuumMode(ctx); err != nil {
			s.Close()
			return nil, mapErr(op, err)
		}
		if err := s.prepareWriter(ctx); err != nil {
			s.Close()
			return nil, mapErr(op, err)
		}
		if err := s.sealAtOpen(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	if _, err := s.EnsureOrg(ctx, "default"); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func openSQLite(path string, opts Options) (*DB, error) {
	if path == "" || strings.ContainsAny(path, "?#") || path == ":memory:" {
		// The driver cuts the file name at '?'; an in-memory database
		// would not be shared by the reader and writer pools.
		return nil, fmt.Errorf("unusable SQLite path %q", path)
	}
	// FULL: the WAL is fsynced at every commit, so an acknowledged
	// webhook survives a power cut.
	params := "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
		"&_pragma=foreign_keys(1)"
	// The writer never checkpoints inside a commit: the checkpointer does
	// it beside it (see checkpoint.go).
	w, err := dbsql.Open("sqlite", path+params+fmt.Sprintf("&_pragma=wal_autocheckpoint(0)&_pragma=journal_size_limit(%d)", walSizeLimit)+
		"&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	r, err := dbsql.Open("sqlite", path+params+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, err
	}
	n := opts.ReadConns
	if n <= 0 {
		n = 4
	}
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	// The writer creates the file and switches it to WAL before any
	// reader opens it read-only.
	if err := pingWriter(w); err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	c, err := dbsql.Open("sqlite", path+params)
	if err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	c.SetMaxOpenConns(1)
	c.SetMaxIdleConns(1)
	c.SetConnMaxIdleTime(0)
	return &DB{dialect: dialectSQLite, w: w, r: r, ckpt: newCheckpointer(c)}, nil
}

// pingWriter opens the writer's connection. Its journal_mode(WAL) answers
// SQLITE_BUSY at once, without the busy timeout, while another process
// converts the same new file to WAL: the conversion takes a moment, so
// opening is tried again for a while.
func pingWriter(w *dbsql.DB) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := w.Ping()
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func openPostgres(dsn string, opts Options) (*DB, error) {
	db, err := dbsql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	n := opts.MaxConns
	if n <= 0 {
		n = 16
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return &DB{dialect: dialectPostgres, w: db, r: db, forUpdate: " FOR NO KEY UPDATE"}, nil
}

// Dialect is "sqlite" or "postgres".
func (s *DB) Dialect() string { return s.dialect }

// Close closes the pools.
func (s *DB) Close() error {
	s.stmts.close()
	s.wstmts.close()
	if s.ckpt != nil {
		s.ckpt.close()
	}
	if s.logz != nil {
		s.logz.close()
	}
	err := s.w.Close()
	if s.r != s.w {
		if rerr := s.r.Close(); err == nil {
			err = rerr
		}
	}
	return err
}

// querier is what *sql.DB and *sql.Tx share, so reads work inside and
// outside transactions.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (dbsql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*dbsql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *dbsql.Row
}

// write runs fn in a write transaction, retrying on PostgreSQL's
// serialisation failures and deadlocks, which are resolved by running
// again. fn must not keep state across attempts.
func (s *DB) write(ctx context.Context, op string, fn func(tx *dbsql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tryWrite(ctx, fn)
		if err == nil {
			return nil
		}
		if attempt < 8 && retryable(err) {
			select {
			case <-time.After(time.Duration(attempt*attempt) * time.Millisecond):
				continue
			case <-ctx.Done():
			}
		}
		return mapErr(op, err)
	}
}

// tryWrite runs fn in a transaction; the context's pending audit entry
// (store.WithAudit), when there is one, is inserted in the same
// transaction after fn, so the change and its entry commit together.
func (s *DB) tryWrite(ctx context.Context, fn func(tx *dbsql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	audit := store.PendingAuditOf(ctx)
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if audit != nil {
		if err := insertAudit(ctx, tx, audit.Entry()); err != nil {
			tx.Rollback()
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if audit != nil {
		audit.MarkWritten()
	}
	if s.ckpt != nil {
		s.ckpt.committed()
	}
	return nil
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	return false
}

// mapErr gives a database error its kind; errors that have one keep it.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errs.KindOf(err) != errs.Other {
		return err
	}
	kind := errs.Other
	var se *sqlite.Error
	var pe *pgconn.PgError
	var ne net.Error
	switch {
	case errors.Is(err, dbsql.ErrNoRows):
		kind = errs.NotFound
	case errors.Is(err, context.Canceled):
		kind = errs.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		kind = errs.Timeout
	case errors.As(err, &se):
		// Extended codes carry the primary code in their low byte.
		switch code := se.Code(); {
		case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE, code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			kind = errs.Conflict
		case code&0xff == sqlite3.SQLITE_CONSTRAINT:
			kind = errs.Invalid
		case code&0xff == sqlite3.SQLITE_BUSY, code&0xff == sqlite3.SQLITE_LOCKED,
			code&0xff == sqlite3.SQLITE_FULL, code&0xff == sqlite3.SQLITE_IOERR:
			kind = errs.Unavailable
		}
	case errors.As(err, &pe):
		switch {
		case pe.Code == "23505":
			kind = errs.Conflict
		case strings.HasPrefix(pe.Code, "23"), strings.HasPrefix(pe.Code, "22"):
			kind = errs.Invalid
		case pe.Code == "40001", pe.Code == "40P01", strings.HasPrefix(pe.Code, "08"),
			strings.HasPrefix(pe.Code, "53"), strings.HasPrefix(pe.Code, "57"):
			kind = errs.Unavailable
		}
	case errors.Is(err, driver.ErrBadConn), errors.As(err, &ne), pgconn.SafeToRetry(err):
		kind = errs.Unavailable
	}
	return errs.Wrap(op, kind, err)
}

// notFound turns sql.ErrNoRows into a NotFound naming what was missing.
func notFound(op string, err error, format string, args ...any) error {
	if errors.Is(err, dbsql.ErrNoRows) {
		return errs.E(op, errs.NotFound, format, args...)
	}
	return mapErr(op, err)
}

// placeholders returns "$from, $from+1, ..." for n values.
func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", from+i)
	}
	return b.String()
}
