package sqlstore

import (
	"bufio"
	"bytes"
	"context"
	dbsql "database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// With an object store, a job's log chunks are written to the database
// (the live tail) and moved into segment objects: while the job runs,
// whenever its tail holds segmentBytes (the last chunk stays, for
// RetryLog), and all of them once its run has finished (MoveLogs). A
// segment holds consecutive chunks as stored (zstd or plain), so moving
// recompresses nothing. A move is one transaction (segment row in, chunk
// rows out), and ReadLog reads the chunks before the segments, so a
// reader sees every chunk exactly once whenever the move happens.

// segmentBytes is the stored size at which a running job's tail is moved
// into a segment, and the most one segment holds. A reader's page reads
// (and checks) the whole segment holding its first chunk, so segments are
// kept about the size of a page's stored chunks: a page holds up to
// store.LogReadBytes of output, a few times less stored.
const segmentBytes = 1 << 20

// sealEvery: AppendLog checks the tail's size every this many chunks.
const sealEvery = 64

// moveBatch is how many jobs one MoveLogs call moves.
const moveBatch = 100

// segmentMagic starts every segment object (format version 1).
const segmentMagic = "CVYLOGS1"

// maxSegmentRecord bounds one record's data when reading a segment.
const maxSegmentRecord = 64 << 20

// storedChunk is a log chunk as stored (Data compressed when Z).
type storedChunk struct {
	Seq, At int64
	Z       bool
	Data    []byte
}

// segment is one row of log_segments.
type segment struct {
	First, Last int64
	Key, Sum    string
	Size        int64
}

// encodeSegment is the object holding chunks: the magic, then per chunk
// uvarint seq, varint time, one byte compressed, uvarint length, data.
func encodeSegment(chunks []storedChunk) []byte {
	n := len(segmentMagic)
	for _, c := range chunks {
		n += len(c.Data) + 3*binary.MaxVarintLen64 + 1
	}
	b := make([]byte, 0, n)
	b = append(b, segmentMagic...)
	for _, c := range chunks {
		b = binary.AppendUvarint(b, uint64(c.Seq))
		b = binary.AppendVarint(b, c.At)
		b = append(b, b2byte(c.Z))
		b = binary.AppendUvarint(b, uint64(len(c.Data)))
		b = append(b, c.Data...)
	}
	return b
}

func b2byte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// readSegment calls fn for each chunk of the segment read from r, in
// order, until fn returns false; then reads r to its end (which checks
// it). Data is valid only during the call.
func readSegment(r io.Reader, fn func(c storedChunk) bool) error {
	br := bufio.NewReaderSize(r, 64<<10)
	magic := make([]byte, len(segmentMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != segmentMagic {
		return fmt.Errorf("not a log segment (%v)", err)
	}
	var buf []byte
	want := true
	for {
		seq, err := binary.ReadUvarint(br)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		at, err := binary.ReadVarint(br)
		if err != nil {
			return noEOF(err)
		}
		z, err := br.ReadByte()
		if err != nil {
			return noEOF(err)
		}
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return noEOF(err)
		}
		if n > maxSegmentRecord {
			return fmt.Errorf("log segment record of %d bytes", n)
		}
		if !want {
			if _, err := br.Discard(int(n)); err != nil {
				return noEOF(err)
			}
			continue
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			return noEOF(err)
		}
		want = fn(storedChunk{Seq: int64(seq), At: at, Z: z != 0, Data: buf})
	}
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// sealTail moves a running job's tail into a segment when it holds
// segmentBytes, keeping the last chunk in the database.
func (s *DB) sealTail(ctx context.Context, jobID int64) error {
	var size dbsql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT SUM(LENGTH(data)) FROM log_chunks WHERE job_id = $1`, jobID).Scan(&size); err != nil {
		return mapErr("store.AppendLog", err)
	}
	if !size.Valid || size.Int64 < segmentBytes {
		return nil
	}
	_, err := s.moveChunks(ctx, jobID, false)
	return err
}

// moveChunks moves a job's chunks into segments: all of them, or (!all)
// only full segments and never the last chunk. It returns how many
// segments it wrote.
func (s *DB) moveChunks(ctx context.Context, jobID int64, all bool) (int, error) {
	const op = "store.MoveLogs"
	n := 0
	for {
		chunks, err := s.segmentChunks(ctx, jobID, all)
		if err != nil || len(chunks) == 0 {
			return n, err
		}
		moved, err := s.writeSegment(ctx, jobID, chunks)
		if err != nil {
			return n, errs.Wrap(op, errs.KindOf(err), err)
		}
		if !moved {
			return n, nil // another writer moved them first
		}
		n++
	}
}

// segmentChunks reads the job's oldest chunks up to one segment: nil
// unless all or they fill one.
func (s *DB) segmentChunks(ctx context.Context, jobID int64, all bool) ([]storedChunk, error) {
	q := `SELECT seq, data, compressed, at FROM log_chunks WHERE job_id = $1 ORDER BY seq LIMIT 4096`
	if !all {
		q = `SELECT seq, data, compressed, at FROM log_chunks WHERE job_id = $1
			AND seq < (SELECT MAX(seq) FROM log_chunks WHERE job_id = $1) ORDER BY seq LIMIT 4096`
	}
	rows, err := s.r.QueryContext(ctx, q, jobID)
	if err != nil {
		return nil, mapErr("store.MoveLogs", err)
	}
	defer rows.Close()
	var out []storedChunk
	size := 0
	for size < segmentBytes && rows.Next() {
		var c storedChunk
		var z int64
		if err := rows.Scan(&c.Seq, &c.Data, &z, &c.At); err != nil {
			return nil, mapErr("store.MoveLogs", err)
		}
		c.Z = z != 0
		size += len(c.Data)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr("store.MoveLogs", err)
	}
	if !all && size < segmentBytes {
		return nil, nil
	}
	return out, nil
}

// writeSegment puts chunks (consecutive) into an object, then swaps
// their rows for the segment's in one transaction; false when the rows
// were gone (moved by another writer), the object then deleted again.
func (s *DB) writeSegment(ctx context.Context, jobID int64, chunks []storedChunk) (bool, error) {
	const op = "store.MoveLogs"
	body := encodeSegment(chunks)
	first, last := chunks[0].Seq, chunks[len(chunks)-1].Seq
	key := objectName(fmt.Sprintf("logs/%d/%d-", jobID, first))
	h := newHashingReader(bytes.NewReader(body))
	if err := s.objects.Put(ctx, key, h, int64(len(body))); err != nil {
		return false, err
	}
	moved := false
	err := s.write(ctx, op, func(tx *dbsql.Tx) error {
		moved = false
		var id int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM jobs WHERE id = $1`+s.forUpdate, jobID).Scan(&id); err != nil {
			return notFound(op, err, "no job %d", jobID)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM log_chunks WHERE job_id = $1 AND seq >= $2 AND seq <= $3`, jobID, first, last)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != int64(len(chunks)) {
			return errMoved
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO log_segments (job_id, first_seq, last_seq, object_key, size, checksum)
			VALUES ($1, $2, $3, $4, $5, $6)`, jobID, first, last, key, len(body), h.sum())
		moved = err == nil
		return err
	})
	if errors.Is(err, errMoved) {
		err = nil
	}
	if !moved {
		_ = s.objects.Delete(context.WithoutCancel(ctx), key)
	}
	return moved, err
}

