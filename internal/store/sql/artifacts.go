package sqlstore

import (
	"context"
	dbsql "database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// artifactChunk is the size of one stored piece of an artifact: small
// enough for one row and one short write transaction on both databases
// (BLOB and BYTEA alike), large enough that a big artifact is few rows.
const artifactChunk = 1 << 20

// staleUpload: an upload not finished after this long was abandoned (its
// writer died); the next upload to the run removes it.
const staleUpload = time.Hour

const artifactCols = `id, org_id, run_id, name, job, size, retention_days, created`

func scanArtifact(sc scanner) (*store.Artifact, error) {
	var a store.Artifact
	var created int64
	err := sc.Scan(&a.ID, &a.OrgID, &a.RunID, &a.Name, &a.Job, &a.Size, &a.RetentionDays, &created)
	a.Created = tm(created)
	return &a, err
}

// PutArtifact writes the row (not yet complete), the content in chunks
// of their own transactions, then marks it complete, replacing an
// artifact of the same name when overwrite is set.
func (s *DB) PutArtifact(ctx context.Context, a *store.Artifact, overwrite bool, r io.Reader) error {
	const op = "store.PutArtifact"
	if a.Name == "" {
		return errs.E(op, errs.Invalid, "an artifact needs a name")
	}
	exists := func(tx *dbsql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM artifacts WHERE run_id = $1 AND name = $2 AND complete = 1`,
			a.RunID, a.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return errs.E(op, errs.Conflict, "an artifact named %q already exists in run %d: give it another name or set overwrite: true", a.Name, a.RunID)
		}
		return nil
	}
	var key string // the object holding the content ("": chunks in the database)
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		var id int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM runs WHERE id = $1 AND org_id = $2`, a.RunID, a.OrgID).Scan(&id); err != nil {
			return notFound(op, err, "no run %d", a.RunID)
		}
		if !overwrite {
			if err := exists(tx); err != nil {
				return err
			}
		}
		if err := deleteArtifacts(ctx, tx, `run_id = $1 AND complete = 0 AND created < $2`, a.RunID, us(now().Add(-staleUpload))); err != nil {
			return err
		}
		if s.objects != nil {
			key = objectName(fmt.Sprintf("artifacts/%d/", a.RunID))
		}
		return tx.QueryRowContext(ctx, `INSERT INTO artifacts (org_id, run_id, name, job, retention_days, created, object_key)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, a.OrgID, a.RunID, a.Name, a.Job, a.RetentionDays, us(now()), key).Scan(&a.ID)
	})
	if err != nil {
		return err
	}
	drop := func(err error) error {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = s.write(dctx, op, func(tx *dbsql.Tx) error { return deleteArtifacts(dctx, tx, `id = $1`, a.ID) })
		s.emptyTrashSoon(dctx)
		a.ID = 0
		return err
	}
	var size int64
	var sum string
	if key != "" {
		size, sum, err = s.putArtifactObject(ctx, key, r)
	} else {
		size, err = s.putArtifactChunks(ctx, a.ID, r)
	}
	if err != nil {
		return drop(err)
	}
	created := now()
	err = s.write(ctx, op, func(tx *dbsql.Tx) error {
		if overwrite {
			if err := deleteArtifacts(ctx, tx, `run_id = $1 AND name = $2 AND complete = 1`, a.RunID, a.Name); err != nil {
				return err
			}
		} else if err := exists(tx); err != nil {
			return err // another job of the run took the name meanwhile
		}
		_, err := tx.ExecContext(ctx, `UPDATE artifacts SET complete = 1, size = $1, created = $2, checksum = $3 WHERE id = $4`,
			size, us(created), sum, a.ID)
		return err
	})
	if err != nil {
		return drop(err)
	}
	s.emptyTrashSoon(ctx) // an artifact overwritten
	a.Size, a.Created = size, created
	return nil
}

// putArtifactChunks writes the content into the database, a chunk per
// transaction, and returns its size.
func (s *DB) putArtifactChunks(ctx context.Context, id int64, r io.Reader) (int64, error) {
	const op = "store.PutArtifact"
	buf := make([]byte, artifactChunk)
	var size int64
	for seq := int64(1); ; seq++ {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			err := s.write(ctx, op, func(tx *dbsql.Tx) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO artifact_chunks (artifact_id, seq, data) VALUES ($1, $2, $3)`, id, seq, buf[:n])
				return err
			})
			if err != nil {
				return size, err
			}
			size += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return size, nil
		}
		if rerr != nil {
			return size, readerErr(op, rerr)
		}
	}
}

