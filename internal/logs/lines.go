package logs

import (
	"bytes"
	"strings"
)

// MaxLine is the longest line handed on whole; longer lines are cut into
// pieces of this size so a stream without newlines cannot grow memory.
const MaxLine = 64 << 10

// LineWriter is an io.Writer that hands on complete lines (without their
// newline; a trailing \r is dropped too), all the lines of one Write in one
// call. Call Flush at the end for a last line without a newline. Not safe
// for concurrent use.
//
// The lines of one Write are substrings of one string made from it: one
// allocation per Write, not per line. A line kept by a callee keeps that
// string (at most the size of one Write) alive.
type LineWriter struct {
	fn    func(lines []string)
	buf   []byte   // the start of a line whose newline has not come yet
	lines []string // reused between calls
}

// NewLineWriter returns a LineWriter calling fn for every line.
func NewLineWriter(fn func(line string)) *LineWriter {
	return NewBatchLineWriter(func(lines []string) {
		for _, l := range lines {
			fn(l)
		}
	})
}

// NewBatchLineWriter returns a LineWriter calling fn with the complete
// lines of each Write (never with none). The slice is only valid during
// the call (fn may change its elements); the strings may be kept.
func NewBatchLineWriter(fn func(lines []string)) *LineWriter {
	return &LineWriter{fn: fn}
}

func (w *LineWriter) Write(p []byte) (int, error) {
	n := len(p)
	w.lines = w.lines[:0]
	if len(w.buf) > 0 {
		// Complete the pending line first.
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			w.cutLong()
			w.hand()
			return n, nil
		}
		w.buf = append(w.buf, p[:i]...)
		w.add(string(w.buf))
		w.buf = w.buf[:0]
		p = p[i+1:]
	}
	if last := bytes.LastIndexByte(p, '\n'); last >= 0 {
		s := string(p[:last])
		for {
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				w.add(s)
				break
			}
			w.add(s[:i])
			s = s[i+1:]
		}
		p = p[last+1:]
	}
	if len(p) > 0 {
		w.buf = append(w.buf, p...)
		w.cutLong()
	}
	w.hand()
	return n, nil
}

// cutLong hands on MaxLine pieces of a pending line that has grown too long.
func (w *LineWriter) cutLong() {
	for len(w.buf) >= MaxLine {
		w.add(string(w.buf[:MaxLine]))
		w.buf = append(w.buf[:0], w.buf[MaxLine:]...)
	}
}

func (w *LineWriter) add(l string) {
	w.lines = append(w.lines, strings.TrimSuffix(l, "\r"))
}

func (w *LineWriter) hand() {
	if len(w.lines) > 0 {
		w.fn(w.lines)
		clear(w.lines) // do not keep the strings alive
		w.lines = w.lines[:0]
	}
}

// Flush hands on a last, unterminated line.
func (w *LineWriter) Flush() {
	if len(w.buf) > 0 {
		w.lines = append(w.lines[:0], strings.TrimSuffix(string(w.buf), "\r"))
		w.buf = w.buf[:0]
		w.hand()
	}
}