// errMoved rolls a segment's transaction back: its chunks were moved by
// another writer meanwhile.
var errMoved = errors.New("log chunks moved meanwhile")

// logMoves remembers how far MoveLogs went (runs.finished, microseconds):
// later calls look at runs finished since, so each call reads a few
// index entries however long the history. It starts at 0 in each
// process, so the first pass also moves what older releases kept in the
// database.
type logMoves struct {
	mu     sync.Mutex
	cursor int64
}

// MoveLogs moves the chunks of jobs of runs finished before before into
// segments (see store.LogMover); without an object store it does nothing.
func (s *DB) MoveLogs(ctx context.Context, before time.Time) (int, error) {
	const op = "store.MoveLogs"
	if s.objects == nil {
		return 0, nil
	}
	s.moves.mu.Lock() // one pass at a time per process
	defer s.moves.mu.Unlock()
	type job struct{ id, finished int64 }
	jobs, err := queryAll(ctx, s.r, func(sc scanner) (job, error) {
		var j job
		return j, sc.Scan(&j.id, &j.finished)
	}, `SELECT j.id, r.finished FROM runs r JOIN jobs j ON j.run_id = r.id
		WHERE r.finished > 0 AND r.finished >= $1 AND r.finished < $2
		AND EXISTS (SELECT 1 FROM log_chunks c WHERE c.job_id = j.id) ORDER BY r.finished LIMIT `+strconv.Itoa(moveBatch),
		s.moves.cursor, us(before))
	if err != nil {
		return 0, mapErr(op, err)
	}
	for i, j := range jobs {
		if _, err := s.moveChunks(ctx, j.id, true); err != nil {
			return i, err
		}
		s.moves.cursor = j.finished
	}
	if len(jobs) < moveBatch {
		// Everything finished before before is moved: later passes look
		// only a little further back, for runs committed late.
		s.moves.cursor = max(s.moves.cursor, us(before)-moveOverlap)
	}
	return len(jobs), nil
}

