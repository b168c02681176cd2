package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/api/apitest"
	"github.com/conveyor-ci/conveyor/internal/store"
)

func TestLogsPlain(t *testing.T) {
	e := newEnv(t)
	e.f.AppendLog(e.build.ID, "compiling\n")
	e.f.AppendLog(e.build.ID, "done\n")
	base := fmt.Sprintf("/api/runs/%d/jobs/", e.run.ID)
	for _, ref := range []string{"build", fmt.Sprint(e.build.ID)} {
		resp, b := e.do(t, "GET", base+ref+"/logs", e.read, "")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || string(b) != "compiling\ndone\n" {
			t.Errorf("%s: %d %q %q", ref, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	}
	if _, b := e.do(t, "GET", base+"build/logs?after=1", e.read, ""); string(b) != "done\n" {
		t.Errorf("after=1: %q", b)
	}
	if resp, b := e.do(t, "GET", base+"test/logs", e.read, ""); resp.StatusCode != 200 || len(b) != 0 {
		t.Errorf("empty log: %d %q", resp.StatusCode, b)
	}
	// A job of another run of the same org is not this run's.
	r2 := e.f.AddRun(1, e.repo.ID, store.Run{Status: "queued"}, store.Job{Key: "x", Status: "queued"})
	j2, _ := e.f.Jobs(t.Context(), 1, r2.ID)
	resp, b := e.do(t, "GET", fmt.Sprintf("%s%d/logs", base, j2[0].ID), e.read, "")
	wantError(t, resp, b, 404, "not_found", fmt.Sprintf("job %d of run %d: not found", j2[0].ID, e.run.ID))
	resp, b = e.do(t, "GET", base+"nope/logs", e.read, "")
	wantError(t, resp, b, 404, "not_found", fmt.Sprintf("job nope of run %d: not found", e.run.ID))
	resp, b = e.do(t, "GET", base+"build/logs?after=x", e.read, "")
	wantError(t, resp, b, 400, "invalid", `after "x"`)
	resp, b = e.do(t, "GET", base+"build/logs", e.read, "", "Accept", "text/event-stream", "Last-Event-ID", "-3")
	wantError(t, resp, b, 400, "invalid", "Last-Event-ID")
}

func TestLogsSSEFraming(t *testing.T) {
	e := newEnv(t)
	e.f.AppendLog(e.test.ID, "line1\nline2\n")
	e.f.AppendLog(e.test.ID, "a\r\nb\rc")
	e.f.AppendLog(e.test.ID, ": not a comment\n")
	path := fmt.Sprintf("/api/runs/%d/jobs/test/logs", e.run.ID)
	want := "retry: 1000\n\n" +
		"id: 1\ndata: line1\ndata: line2\ndata: \n\n" +
		"id: 2\ndata: a\ndata: b\ndata: c\n\n" +
		"id: 3\ndata: : not a comment\ndata: \n\n" +
		"event: end\ndata: failure\n\n"
	resp, b := e.do(t, "GET", path, e.read, "", "Accept", "text/event-stream")
	if resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("headers %v", resp.Header)
	}
	if string(b) != want {
		t.Errorf("stream:\n%q\nwant\n%q", b, want)
	}
	// Resume after event 2, by header or by query.
	wantTail := "retry: 1000\n\nid: 3\ndata: : not a comment\ndata: \n\nevent: end\ndata: failure\n\n"
	if _, b := e.do(t, "GET", path, e.read, "", "Accept", "text/event-stream", "Last-Event-ID", "2"); string(b) != wantTail {
		t.Errorf("Last-Event-ID 2:\n%q", b)
	}
	if _, b := e.do(t, "GET", path+"?follow=1&after=2", e.read, ""); string(b) != wantTail {
		t.Errorf("after=2:\n%q", b)
	}
	if _, b := e.do(t, "GET", path+"?follow=1&after=1", e.read, "", "Last-Event-ID", "2"); string(b) != wantTail {
		t.Errorf("Last-Event-ID wins over after:\n%q", b)
	}
}

// sse reads a stream line by line.
type sse struct {
	t    *testing.T
	body io.ReadCloser
	r    *bufio.Reader
}

func openSSE(t *testing.T, ctx context.Context, url, token string) *sse {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return &sse{t: t, body: resp.Body, r: bufio.NewReader(resp.Body)}
}

// until reads lines up to and including want and returns them.
func (s *sse) until(want string) string {
	s.t.Helper()
	var got strings.Builder
	for {
		line, err := s.r.ReadString('\n')
		got.WriteString(line)
		if strings.TrimSuffix(line, "\n") == want {
			return got.String()
		}
		if err != nil {
			s.t.Fatalf("stream ended (%v) before %q; got %q", err, want, got.String())
		}
	}
}

func TestLogsSSEFollowLive(t *testing.T) {
	e := newEnv(t)
	run := e.f.AddRun(1, e.repo.ID, store.Run{Status: "running"}, store.Job{Key: "deploy", Status: "running"})
	jobs, _ := e.f.Jobs(t.Context(), 1, run.ID)
	id := jobs[0].ID
	e.f.AppendLog(id, "first\n")
	s := openSSE(t, t.Context(), fmt.Sprintf("%s/api/runs/%d/jobs/deploy/logs", e.srv.URL, run.ID), e.read)
	s.until("data: first")
	s.until("") // end of event 1
	e.f.AppendLog(id, "second\n")
	if got := s.until(""); got != "id: 2\ndata: second\ndata: \n\n" {
		t.Errorf("event 2: %q", got)
	}
	e.f.AppendLog(id, "third\n")
	e.f.SetJobStatus(id, store.StatusSuccess, store.StatusSuccess)
	got := s.until("data: success")
	if !strings.Contains(got, "id: 3\ndata: third\ndata: \n\nevent: end\n") {
		t.Errorf("tail %q", got)
	}
	if rest, _ := io.ReadAll(s.r); string(rest) != "\n" {
		t.Errorf("after end: %q", rest)
	}
}

func TestLogsSSEHeartbeatAndPoll(t *testing.T) {
	// No notifier: only polling sees new output.
	e := newEnv(t, func(d *api.Deps) {
		d.Notifier = nil
		d.Heartbeat = 20 * time.Millisecond
		d.Poll = 30 * time.Millisecond
	})
	run := e.f.AddRun(1, e.repo.ID, store.Run{Status: "running"}, store.Job{Key: "k", Status: "running"})
	jobs, _ := e.f.Jobs(t.Context(), 1, run.ID)
	s := openSSE(t, t.Context(), fmt.Sprintf("%s/api/runs/%d/jobs/k/logs", e.srv.URL, run.ID), e.read)
	s.until(": heartbeat")
	e.f.AppendLog(jobs[0].ID, "polled")
	s.until("data: polled")
	e.f.SetJobStatus(jobs[0].ID, store.StatusCancelled, "")
	s.until("data: cancelled")
}

func TestLogsSSEClientGone(t *testing.T) {
	f := apitest.New()
	token := f.AddToken(1, "r", store.RoleRead)
	run := f.AddRun(1, 1, store.Run{Status: "running"}, store.Job{Key: "k", Status: "running"})
	d := f.Deps("http://x")
	d.Poll = time.Hour
	h := api.New(d)
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if strings.HasSuffix(r.URL.Path, "/logs") {
			close(done)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	s := openSSE(t, ctx, fmt.Sprintf("%s/api/runs/%d/jobs/k/logs", srv.URL, run.ID), token)
	s.until("retry: 1000")
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler still runs after the client went away")
	}
}

// pageCounter is a store that records the bytes of every ReadLog page.
type pageCounter struct {
	api.Store
	mu    sync.Mutex
	pages []int
}

func (p *pageCounter) ReadLog(ctx context.Context, orgID, jobID, after int64, limit int) ([]store.LogChunk, error) {
	cs, err := p.Store.ReadLog(ctx, orgID, jobID, after, limit)
	n := 0
	for _, c := range cs {
		n += len(c.Data)
	}
	p.mu.Lock()
	p.pages = append(p.pages, n)
	p.mu.Unlock()
	return cs, err
}

func (p *pageCounter) take() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.pages
	p.pages = nil
	return out
}

