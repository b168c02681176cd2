package server

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/forge"
)

// oneByOne returns at most 7 bytes per Read, as a slow upload does.
type oneByOne struct{ r io.Reader }

func (o oneByOne) Read(p []byte) (int, error) { return o.r.Read(p[:min(len(p), 7)]) }

func TestHookBodyBudgets(t *testing.T) {
	dir := t.TempDir()
	hb := newHookBodies(HookLimits{Memory: 100 << 10, Spool: 300 << 10, PerBody: 64 << 10}, dir)
	body := func(n int) []byte { return bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n] }
	read := func(b []byte, announce bool) (*hookBody, []byte, error) {
		t.Helper()
		size := int64(len(b))
		if !announce {
			size = -1
		}
		sum := sha256.New()
		got, err := hb.read(oneByOne{bytes.NewReader(b)}, size, sum)
		if err == nil {
			if all, _ := got.bytes(); !bytes.Equal(all, b) {
				t.Fatalf("body of %d bytes (announced %v) read back as %d bytes", len(b), announce, len(all))
			}
			var again bytes.Buffer
			if err := got.replay(&again); err != nil || !bytes.Equal(again.Bytes(), b) {
				t.Fatalf("replay: %v, %d bytes", err, again.Len())
			}
			want := sha256.Sum256(b)
			if !bytes.Equal(sum.Sum(nil), want[:]) {
				t.Fatal("the sink did not see the body's bytes")
			}
		}
		return got, b, err
	}
	// Small bodies stay in memory, announced or not.
	small, _, err := read(body(5000), true)
	if err != nil || small.file != nil || hb.mem.used.Load() != 5000 {
		t.Fatalf("small announced: %v, spooled %v, memory used %d", err, small.file != nil, hb.mem.used.Load())
	}
	chunked, _, err := read(body(40<<10), false)
	if err != nil || chunked.file != nil {
		t.Fatalf("small chunked: %v, spooled %v", err, chunked.file != nil)
	}
	// Over PerBody: spooled, announced or found out while reading.
	big, _, err := read(body(200<<10), true)
	if err != nil || big.file == nil {
		t.Fatalf("big announced: %v, spooled %v", err, big.file != nil)
	}
	bigChunked, _, err := read(body(90<<10), false)
	if err != nil || bigChunked.file == nil {
		t.Fatalf("big chunked: %v, spooled %v", err, bigChunked.file != nil)
	}
	if n := hb.spool.used.Load(); n != 290<<10 {
		t.Errorf("spool budget used %d, want %d", n, 290<<10)
	}
	// The spool is full: refused with a reason, nothing kept.
	if _, _, err := read(body(100<<10), true); !errs.Is(err, errs.Unavailable) || !strings.Contains(err.Error(), "retry") {
		t.Errorf("over both budgets: %v", err)
	}
	if n := hb.spool.used.Load(); n != 290<<10 {
		t.Errorf("a refused body kept %d bytes of the spool budget", n-290<<10)
	}
	// Spool files are unlinked at once: the folder stays empty.
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("spool folder holds %d files", len(ents))
	}
	for _, b := range []*hookBody{small, chunked, big, bigChunked} {
		b.release()
		b.release()
	}
	if m, s := hb.mem.used.Load(), hb.spool.used.Load(); m != 0 || s != 0 {
		t.Errorf("after release: memory %d, spool %d bytes still counted", m, s)
	}
	// A body longer than the limit reader allows is too large.
	if _, err := hb.read(io.LimitReader(bytes.NewReader(body(10)), 5), 10, io.Discard); !errs.Is(err, errs.Invalid) {
		t.Errorf("short body: %v", err)
	}
	if _, err := hb.read(bytes.NewReader(body(10)), 5, io.Discard); !errs.Is(err, errs.Invalid) {
		t.Errorf("body over its Content-Length: %v", err)
	}
	if m, s := hb.mem.used.Load(), hb.spool.used.Load(); m != 0 || s != 0 {
		t.Errorf("after errors: memory %d, spool %d bytes still counted", m, s)
	}
}

