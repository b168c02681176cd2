package server

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// HookLimits bound what webhooks not yet verified may hold. A body's
// signature covers all of it, so it is known genuine only once it is read:
// until then it is kept in memory while the shared Memory budget allows,
// and spooled to an unlinked file in the data folder beyond that; when the
// spool budget is spent too, the request is refused with 503 and a reason
// (the forge retries; GitHub shows it in the delivery's log). Bodies of
// more than PerBody bytes always go to the spool.
type HookLimits struct {
	// Memory is the budget of unverified body bytes in memory, all
	// requests together (default 16 MiB).
	Memory int64
	// Spool is the budget of unverified body bytes in spool files
	// (default 1 GiB).
	Spool int64
	// PerBody is the largest body kept in memory (default 1 MiB).
	PerBody int64
}

func (l *HookLimits) defaults() {
	if l.Memory <= 0 {
		l.Memory = 16 << 20
	}
	if l.Spool <= 0 {
		l.Spool = 1 << 30
	}
	if l.PerBody <= 0 {
		l.PerBody = 1 << 20
	}
	l.PerBody = min(l.PerBody, l.Memory)
}

// budget counts bytes against a maximum; safe for concurrent use.
type budget struct {
	used atomic.Int64
	max  int64
}

// take reserves n bytes, or reports false (reserving nothing) when they
// would go over the maximum.
func (b *budget) take(n int64) bool {
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *budget) give(n int64) { b.used.Add(-n) }

// hookBodies reads webhook bodies within HookLimits.
type hookBodies struct {
	lim        HookLimits
	dir        string // spool folder
	mem, spool budget
	chunks     sync.Pool // copy buffers of spooled reads (small: pooling them keeps nothing big)
}

const spoolChunk = 32 << 10

func newHookBodies(lim HookLimits, dir string) *hookBodies {
	lim.defaults()
	return &hookBodies{
		lim: lim, dir: dir,
		mem: budget{max: lim.Memory}, spool: budget{max: lim.Spool},
		chunks: sync.Pool{New: func() any { b := make([]byte, spoolChunk); return &b }},
	}
}

// errSpoolFull refuses a body when both budgets are spent.
var errSpoolFull = api.Public(errs.E("hook", errs.Unavailable, "too many webhook bytes are being received at once; retry later"))

// hookBody is one request's body: in memory (mem, chunks that hold
// bytes of the memory budget; one of exactly the body's size when it is
// announced) or in an unlinked spool file (n bytes, all of the spool
// budget). release gives everything back.
type hookBody struct {
	hb   *hookBodies
	mem  [][]byte
	held int64
	file *os.File
	n    int64
}

// memChunk is the step by which a body of unknown size takes memory:
// chunks, not a doubling slice, so that growing leaves no garbage.
const memChunk = 32 << 10

// read reads r (a request body of size bytes, -1 when unknown) into a
// hookBody, feeding every byte to sink (the signature check) as it comes.
// On error, nothing stays held.
func (hb *hookBodies) read(r io.Reader, size int64, sink io.Writer) (*hookBody, error) {
	b := &hookBody{hb: hb}
	err := b.fill(r, size, sink)
	if err != nil {
		b.release()
		return nil, err
	}
	return b, nil
}

func (b *hookBody) fill(r io.Reader, size int64, sink io.Writer) error {
	if size > b.hb.lim.PerBody || size > 0 && !b.grow(size) {
		return b.spillAndCopy(r, sink)
	}
	if size == 0 {
		return atEOF(r)
	}
	for {
		last := len(b.mem) - 1
		if last < 0 || len(b.mem[last]) == cap(b.mem[last]) {
			if b.n == size {
				return atEOF(r) // all announced bytes are in
			}
			if !b.grow(min(memChunk, b.hb.lim.PerBody-b.held)) {
				return b.spillAndCopy(r, sink)
			}
			last++
		}
		c := b.mem[last]
		n, err := r.Read(c[len(c):cap(c)])
		_, _ = sink.Write(c[len(c) : len(c)+n])
		b.mem[last], b.n = c[:len(c)+n], b.n+int64(n)
		if err == io.EOF && size > 0 && b.n < size {
			return errs.E("hook", errs.Invalid, "body shorter than its Content-Length")
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return readErr(err)
		}
	}
}

