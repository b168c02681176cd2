package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"
)

// hookConn posts signed GitHub pushes over one keep-alive HTTP/1.1
// connection, as a forge's sender does, at a fraction of net/http's
// client cost (no per-request goroutines, maps or header copies; the
// request line, headers and body leave in one write): the load generator
// shares the CPUs with the server it measures. The requests are real HTTP
// with real HMAC-SHA256 signatures; the server verifies each one. Not safe
// for concurrent use: one per client goroutine.
type hookConn struct {
	addr, host, path string
	mac              hash.Hash
	c                net.Conn
	br               *bufio.Reader
	req              []byte // the request being written
	sum              []byte
	resp             []byte // the last answer's body
	timeout          time.Duration
}

func newHookConn(hookURL, secret string) (*hookConn, error) {
	u, err := url.Parse(hookURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("hookConn: %s: only http", hookURL)
	}
	return &hookConn{addr: u.Host, host: u.Host, path: u.RequestURI(), mac: hmac.New(sha256.New, []byte(secret)),
		timeout: 60 * time.Second}, nil
}

// post sends body as delivery and returns the status and the answer's
// body (valid until the next post). A broken connection is closed and
// dialled again on the next post.
func (h *hookConn) post(body []byte, delivery string) (int, []byte, error) {
	if h.c == nil {
		c, err := net.DialTimeout("tcp", h.addr, 10*time.Second)
		if err != nil {
			return 0, nil, err
		}
		h.c, h.br = c, bufio.NewReaderSize(c, 4096)
	}
	status, resp, err := h.roundTrip(body, delivery)
	if err != nil {
		h.close()
	}
	return status, resp, err
}

func (h *hookConn) close() {
	if h.c != nil {
		h.c.Close()
		h.c, h.br = nil, nil
	}
}

func (h *hookConn) roundTrip(body []byte, delivery string) (int, []byte, error) {
	h.mac.Reset()
	h.mac.Write(body)
	h.sum = h.mac.Sum(h.sum[:0])
	b := h.req[:0]
	b = append(b, "POST "...)
	b = append(b, h.path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, h.host...)
	b = append(b, "\r\nUser-Agent: GitHub-Hookshot/bench\r\nContent-Type: application/json\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: "...)
	b = append(b, delivery...)
	b = append(b, "\r\nX-GitHub-Hook-ID: 123456789\r\nX-Hub-Signature-256: sha256="...)
	b = hex.AppendEncode(b, h.sum)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	h.req = b
	if err := h.c.SetDeadline(time.Now().Add(h.timeout)); err != nil {
		return 0, nil, err
	}
	if _, err := h.c.Write(b); err != nil {
		return 0, nil, err
	}
	return h.readResponse()
}

// readResponse reads one HTTP/1.1 answer (Content-Length or chunked).
func (h *hookConn) readResponse() (int, []byte, error) {
	line, err := h.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, err
	}
	// "HTTP/1.1 202 Accepted\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	length, chunked, closing := -1, false, false
	for {
		line, err := h.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, _ := bytes.Cut(line, []byte(":"))
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(v)); err != nil {
				return 0, nil, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			closing = bytes.EqualFold(v, []byte("close"))
		}
	}
	h.resp = h.resp[:0]
	switch {
	case chunked:
		err = h.readChunked()
	case length >= 0:
		h.resp = append(h.resp, make([]byte, length)...)
		_, err = io.ReadFull(h.br, h.resp)
	default:
		return 0, nil, errors.New("answer without Content-Length or chunked encoding")
	}
	if err != nil {
		return 0, nil, err
	}
	if closing {
		h.close()
	}
	return status, h.resp, nil
}

func (h *hookConn) readChunked() error {
	for {
		line, err := h.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(size), 16, 32)
		if err != nil || n < 0 {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			for { // trailers, then the blank line
				line, err := h.br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
		}
		at := len(h.resp)
		h.resp = append(h.resp, make([]byte, n)...)
		if _, err := io.ReadFull(h.br, h.resp[at:]); err != nil {
			return err
		}
		if _, err := h.br.Discard(2); err != nil {
			return err
		}
	}
}
