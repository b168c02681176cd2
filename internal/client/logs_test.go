package client_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/api/apitest"
	"github.com/conveyor-ci/conveyor/internal/client"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// syncBuffer is a bytes.Buffer safe to read while a follower writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLogsPlainAndFollow(t *testing.T) {
	f := apitest.New()
	srv := f.Server(t)
	c := client.New(srv.URL, f.AddToken(1, "r", store.RoleRead), nil)
	run := f.AddRun(1, 1, store.Run{Status: "running"}, store.Job{Key: "build", Status: "running"})
	jobs, _ := f.Jobs(t.Context(), 1, run.ID)
	id := jobs[0].ID
	f.AppendLog(id, "one\r\ntwo\n")

	var plain bytes.Buffer
	if err := c.Logs(t.Context(), run.ID, "build", false, &plain); err != nil || plain.String() != "one\r\ntwo\n" {
		t.Fatalf("plain = %q, %v", plain.String(), err)
	}

	var out syncBuffer
	done := make(chan error, 1)
	var status string
	go func() {
		var err error
		status, err = c.FollowLogs(t.Context(), run.ID, fmt.Sprint(id), &out)
		done <- err
	}()
	waitFor(t, "first chunk", func() bool { return out.String() == "one\ntwo\n" })
	f.AppendLog(id, "three\n")
	f.SetJobStatus(id, store.StatusSuccess, store.StatusSuccess)
	select {
	case err := <-done:
		if err != nil || status != "success" || out.String() != "one\ntwo\nthree\n" {
			t.Fatalf("follow = %q, %q, %v", out.String(), status, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end with the job")
	}

	err := c.Logs(t.Context(), run.ID, "nope", true, io.Discard)
	if !errs.Is(err, errs.NotFound) {
		t.Errorf("unknown job: %v", err)
	}
}

// cutWriter cancels its request after the first log event is written,
// so the real handler ends the stream cleanly but early.
type cutWriter struct {
	http.ResponseWriter
	cancel context.CancelFunc
}

func (w *cutWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	if bytes.Contains(p, []byte("id: ")) {
		w.cancel()
	}
	return n, err
}

func (w *cutWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func TestLogsResumeAfterCleanCut(t *testing.T) {
	f := apitest.New()
	token := f.AddToken(1, "r", store.RoleRead)
	run := f.AddRun(1, 1, store.Run{Status: "running"}, store.Job{Key: "k", Status: "running"})
	jobs, _ := f.Jobs(t.Context(), 1, run.ID)
	id := jobs[0].ID
	h := api.New(f.Deps("http://x"))
	var conns atomic.Int32
	var lastIDs sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := conns.Add(1)
		lastIDs.Store(n, r.Header.Get("Last-Event-ID"))
		if n == 1 {
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			h.ServeHTTP(&cutWriter{w, cancel}, r.WithContext(ctx))
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c := client.New(srv.URL, token, nil)
	client.SetRetry(c, time.Millisecond, 3)

	f.AppendLog(id, "a\n")
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- c.Logs(t.Context(), run.ID, "k", true, &out) }()
	waitFor(t, "second connection", func() bool { return conns.Load() >= 2 })
	f.AppendLog(id, "b\n")
	f.SetJobStatus(id, store.StatusFailure, "")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if out.String() != "a\nb\n" {
		t.Errorf("output %q", out.String())
	}
	if v, _ := lastIDs.Load(int32(2)); v != "1" {
		t.Errorf("second connection Last-Event-ID = %q, want 1", v)
	}
}

func TestLogsResumeAfterAbruptDrop(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		switch conns.Add(1) {
		case 1:
			io.WriteString(w, "id: 1\ndata: x\n\nid: 2\ndata: y\n\nid: 3\ndata: half")
			w.(http.Flusher).Flush()
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
		case 2:
			http.Error(w, `{"error":{"kind":"unavailable","message":"restarting"}}`, http.StatusServiceUnavailable)
		default:
			if got := r.Header.Get("Last-Event-ID"); got != "2" {
				t.Errorf("Last-Event-ID = %q, want 2", got)
			}
			io.WriteString(w, ": heartbeat\n\nretry: 10\n\nid: 3\ndata: z\ndata: \n\nevent: end\ndata: success\n\n")
		}
	}))
	defer srv.Close()
	c := client.New(srv.URL, "t", nil)
	client.SetRetry(c, time.Millisecond, 3)
	var out bytes.Buffer
	status, err := c.FollowLogs(t.Context(), 1, "k", &out)
	if err != nil || status != "success" || out.String() != "xyz\n" {
		t.Fatalf("follow = %q, %q, %v", out.String(), status, err)
	}
	if conns.Load() != 3 {
		t.Errorf("%d connections, want 3", conns.Load())
	}
}

func TestLogsGiveUp(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
	}))
	defer srv.Close()
	c := client.New(srv.URL, "t", nil)
	client.SetRetry(c, time.Millisecond, 2)
	err := c.Logs(t.Context(), 1, "k", true, io.Discard)
	if !errs.Is(err, errs.Unavailable) || !strings.Contains(err.Error(), "ended before") || conns.Load() != 3 {
		t.Errorf("err = %v after %d connections", err, conns.Load())
	}

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	client.SetRetry(c, time.Hour, 2)
	if err := c.Logs(ctx, 1, "k", true, io.Discard); !errs.Is(err, errs.Canceled) {
		t.Errorf("canceled follow: %v", err)
	}
}
