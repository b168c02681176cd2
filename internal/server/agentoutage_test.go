package server

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/store"
)

const darkFlow = `name: Dark
on: push
jobs:
  talk:
    runs-on: [self-hosted, linux]
    steps:
      - run: |
          echo "before-outage"
          sleep 1
          echo "last-line-1"
          sleep 0.5
          echo "last-line-2"
`

// TestAgentCompletesAcrossServerOutage: the server cannot be reached
// (connections dropped, 502s) for 3 s from the moment the agent sends
// the job's first output line, and again for 2 s when it first reports
// the result: the job ends in the outage, its last log chunks and its
// result are refused. The agent keeps the
// lease (10 s: longer than the outages together), sends the last log
// chunks and the result again until they get through: the job completes once, on its first attempt, with every line
// once.
func TestAgentCompletesAcrossServerOutage(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: Config{Workers: -1, LeaseTTL: 10 * time.Second, AgentPoll: 2 * time.Second},
		files: map[string]string{".github/workflows/dark.yml": darkFlow}})
	target, err := url.Parse(h.url)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var darkUntil time.Time
	failed := map[string]int{}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/logs") {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			mu.Lock()
			if darkUntil.IsZero() && bytes.Contains(body, []byte("before-outage\n")) {
				darkUntil = time.Now().Add(3 * time.Second)
				mu.Unlock()
				rp.ServeHTTP(w, r) // this one gets through
				return
			}
			mu.Unlock()
		}
		mu.Lock()
		verb := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		if verb == "complete" && failed["complete"] == 0 {
			darkUntil = time.Now().Add(2 * time.Second) // and once more for the result
		}
		dark := time.Now().Before(darkUntil)
		if dark {
			failed[verb]++
		}
		n := failed[verb]
		mu.Unlock()
		switch {
		case !dark:
			rp.ServeHTTP(w, r)
		case n%2 == 0:
			http.Error(w, "bad gateway", http.StatusBadGateway)
		default: // the connection drops
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
	}))
	defer proxy.Close()
	h.startAgentAt(proxy.URL, "agent-dark", 1, time.Minute, "self-hosted", "linux")
	h.hook("push", h.push("main"), "d-dark")
	runs := h.waitRuns(1, 60*time.Second)
	if runs[0].Status != store.StatusSuccess {
		t.Fatalf("run: %s (%s)", runs[0].Status, runs[0].Error)
	}
	mu.Lock()
	if failed["complete"] == 0 || failed["logs"] == 0 {
		t.Errorf("failed in the outage: %v; the test needs completes and logs", failed)
	}
	mu.Unlock()
	j := h.jobs(runs[0].ID)["talk"]
	if j.Attempt != 1 {
		t.Errorf("job ran %d times", j.Attempt)
	}
	log := h.jobLog(runs[0].ID, "talk")
	for _, line := range []string{"before-outage", "last-line-1", "last-line-2"} {
		if c := strings.Count(log, line+"\n"); c != 1 {
			t.Errorf("%s appears %d times in the log:\n%s", line, c, log)
		}
	}
}
