package sqlstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	dbsql "database/sql"
	"encoding/hex"
	"hash"
	"io"
	"strconv"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Logs and artifacts may live in an object store (Options.Objects): the
// database then keeps their index only (log_segments, artifacts.object_key
// with size and checksum). An object is deleted through object_trash: the
// transaction that drops its index row records its name there, and the
// object goes after the commit (emptyTrash), so a crash between the two
// leaves a name to retry, never a row naming a missing object.

// trashBatch is how many trashed objects one emptyTrash pass deletes.
const trashBatch = 100

// objectName is prefix + a random suffix, so two writers racing for the
// same content (two replicas moving one log) never overwrite each other.
func objectName(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// trash records, inside tx, the objects named by the object_key column
// of the rows query selects, to be deleted after the commit.
func trash(ctx context.Context, tx *dbsql.Tx, query string, args ...any) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO object_trash (object_key, since) SELECT object_key, `+
		strconv.FormatInt(us(now()), 10)+` FROM (`+query+`) AS t WHERE object_key <> ''
		ON CONFLICT (object_key) DO NOTHING`, args...)
	return err
}

// emptyTrash deletes trashed objects from the object store, then their
// names; it stops at the first failure (the names stay for the next pass).
func (s *DB) emptyTrash(ctx context.Context) error {
	if s.objects == nil {
		return nil
	}
	const op = "store.emptyTrash"
	for {
		keys, err := queryAll(ctx, s.r, func(sc scanner) (string, error) {
			var k string
			return k, sc.Scan(&k)
		}, `SELECT object_key FROM object_trash ORDER BY since LIMIT `+strconv.Itoa(trashBatch))
		if err != nil || len(keys) == 0 {
			return mapErr(op, err)
		}
		for _, k := range keys {
			if err := s.objects.Delete(ctx, k); err != nil {
				return errs.Wrap(op, errs.KindOf(err), err)
			}
			if err := s.write(ctx, op, func(tx *dbsql.Tx) error {
				_, err := tx.ExecContext(ctx, `DELETE FROM object_trash WHERE object_key = $1`, k)
				return err
			}); err != nil {
				return err
			}
		}
		if len(keys) < trashBatch {
			return nil
		}
	}
}

// emptyTrashSoon is emptyTrash after a request's change, detached from
// the request's end: a failure leaves the names for the sweeper.
func (s *DB) emptyTrashSoon(ctx context.Context) {
	if s.objects == nil {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_ = s.emptyTrash(dctx)
}

// checkedReader reads an object and fails at its end unless it had size
// bytes with the SHA-256 sum.
type checkedReader struct {
	rc   io.ReadCloser
	h    hash.Hash
	n    int64
	size int64
	sum  string
	what string
}

func newCheckedReader(rc io.ReadCloser, size int64, sum, what string) *checkedReader {
	return &checkedReader{rc: rc, h: sha256.New(), size: size, sum: sum, what: what}
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if c.n > c.size {
		return n, errs.E("store.objects", errs.Other, "%s: object is larger than its recorded %d bytes", c.what, c.size)
	}
	if err == io.EOF {
		if c.n != c.size || (c.sum != "" && hex.EncodeToString(c.h.Sum(nil)) != c.sum) {
			return n, errs.E("store.objects", errs.Other, "%s: object does not match its recorded size and checksum", c.what)
		}
	}
	return n, err
}

func (c *checkedReader) Close() error { return c.rc.Close() }

// getObject opens a stored object, checked against its index.
func (s *DB) getObject(ctx context.Context, key string, size int64, sum, what string) (io.ReadCloser, error) {
	const op = "store.objects"
	if s.objects == nil {
		return nil, errs.E(op, errs.Unavailable, "%s is in the object store, and the server has none configured", what)
	}
	rc, err := s.objects.Get(ctx, key)
	if err != nil {
		return nil, errs.Wrap(op, errs.KindOf(err), err)
	}
	return newCheckedReader(rc, size, sum, what), nil
}

// hashingReader counts and hashes what is read through it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func newHashingReader(r io.Reader) *hashingReader { return &hashingReader{r: r, h: sha256.New()} }

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (h *hashingReader) sum() string { return hex.EncodeToString(h.h.Sum(nil)) }
