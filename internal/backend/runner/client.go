package runner

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Client is the executor's side of the protocol. It runs one request at a
// time; it is safe for concurrent use but Run calls are serialised.
type Client struct {
	w      io.Writer
	closer io.Closer
	hello  Hello

	frames chan inFrame // from the reader goroutine
	done   chan struct{}
	err    error // why the stream ended; valid once done is closed

	mu     sync.Mutex // one Run at a time, and guards nextID
	nextID uint32
	wmu    sync.Mutex // one frame write at a time

	// CancelWait is how long Run waits, after its context ends, for the
	// runner to confirm that the process is gone.
	CancelWait time.Duration
}

type inFrame struct {
	typ     byte
	id      uint32
	payload []byte
	release func()
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, outputChunk); return &b }}

// NewClient reads the runner's hello from r (waiting at most until ctx ends)
// and returns a client that writes requests to w. closer, if not nil, is
// closed by Close; closing it must end r and w.
func NewClient(ctx context.Context, r io.Reader, w io.Writer, closer io.Closer) (*Client, error) {
	c := &Client{
		w: w, closer: closer,
		frames:     make(chan inFrame),
		done:       make(chan struct{}),
		CancelWait: 5 * time.Second,
	}
	dec := NewDecoder(r)
	helloc := make(chan error, 1)
	go func() {
		f, err := dec.Read()
		if err == nil {
			err = c.parseHello(f)
		}
		helloc <- err
		if err != nil {
			c.finish(err)
			return
		}
		c.readLoop(dec)
	}()
	select {
	case err := <-helloc:
		if err != nil {
			return nil, err
		}
		return c, nil
	case <-ctx.Done():
		if closer != nil {
			_ = closer.Close()
		}
		return nil, errs.E("runner: hello", errs.Timeout, "no hello from the step runner: %v", ctx.Err())
	}
}

func (c *Client) parseHello(f Frame) error {
	if f.Type != FrameHello {
		return errs.E("runner: hello", errs.Invalid, "first frame is %q, not a hello", f.Type)
	}
	var h Hello
	if err := json.Unmarshal(f.Payload, &h); err != nil || h.Magic != helloMagic {
		return errs.E("runner: hello", errs.Invalid, "malformed hello")
	}
	if h.Protocol != Protocol {
		return errs.E("runner: hello", errs.Invalid, "runner speaks protocol %d, want %d", h.Protocol, Protocol)
	}
	c.hello = h
	return nil
}

func (c *Client) finish(err error) {
	if err == io.EOF {
		err = errs.E("runner", errs.Unavailable, "step runner closed its output")
	} else if !errs.Is(err, errs.Invalid) {
		err = errs.Wrap("runner", errs.Unavailable, err)
	}
	c.err = err
	close(c.done)
}

// readLoop hands frames to Run one at a time; output payloads are copied into
// pooled buffers so the decoder can go on while Run writes them out.
func (c *Client) readLoop(dec *Decoder) {
	for {
		f, err := dec.Read()
		if err != nil {
			c.finish(err)
			return
		}
		in := inFrame{typ: f.Type, id: f.ID}
		if len(f.Payload) <= outputChunk {
			bp := bufPool.Get().(*[]byte)
			in.payload = append((*bp)[:0], f.Payload...)
			in.release = func() { bufPool.Put(bp) }
		} else {
			in.payload = append([]byte(nil), f.Payload...)
			in.release = func() {}
		}
		select {
		case c.frames <- in:
		case <-c.done:
			return
		}
	}
}

// has reports whether the runner announced feature f.
func (c *Client) has(f string) bool {
	for _, x := range c.hello.Features {
		if x == f {
			return true
		}
	}
	return false
}

// Hello is what the runner said when it started.
func (c *Client) Hello() Hello { return c.hello }

// Done is closed when the runner's stream has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Close closes the underlying stream; the runner then kills what it started.
func (c *Client) Close() error {
	if c.closer == nil {
		return nil
	}
	return c.closer.Close()
}

func (c *Client) write(typ byte, id uint32, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return writeFrame(c.w, typ, id, payload)
}

