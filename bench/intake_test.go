package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The template's bodies are the pushes' own, byte for byte.
func TestPushTemplateBody(t *testing.T) {
	p := push{repoDir: "/tmp/r", head: pseudoSHA(0), skipCI: true}
	tmpl := newPushTemplate(p)
	var buf []byte
	for _, seq := range []int64{1, 42, 999_999_999_999} {
		p.seq = seq
		buf = tmpl.bodyInto(buf, seq)
		if want := p.body(); !bytes.Equal(buf, want) {
			t.Fatalf("seq %d: template body differs:\n%s\nwant\n%s", seq, buf, want)
		}
	}
}

func TestDeliveryID(t *testing.T) {
	for _, seq := range []int64{0, 1, 0xabcdef, 1<<48 + 5} {
		want := fmt.Sprintf("%s-%04x-%012x", "run1", seq>>48, seq&(1<<48-1))
		if got := deliveryID("run1", seq); got != want {
			t.Errorf("deliveryID(%d) = %q, want %q", seq, got, want)
		}
	}
}

// hookConn speaks HTTP/1.1 to net/http's server: headers, signature and
// body arrive intact, keep-alive holds, and answers of both framings
// (Content-Length, chunked) are read.
func TestHookConn(t *testing.T) {
	const secret = "s3cret"
	conns := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns[r.RemoteAddr] = true
		body, _ := io.ReadAll(r.Body)
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		want := "sha256=" + hex.EncodeToString(m.Sum(nil))
		if r.Header.Get("X-Hub-Signature-256") != want || r.Header.Get("X-GitHub-Event") != "push" || r.URL.Path != "/hooks/7" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if r.Header.Get("X-GitHub-Delivery") == "chunked" {
			w.WriteHeader(http.StatusAccepted)
			w.(http.Flusher).Flush() // forces chunked framing
			fmt.Fprint(w, "chunked:", len(body))
			return
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, "len:", len(body))
	}))
	defer srv.Close()
	c, err := newHookConn(srv.URL+"/hooks/7", secret)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for i, d := range []string{"a", "chunked", "b"} {
		body := bytes.Repeat([]byte{'x'}, 4000+i)
		status, resp, err := c.post(body, d)
		want := fmt.Sprint("len:", len(body))
		if d == "chunked" {
			want = fmt.Sprint("chunked:", len(body))
		}
		if err != nil || status != http.StatusAccepted || string(resp) != want {
			t.Fatalf("post %s: %d %q %v, want 202 %q", d, status, resp, err, want)
		}
	}
	if len(conns) != 1 {
		t.Errorf("%d connections used, want 1 (keep-alive)", len(conns))
	}
	c2, _ := newHookConn(srv.URL+"/hooks/7", "wrong")
	defer c2.close()
	if status, _, err := c2.post([]byte("{}"), "x"); err != nil || status != http.StatusBadRequest {
		t.Errorf("wrong secret: %d %v, want 400", status, err)
	}
}
