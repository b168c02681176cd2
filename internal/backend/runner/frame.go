// Package runner is the step-runner protocol: the executor sends steps to a
// runner inside the sandbox over one byte stream each way, and the runner
// streams their output back, so a step costs no round trip to the sandbox's
// control plane (Docker's exec API, Kubernetes' exec subresource).
//
// The protocol is a sequence of frames, each a 9-byte header followed by a
// payload:
//
//	type   1 byte   one of the Frame* constants
//	id     4 bytes  big endian; the request a frame belongs to (0: none)
//	length 4 bytes  big endian; payload length, at most MaxPayload
//
// Runner to client: FrameHello once at start (JSON Hello), then per request
// any number of FrameOutput (raw bytes, stdout and stderr merged in order)
// ended by exactly one FrameExit (4-byte big-endian signed exit code) or
// FrameError (JSON ErrorMsg: the process could not start). Client to runner:
// FrameRequest (JSON Request), FrameInput (the request's standard input, when
// it asked for one: raw bytes, an empty payload closes it) and FrameCancel
// (empty). Closing the runner's input kills every process it started and
// ends it.
package runner

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"io"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Protocol is the protocol version carried in Hello.
const Protocol = 1

// Frame types.
const (
	FrameHello   byte = 'H'
	FrameRequest byte = 'R'
	FrameCancel  byte = 'C'
	FrameInput   byte = 'I'
	FrameOutput  byte = 'O'
	FrameExit    byte = 'X'
	FrameError   byte = 'E'
)

const (
	headerLen = 9
	// MaxPayload bounds a frame so that garbage input cannot make a decoder
	// allocate without limit. Requests carry the step's environment, which
	// can be large (toJSON of a context), hence not smaller.
	MaxPayload = 16 << 20
	// outputChunk is the largest output payload a runner sends.
	outputChunk = 32 << 10
)

// Hello is the first frame a runner sends.
type Hello struct {
	Magic    string `json:"magic"` // always "conveyor-runner"
	Protocol int    `json:"protocol"`
	Version  string `json:"version"`
	PID      int    `json:"pid"`
	// Features are the optional request fields this runner honours
	// (FeatureFallback); a client emulates what an older runner lacks.
	Features []string `json:"features,omitempty"`
}

// FeatureFallback: the runner runs Request.Fallback when Argv[0] is not
// found.
const FeatureFallback = "fallback"

// FeatureStdin: the runner gives a process with Request.Stdin a pipe as its
// standard input, fed by FrameInput frames.
const FeatureStdin = "stdin"

const helloMagic = "conveyor-runner"

// Request is one process to run.
type Request struct {
	Argv        []string          `json:"argv"`
	Env         map[string]string `json:"env,omitempty"`
	Dir         string            `json:"dir,omitempty"`
	PathPrepend []string          `json:"path_prepend,omitempty"`
	// Fallback runs instead of Argv when Argv[0] is not found in PATH.
	Fallback []string `json:"fallback,omitempty"`
	// Stdin asks for a standard input fed by FrameInput frames (otherwise
	// it is /dev/null).
	Stdin bool `json:"stdin,omitempty"`
	// Builtin names a function of the runner that serves the request in
	// the runner's own process, with Argv[2:] as its arguments, instead
	// of starting Argv (see ServeOptions.Builtins). Argv stays a command
	// line that does the same (conveyor step-run ...): a runner without
	// the builtin runs it.
	Builtin string `json:"builtin,omitempty"`
}

// FallbackArgv is one argv that runs argv when argv[0] is found in PATH
// and fallback otherwise, through sh: for runners without
// FeatureFallback and for docker exec.
func FallbackArgv(argv, fallback []string) []string {
	var b strings.Builder
	b.WriteString(`if command -v "$1" >/dev/null 2>&1; then exec "$@"; fi; exec`)
	for _, a := range fallback {
		b.WriteString(" '")
		b.WriteString(strings.ReplaceAll(a, "'", `'\''`))
		b.WriteString("'")
	}
	return append([]string{"sh", "-c", b.String(), "sh"}, argv...)
}

// ErrorMsg is the payload of FrameError.
type ErrorMsg struct {
	// NotFound is set when the executable does not exist.
	NotFound bool   `json:"not_found,omitempty"`
	Message  string `json:"message"`
}

// Frame is one decoded frame. Payload is only valid until the next Read.
type Frame struct {
	Type    byte
	ID      uint32
	Payload []byte
}

func validType(t byte) bool {
	switch t {
	case FrameHello, FrameRequest, FrameCancel, FrameInput, FrameOutput, FrameExit, FrameError:
		return true
	}
	return false
}

// Decoder reads frames from a stream.
type Decoder struct {
	r   *bufio.Reader
	hdr [headerLen]byte
	buf []byte
}

// NewDecoder returns a decoder reading from r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: bufio.NewReaderSize(r, 64<<10)}
}

// Read returns the next frame. It returns io.EOF at a clean end of stream,
// and an errs.Invalid error for anything that is not a well-formed frame.
func (d *Decoder) Read() (Frame, error) {
	if _, err := io.ReadFull(d.r, d.hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return Frame{}, errs.E("runner: read frame", errs.Invalid, "truncated frame header")
		}
		return Frame{}, err
	}
	f := Frame{Type: d.hdr[0], ID: binary.BigEndian.Uint32(d.hdr[1:5])}
	n := binary.BigEndian.Uint32(d.hdr[5:9])
	if !validType(f.Type) {
		return Frame{}, errs.E("runner: read frame", errs.Invalid, "unknown frame type 0x%02x", f.Type)
	}
	if n > MaxPayload {
		return Frame{}, errs.E("runner: read frame", errs.Invalid, "frame of %d bytes exceeds the limit", n)
	}
	if cap(d.buf) < int(n) {
		d.buf = make([]byte, n)
	}
	f.Payload = d.buf[:n]
	if _, err := io.ReadFull(d.r, f.Payload); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return Frame{}, errs.E("runner: read frame", errs.Invalid, "truncated frame payload")
		}
		return Frame{}, err
	}
	return f, nil
}

// appendHeader appends a frame header to b.
func appendHeader(b []byte, typ byte, id uint32, n int) []byte {
	b = append(b, typ)
	b = binary.BigEndian.AppendUint32(b, id)
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

// writeFrame writes one frame with a single Write call, so that frames from
// several goroutines sharing a locked writer never interleave.
func writeFrame(w io.Writer, typ byte, id uint32, payload []byte) error {
	if len(payload) > MaxPayload {
		return errs.E("runner: write frame", errs.Invalid, "frame of %d bytes exceeds the limit", len(payload))
	}
	b := make([]byte, 0, headerLen+len(payload))
	b = appendHeader(b, typ, id, len(payload))
	b = append(b, payload...)
	_, err := w.Write(b)
	return err
}

func writeJSON(w io.Writer, typ byte, id uint32, v any) error {
	p, err := json.Marshal(v)
	if err != nil {
		return errs.Wrap("runner: encode", errs.Invalid, err)
	}
	return writeFrame(w, typ, id, p)
}

func exitPayload(code int) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(int32(code)))
}

func parseExit(p []byte) (int, error) {
	if len(p) != 4 {
		return 0, errs.E("runner: exit frame", errs.Invalid, "payload of %d bytes, want 4", len(p))
	}
	return int(int32(binary.BigEndian.Uint32(p))), nil
}