// moveOverlap is how far before its last cut-off a MoveLogs pass looks
// again (microseconds), for runs whose finish was committed late.
const moveOverlap = int64(2 * time.Minute / time.Microsecond)

// readSegments appends to page the chunks after after held in segments,
// until page is full (limit chunks or store.LogReadBytes) or no segment
// holds the next chunk.
func (s *DB) readSegments(ctx context.Context, jobID, after int64, limit int, page []store.LogChunk, size *int) ([]store.LogChunk, error) {
	const op = "store.ReadLog"
	for len(page) < limit && *size < store.LogReadBytes {
		var sg segment
		err := s.r.QueryRowContext(ctx, `SELECT first_seq, last_seq, object_key, size, checksum FROM log_segments
			WHERE job_id = $1 AND last_seq > $2 ORDER BY first_seq LIMIT 1`, jobID, after).
			Scan(&sg.First, &sg.Last, &sg.Key, &sg.Size, &sg.Sum)
		if errors.Is(err, dbsql.ErrNoRows) || (err == nil && sg.First > after+1) {
			return page, nil
		}
		if err != nil {
			return page, mapErr(op, err)
		}
		rc, err := s.getObject(ctx, sg.Key, sg.Size, sg.Sum, fmt.Sprintf("log segment %d-%d of job %d", sg.First, sg.Last, jobID))
		if err != nil {
			return page, err
		}
		var derr error
		err = readSegment(rc, func(c storedChunk) bool {
			if c.Seq <= after {
				return true
			}
			if c.Seq != after+1 || len(page) >= limit || *size >= store.LogReadBytes {
				return false
			}
			lc := store.LogChunk{JobID: jobID, Seq: c.Seq, Time: tm(c.At)}
			if lc.Data, derr = s.logz.unpack(c.Data, c.Z); derr != nil {
				return false
			}
			page = append(page, lc)
			*size += len(lc.Data)
			after = c.Seq
			return true
		})
		rc.Close()
		if err == nil {
			err = derr
		}
		if err != nil {
			return page, errs.E(op, errs.Other, "log segment %d-%d of job %d: %v", sg.First, sg.Last, jobID, err)
		}
		if after < sg.Last {
			return page, nil // page full
		}
	}
	return page, nil
}