// TestLogsBoundedPages: plain readers and followers of an 8 MB log read
// it in pages of about store.LogReadBytes (the memory a reader holds),
// never the whole log or 500 chunks at once, and get every byte.
func TestLogsBoundedPages(t *testing.T) {
	pc := &pageCounter{}
	e := newEnv(t, func(d *api.Deps) { pc.Store = d.Store; d.Store = pc })
	const chunk = 64 << 10
	var want strings.Builder
	for i := range 128 {
		data := strings.Repeat(fmt.Sprintf("line %03d\n", i), chunk/9)
		want.WriteString(data)
		e.f.AppendLog(e.build.ID, data)
	}
	check := func(name string, n int) {
		t.Helper()
		pages := pc.take()
		if len(pages) < 8 {
			t.Errorf("%s: %d pages for 8 MB", name, len(pages))
		}
		for _, p := range pages {
			if p > store.LogReadBytes+chunk {
				t.Errorf("%s: a page of %d bytes, over the bound %d + one chunk", name, p, store.LogReadBytes)
			}
		}
		if n != want.Len() {
			t.Errorf("%s: %d bytes, want %d", name, n, want.Len())
		}
	}
	resp, b := e.do(t, "GET", fmt.Sprintf("/api/runs/%d/jobs/build/logs", e.run.ID), e.read, "")
	if resp.StatusCode != 200 || string(b) != want.String() {
		t.Errorf("plain: %d, %d bytes, not the log", resp.StatusCode, len(b))
	}
	check("plain", len(b))
	_, b = e.do(t, "GET", fmt.Sprintf("/api/runs/%d/jobs/build/logs?follow=1", e.run.ID), e.read, "")
	var got strings.Builder
	for line := range strings.SplitSeq(string(b), "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok && d != "success" {
			got.WriteString(d + "\n")
		}
	}
	// Each chunk ends with a newline, which SSE turns into one empty data line.
	if s := strings.ReplaceAll(got.String(), "\n\n", "\n"); s != want.String() || !strings.HasSuffix(string(b), "event: end\ndata: success\n\n") {
		t.Errorf("follow: %d bytes of data, not the log", len(s))
	}
	check("follow", want.Len())
}