// BenchmarkHookBody compares reading and verifying a 4 KB push as the
// intake did (io.ReadAll, then forge.Verify) with the budgeted stream
// (hookBodies.read feeding forge.Verifier).
func BenchmarkHookBody(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 4066)
	h := http.Header{}
	h.Set("X-Hub-Signature-256", sign("s3cret", body))
	b.Run("readall", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			got, err := io.ReadAll(bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			if err := forge.Verify("github", []byte("s3cret"), h, got, forge.VerifyOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stream", func(b *testing.B) {
		b.ReportAllocs()
		hb := newHookBodies(HookLimits{}, b.TempDir())
		for b.Loop() {
			v, err := forge.NewVerifier("github", []byte("s3cret"), h, forge.VerifyOptions{})
			if err != nil {
				b.Fatal(err)
			}
			got, err := hb.read(bytes.NewReader(body), int64(len(body)), v)
			if err != nil {
				b.Fatal(err)
			}
			if err := v.Check(); err != nil {
				b.Fatal(err)
			}
			got.release()
		}
	})
}

// chunked returns at most n bytes per Read.
type chunked struct {
	r io.Reader
	n int
}

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// FuzzHookBody reads bodies of any size, announced truly, falsely or not
// at all, in reads of any size, under small budgets: what is read back is
// the body, the sink saw it, and every budget is whole again afterwards.
func FuzzHookBody(f *testing.F) {
	f.Add([]byte(`{"ref":"refs/heads/main"}`), int64(25), uint16(7), uint16(4096))
	f.Add(bytes.Repeat([]byte("a"), 10000), int64(-1), uint16(1000), uint16(3000))
	f.Add(bytes.Repeat([]byte("b"), 5000), int64(4000), uint16(64), uint16(100))
	f.Add([]byte{}, int64(0), uint16(1), uint16(1))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body []byte, size int64, step, mem uint16) {
		hb := newHookBodies(HookLimits{Memory: int64(mem) + 1, Spool: 8 << 10, PerBody: int64(mem)/2 + 1}, dir)
		if size < -1 {
			size = -1
		}
		sum := sha256.New()
		got, err := hb.read(chunked{bytes.NewReader(body), int(step) + 1}, size, sum)
		switch {
		case err != nil:
			k := errs.KindOf(err)
			falseSize := size >= 0 && size != int64(len(body))
			if k != errs.Invalid && k != errs.Unavailable || k == errs.Invalid && !falseSize {
				t.Fatalf("read %d bytes (announced %d): %v", len(body), size, err)
			}
		default:
			all, berr := got.bytes()
			if berr != nil || !bytes.Equal(all, body) {
				t.Fatalf("read back %d bytes of %d: %v", len(all), len(body), berr)
			}
			if want := sha256.Sum256(body); !bytes.Equal(sum.Sum(nil), want[:]) {
				t.Fatal("the sink did not see the body")
			}
			got.release()
		}
		if m, s := hb.mem.used.Load(), hb.spool.used.Load(); m != 0 || s != 0 {
			t.Fatalf("budgets not given back: memory %d, spool %d", m, s)
		}
	})
}

// The accepted answer is writeJSON's, byte for byte.
func TestWriteEventID(t *testing.T) {
	for _, id := range []int64{1, 42, 1 << 40} {
		want, got := httptest.NewRecorder(), httptest.NewRecorder()
		writeJSON(want, http.StatusAccepted, map[string]any{"event_id": id})
		writeEventID(got, id)
		if got.Code != want.Code || got.Body.String() != want.Body.String() || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
			t.Errorf("writeEventID(%d) = %d %q %q, want %d %q %q", id, got.Code, got.Header().Get("Content-Type"), got.Body,
				want.Code, want.Header().Get("Content-Type"), want.Body)
		}
	}
}
