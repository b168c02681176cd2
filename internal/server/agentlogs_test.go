package server

import (
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

const chattyFlow = `name: Chatty
on: push
jobs:
  talk:
    runs-on: [self-hosted, linux]
    steps:
      - run: for i in 1 2 3 4 5 6; do echo "line-$i"; sleep 0.3; done
`

// TestAgentLogChunksSurviveLostAnswers: between the agent and the server,
// a proxy loses the answers of some log requests (the server stored the
// chunk, the agent never heard) and refuses others with 503 (the server
// never saw them). The agent sends them again; the log holds every line
// exactly once, in order.
func TestAgentLogChunksSurviveLostAnswers(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: Config{Workers: -1, LeaseTTL: 5 * time.Second, AgentPoll: 2 * time.Second},
		files: map[string]string{".github/workflows/chatty.yml": chattyFlow}})
	target, err := url.Parse(h.url)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	n, lost, refused := 0, 0, 0
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || !strings.HasSuffix(r.URL.Path, "/logs") {
			rp.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		n++
		k := n
		mu.Unlock()
		switch k % 3 {
		case 1: // stored, answer lost
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r)
			mu.Lock()
			lost++
			mu.Unlock()
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		case 2: // never reaches the server
			mu.Lock()
			refused++
			mu.Unlock()
			http.Error(w, "upstream busy", http.StatusServiceUnavailable)
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	defer proxy.Close()
	h.startAgentAt(proxy.URL, "agent-flaky", 1, time.Minute, "self-hosted", "linux")
	h.hook("push", h.push("main"), "d-chatty")
	runs := h.waitRuns(1, 60*time.Second)
	if runs[0].Status != store.StatusSuccess {
		t.Fatalf("run: %s (%s)", runs[0].Status, runs[0].Error)
	}
	mu.Lock()
	if lost == 0 || refused == 0 {
		t.Errorf("the proxy lost %d answers and refused %d requests; the test needs both", lost, refused)
	}
	mu.Unlock()
	log := h.jobLog(runs[0].ID, "talk")
	for i := 1; i <= 6; i++ {
		line := "line-" + string(rune('0'+i))
		if c := strings.Count(log, line+"\n"); c != 1 {
			t.Errorf("%s appears %d times in the log:\n%s", line, c, log)
		}
	}
	if strings.Index(log, "line-1") > strings.Index(log, "line-6") {
		t.Errorf("log out of order:\n%s", log)
	}
}
