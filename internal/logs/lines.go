package logs

import (
	"bytes"
)

// MaxLine is the longest line handed on whole; longer lines are cut into
// pieces of this size so a stream without newlines cannot grow memory.
const MaxLine = 64 << 10

// LineWriter is an io.Writer that calls fn for each complete line (without
// its newline; a trailing \r is dropped too). Call Flush at the end for a
// last line without a newline. Not safe for concurrent use.
type LineWriter struct {
	fn  func(line string)
	buf []byte
}

// NewLineWriter returns a LineWriter calling fn for every line.
func NewLineWriter(fn func(line string)) *LineWriter { return &LineWriter{fn: fn} }

func (w *LineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			for len(w.buf) >= MaxLine {
				w.emit(w.buf[:MaxLine])
				w.buf = append(w.buf[:0], w.buf[MaxLine:]...)
			}
			break
		}
		if len(w.buf) > 0 {
			w.buf = append(w.buf, p[:i]...)
			w.emit(w.buf)
			w.buf = w.buf[:0]
		} else {
			w.emit(p[:i])
		}
		p = p[i+1:]
	}
	return n, nil
}

func (w *LineWriter) emit(b []byte) {
	b = bytes.TrimSuffix(b, []byte{'\r'})
	w.fn(string(b))
}

// Flush hands on a last, unterminated line.
func (w *LineWriter) Flush() {
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = w.buf[:0]
	}
}