// atEOF checks that r has nothing more.
func atEOF(r io.Reader) error {
	var one [1]byte
	for {
		n, err := r.Read(one[:])
		switch {
		case n > 0:
			return errs.E("hook", errs.Invalid, "body longer than its Content-Length")
		case err == io.EOF:
			return nil
		case err != nil:
			return readErr(err)
		}
	}
}

// grow adds a chunk of n bytes within the memory budget and PerBody;
// false when it may not.
func (b *hookBody) grow(n int64) bool {
	if n <= 0 || b.held+n > b.hb.lim.PerBody || !b.hb.mem.take(n) {
		return false
	}
	b.mem = append(b.mem, make([]byte, 0, n))
	b.held += n
	return true
}

// spillAndCopy moves the body to a spool file, unlinked at once so that
// nothing stays on disk whatever happens to the process, and reads the
// rest of it there.
func (b *hookBody) spillAndCopy(r io.Reader, sink io.Writer) error {
	if !b.hb.spool.take(b.n) {
		return errSpoolFull
	}
	f, err := os.CreateTemp(b.hb.dir, "hook-*")
	if err != nil {
		b.hb.spool.give(b.n)
		return errs.Wrap("hook", errs.Unavailable, err)
	}
	b.file = f // from here on release gives back n bytes of the spool budget
	if err := os.Remove(f.Name()); err != nil {
		return errs.Wrap("hook", errs.Unavailable, err)
	}
	for _, c := range b.mem {
		if _, err := f.Write(c); err != nil {
			return errs.Wrap("hook", errs.Unavailable, err)
		}
	}
	b.hb.mem.give(b.held)
	b.mem, b.held = nil, 0
	return b.copyToSpool(r, sink)
}

func (b *hookBody) copyToSpool(r io.Reader, sink io.Writer) error {
	bp := b.hb.chunks.Get().(*[]byte)
	defer b.hb.chunks.Put(bp)
	buf := *bp
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if !b.hb.spool.take(int64(n)) {
				return errSpoolFull
			}
			b.n += int64(n)
			_, _ = sink.Write(buf[:n])
			if _, werr := b.file.Write(buf[:n]); werr != nil {
				return errs.Wrap("hook", errs.Unavailable, werr)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return readErr(err)
		}
	}
}

func readErr(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return errs.E("hook", errs.TooLarge, "body larger than %d bytes", MaxHookBody)
	}
	return errs.E("hook", errs.Invalid, "reading body: %v", err)
}

// replay writes the body again to w (a signature check with another secret).
func (b *hookBody) replay(w io.Writer) error {
	if b.file != nil {
		_, err := io.Copy(w, io.NewSectionReader(b.file, 0, b.n))
		return err
	}
	for _, c := range b.mem {
		if _, err := w.Write(c); err != nil {
			return err
		}
	}
	return nil
}

// bytes returns the body in memory, reading a spooled one back (call it
// once the body is verified: its memory is then the event's).
func (b *hookBody) bytes() ([]byte, error) {
	if b.file == nil && len(b.mem) == 1 {
		return b.mem[0], nil
	}
	out := make([]byte, 0, b.n)
	if b.file == nil {
		for _, c := range b.mem {
			out = append(out, c...)
		}
		return out, nil
	}
	out = out[:b.n]
	if _, err := b.file.ReadAt(out, 0); err != nil {
		return nil, errs.Wrap("hook", errs.Unavailable, err)
	}
	return out, nil
}

// release gives the body's budget back and closes its spool file (which
// frees its disk space: it is unlinked). Safe to call twice.
func (b *hookBody) release() {
	b.hb.mem.give(b.held)
	b.held, b.mem = 0, nil
	if b.file != nil {
		b.hb.spool.give(b.n)
		_ = b.file.Close()
		b.file = nil
	}
	b.n = 0
}