// feed sends stdin as FrameInput frames, then the empty one that closes
// it, unless stop is closed first.
func (c *Client) feed(id uint32, stdin io.Reader, stop <-chan struct{}) error {
	buf := make([]byte, outputChunk)
	for {
		n, rerr := stdin.Read(buf)
		select {
		case <-stop:
			return nil
		default:
		}
		if n > 0 {
			if err := c.write(FrameInput, id, buf[:n]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return c.write(FrameInput, id, nil)
		}
		if rerr != nil {
			_ = c.write(FrameInput, id, nil)
			return errs.Wrap("runner: read input", errs.Other, rerr)
		}
	}
}

// Run sends req, copies the process's output to out as it arrives and
// returns its exit code. When ctx ends, Run asks the runner to kill the
// process and returns ctx.Err() within CancelWait, even if the runner is
// gone. An error from out ends the process too.
func (c *Client) Run(ctx context.Context, req *Request, out io.Writer) (int, error) {
	return c.RunInput(ctx, req, nil, out)
}

// RunInput is Run with stdin, when not nil, as the process's standard input
// (copied until EOF, then closed). The runner must announce FeatureStdin.
func (c *Client) RunInput(ctx context.Context, req *Request, stdin io.Reader, out io.Writer) (int, error) {
	if stdin != nil {
		if !c.has(FeatureStdin) {
			return -1, errs.E("runner: stdin", errs.Unavailable, "the step runner (conveyor %s) cannot feed a standard input; use a newer conveyor binary", c.hello.Version)
		}
		r := *req
		r.Stdin = true
		req = &r
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	id := c.nextID
	select {
	case <-c.done:
		return -1, c.err
	default:
	}
	if len(req.Fallback) > 0 && !c.has(FeatureFallback) {
		r := *req
		r.Argv, r.Fallback = FallbackArgv(req.Argv, req.Fallback), nil
		req = &r
	}
	p, err := json.Marshal(req)
	if err != nil {
		return -1, errs.Wrap("runner: encode request", errs.Invalid, err)
	}
	stopInput := make(chan struct{})
	defer close(stopInput)
	cl := &call{c: c, id: id, out: out, werr: c.send(id, p, stdin, stopInput), ctxDone: ctx.Done()}
	return cl.wait(ctx)
}

// send writes the request frame, then feeds stdin (when not nil) until
// stop is closed, aside: a write can block if the runner stopped reading.
// The returned channel gets the first error, or nil, once.
func (c *Client) send(id uint32, req []byte, stdin io.Reader, stop <-chan struct{}) <-chan error {
	werr := make(chan error, 1)
	go func() {
		err := c.write(FrameRequest, id, req)
		if err == nil && stdin != nil {
			err = c.feed(id, stdin, stop)
		}
		werr <- err
	}()
	return werr
}

// call is one request of RunInput while it waits for the process to end.
type call struct {
	c    *Client
	id   uint32
	out  io.Writer
	werr <-chan error // from send; nil once received

	outErr    error            // the first error writing to out; output is dropped after it
	cancelled bool             // a cancel frame was sent
	cancelErr error            // what RunInput returns once cancelled
	deadline  <-chan time.Time // CancelWait after cancelling
	ctxDone   <-chan struct{}  // the context's, nil once cancelled
}

// wait handles frames of the request until its exit, an error, or the end
// of the stream; after a cancel, until the runner confirms or CancelWait
// passes.
func (cl *call) wait(ctx context.Context) (int, error) {
	for {
		select {
		case err := <-cl.werr:
			cl.werr = nil
			if err != nil {
				return -1, errs.Wrap("runner: send request", errs.Unavailable, err)
			}
		case f := <-cl.c.frames:
			if f.id != cl.id { // left over from an earlier, abandoned request
				f.release()
				continue
			}
			if code, end, err := cl.frame(f); end {
				return code, err
			}
		case <-cl.ctxDone:
			cl.cancel(ctx.Err())
		case <-cl.deadline:
			return -1, cl.cancelErr
		case <-cl.c.done:
			if cl.cancelled {
				return -1, cl.cancelErr
			}
			return -1, cl.c.err
		}
	}
}

// cancel asks the runner to kill the process, once; RunInput then returns
// why.
func (cl *call) cancel(why error) {
	if cl.cancelled {
		return
	}
	cl.cancelled, cl.cancelErr, cl.ctxDone = true, why, nil
	go func() { _ = cl.c.write(FrameCancel, cl.id, nil) }()
	cl.deadline = time.After(cl.c.CancelWait)
}

// frame handles one frame of the request and releases it; end says the
// request is over, with code and err.
func (cl *call) frame(f inFrame) (code int, end bool, err error) {
	switch f.typ {
	case FrameOutput:
		if cl.outErr == nil && cl.out != nil {
			if _, err := cl.out.Write(f.payload); err != nil {
				cl.outErr = err
				cl.cancel(errs.Wrap("runner: write output", errs.Other, err))
			}
		}
		f.release()
		return 0, false, nil
	case FrameExit:
		code, err := parseExit(f.payload)
		f.release()
		if cl.cancelled {
			return code, true, cl.cancelErr
		}
		return code, true, err
	case FrameError:
		var m ErrorMsg
		if err := json.Unmarshal(f.payload, &m); err != nil {
			m.Message = string(f.payload)
		}
		f.release()
		if cl.cancelled {
			return -1, true, cl.cancelErr
		}
		kind := errs.Other
		if m.NotFound {
			kind = errs.NotFound
		}
		return -1, true, errs.E("runner: start", kind, "%s", m.Message)
	default:
		f.release()
		return -1, true, errs.E("runner", errs.Invalid, "unexpected frame %q", f.typ)
	}
}