// putArtifactObject streams the content into the object key and returns
// its size and SHA-256 sum.
func (s *DB) putArtifactObject(ctx context.Context, key string, r io.Reader) (int64, string, error) {
	const op = "store.PutArtifact"
	src := &errReader{r: r}
	h := newHashingReader(src)
	if err := s.objects.Put(ctx, key, h, -1); err != nil {
		if src.err != nil && src.err != io.EOF {
			return 0, "", readerErr(op, src.err) // the upload's own error (TooLarge), as it is
		}
		return 0, "", errs.Wrap(op, errs.KindOf(err), err)
	}
	return h.n, h.sum(), nil
}

// readerErr is an error of the content's reader: its kind kept, else
// Unavailable (the client went away).
func readerErr(op string, err error) error {
	if errs.KindOf(err) == errs.Other {
		return errs.Wrap(op, errs.Unavailable, err)
	}
	return err
}

// errReader remembers its reader's last error.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

// deleteArtifacts removes the artifacts matching where, with their chunks
// (their objects go to the trash).
func deleteArtifacts(ctx context.Context, tx *dbsql.Tx, where string, args ...any) error {
	if err := trash(ctx, tx, `SELECT object_key FROM artifacts WHERE `+where, args...); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM artifact_chunks WHERE artifact_id IN (SELECT id FROM artifacts WHERE `+where+`)`, args...); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM artifacts WHERE `+where, args...)
	return err
}

// ListArtifacts lists the complete artifacts of a run of the organisation.
func (s *DB) ListArtifacts(ctx context.Context, orgID, runID int64) ([]*store.Artifact, error) {
	const op = "store.ListArtifacts"
	if _, err := s.GetRun(ctx, orgID, runID); err != nil {
		return nil, err
	}
	list, err := queryAll(ctx, s.r, scanArtifact, `SELECT `+artifactCols+` FROM artifacts
		WHERE org_id = $1 AND run_id = $2 AND complete = 1 ORDER BY name`, orgID, runID)
	return list, mapErr(op, err)
}

// OpenArtifact returns a complete artifact and a reader of its chunks.
func (s *DB) OpenArtifact(ctx context.Context, orgID, runID int64, name string) (*store.Artifact, io.ReadCloser, error) {
	const op = "store.OpenArtifact"
	a, err := scanArtifact(s.r.QueryRowContext(ctx, `SELECT `+artifactCols+` FROM artifacts
		WHERE org_id = $1 AND run_id = $2 AND name = $3 AND complete = 1`, orgID, runID, name))
	if err != nil {
		return nil, nil, notFound(op, err, "no artifact %q in run %d", name, runID)
	}
	var key, sum string
	if err := s.r.QueryRowContext(ctx, `SELECT object_key, checksum FROM artifacts WHERE id = $1`, a.ID).Scan(&key, &sum); err != nil {
		return nil, nil, notFound(op, err, "no artifact %q in run %d", name, runID)
	}
	if key != "" {
		rc, err := s.getObject(ctx, key, a.Size, sum, fmt.Sprintf("artifact %q of run %d", name, runID))
		if err != nil {
			return nil, nil, err
		}
		return a, rc, nil
	}
	return a, &chunkReader{ctx: ctx, db: s.r, id: a.ID, left: a.Size}, nil
}

// chunkReader reads an artifact's chunks one query at a time.
type chunkReader struct {
	ctx  context.Context
	db   *dbsql.DB
	id   int64
	seq  int64
	left int64 // bytes not yet read
	buf  []byte
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		if c.left <= 0 {
			return 0, io.EOF
		}
		c.seq++
		err := c.db.QueryRowContext(c.ctx, `SELECT data FROM artifact_chunks WHERE artifact_id = $1 AND seq = $2`, c.id, c.seq).Scan(&c.buf)
		if errors.Is(err, dbsql.ErrNoRows) {
			return 0, errs.E("store.ReadArtifact", errs.NotFound, "the artifact was replaced or removed while it was read")
		}
		if err != nil {
			return 0, mapErr("store.ReadArtifact", err)
		}
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	c.left -= int64(n)
	return n, nil
}

func (c *chunkReader) Close() error { c.buf = nil; c.left = 0; return nil }
