package gitmirror

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// batchIdle is how long an unused long-lived cat-file process lives.
const batchIdle = time.Minute

// catBatch is one long-lived `git cat-file --batch --follow-symlinks` of
// a mirror: reading a workflow folder then costs a
// pipe round trip instead of starting git processes. Requests are
// serialised; a request whose context ends (or that goes wrong) kills the
// process, and the next request starts a new one. git re-reads the
// mirror's packs when an object is missing, so objects fetched after the
// start are found.
type catBatch struct {
	git, dir string
	env      []string

	mu    sync.Mutex
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Reader
	idle  *time.Timer
	dead  bool // closed for good (Cache.Close)
	waitc chan struct{}
}

func (c *Cache) batchFor(dir string) *catBatch {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.batch == nil {
		c.batch = map[string]*catBatch{}
	}
	b := c.batch[dir]
	if b == nil {
		b = &catBatch{git: c.opts.GitPath, dir: dir, env: c.env(call{}), dead: c.closed}
		c.batch[dir] = b
	}
	return b
}

// Close stops the long-lived git processes; reads after it fail with
// Unavailable.
func (c *Cache) Close() {
	c.mu.Lock()
	bs := c.batch
	c.batch = nil
	c.closed = true
	c.mu.Unlock()
	c.end()
	c.flights.Wait() // fetches end soon once cancelled: git is killed
	for _, b := range bs {
		b.close(true)
	}
}

// start runs the process; b.mu is held.
func (b *catBatch) start() error {
	cmd := exec.Command(b.git, "--git-dir", b.dir, "cat-file", "--batch", "--follow-symlinks")
	cmd.Env = b.env
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	b.cmd, b.in, b.out = cmd, in, bufio.NewReaderSize(out, 64<<10)
	b.waitc = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(cmd, b.waitc)
	if b.idle == nil {
		b.idle = time.AfterFunc(batchIdle, func() { b.close(false) })
	} else {
		b.idle.Reset(batchIdle)
	}
	return nil
}

// stop ends the process; b.mu is held.
func (b *catBatch) stop() {
	if b.cmd == nil {
		return
	}
	_ = b.in.Close()
	select {
	case <-b.waitc:
	case <-time.After(2 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.waitc
	}
	b.cmd, b.in, b.out = nil, nil, nil
}

func (b *catBatch) close(forGood bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stop()
	if forGood {
		b.dead = true
		if b.idle != nil {
			b.idle.Stop()
		}
	}
}

// batchReply is one object of a batch answer: its type ("blob", "tree",
// ..., or "missing", "dangling", "loop", "notdir", "symlink"), its oid
// (for found objects) and size, and its content (nil when the caller did
// not want it).
type batchReply struct {
	oid, typ string
	size     int64
	data     []byte
}

// query sends every input at once and reads one reply each. want(i, typ,
// size) says whether to keep the content of reply i; content not kept is
// skipped without being held.
func (b *catBatch) query(ctx context.Context, op string, inputs []string, want func(i int, typ string, size int64) bool) ([]batchReply, error) {
	for _, in := range inputs {
		if strings.ContainsAny(in, "\n\x00") {
			return nil, errs.E(op, errs.Invalid, "bad object name %q", in)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dead {
		return nil, errs.E(op, errs.Unavailable, "the mirror cache is closed")
	}
	if b.cmd == nil {
		if err := b.start(); err != nil {
			return nil, errs.E(op, errs.Other, "git cat-file: %v", err)
		}
	}
	b.idle.Reset(batchIdle)
	// A request that cannot finish in time leaves the protocol in an
	// unknown state: the process goes, the next request starts another.
	// The process is taken now: b.stop clears b.cmd, and this may run after.
	proc := b.cmd.Process
	stop := context.AfterFunc(ctx, func() { _ = proc.Kill() })
	defer stop()
	replies, err := b.exchange(inputs, want)
	if err != nil {
		b.stop()
		if ctx.Err() != nil {
			return nil, errs.E(op, kindOfCtx(ctx.Err()), "git cat-file: %v", ctx.Err())
		}
		return nil, errs.E(op, errs.Other, "git cat-file: %v", err)
	}
	return replies, nil
}

// exchange writes the inputs (from a goroutine: git answers while it
// reads, and a large request would fill both pipes) and reads the replies.
func (b *catBatch) exchange(inputs []string, want func(i int, typ string, size int64) bool) ([]batchReply, error) {
	werr := make(chan error, 1)
	go func(w io.Writer) {
		_, err := io.WriteString(w, strings.Join(inputs, "\n")+"\n")
		werr <- err
	}(b.in)
	replies := make([]batchReply, len(inputs))
	for i := range inputs {
		header, err := b.out.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("reading the reply to %q: %v", inputs[i], err)
		}
		r := &replies[i]
		r.typ, r.size = parseHeader(strings.TrimSuffix(header, "\n"))
		if f := strings.Fields(header); len(f) == 3 {
			r.oid = f[0]
		}
		if r.size < 0 {
			continue
		}
		if want != nil && want(i, r.typ, r.size) {
			r.data = make([]byte, r.size)
			if _, err := io.ReadFull(b.out, r.data); err != nil {
				return nil, err
			}
		} else if _, err := b.out.Discard(int(r.size)); err != nil {
			return nil, err
		}
		if c, err := b.out.ReadByte(); err != nil || c != '\n' {
			return nil, fmt.Errorf("short reply for %q", inputs[i])
		}
	}
	if err := <-werr; err != nil {
		return nil, err
	}
	return replies, nil
}
