package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var plain struct {
	once sync.Once
	path string
	err  error
}

// plainBinary builds the conveyor binary without the race detector (once,
// next to the race-enabled one).
func plainBinary(t *testing.T) string {
	t.Helper()
	plain.once.Do(func() {
		plain.path = filepath.Join(filepath.Dir(binary), "conveyor-plain")
		out, err := exec.Command("go", "build", "-o", plain.path, "github.com/conveyor-ci/conveyor/cmd/conveyor").CombinedOutput()
		if err != nil {
			plain.err = fmt.Errorf("building the plain conveyor binary: %v\n%s", err, out)
		}
	})
	if plain.err != nil {
		t.Fatal(plain.err)
	}
	return plain.path
}

// vmRSS is the resident set of process pid in bytes (/proc/PID/status).
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// pattern is an endless reader of JSON-ish bytes: a forged body costs the
// sender no memory.
type pattern struct{}

func (pattern) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = "{\"a\":1}  "[i%9]
	}
	return len(p), nil
}

// TestUnsignedWebhookFlood posts 100 concurrent 25 MB webhooks with a
// well-formed but wrong signature (half with a Content-Length, half
// chunked) to the real server: their bodies must be read to be refused,
// yet the server's resident memory stays under idle + 100 MB, and signed
// webhooks posted meanwhile are accepted.
func TestUnsignedWebhookFlood(t *testing.T) {
	skipShort(t)
	// Memory is what is measured: the race detector's shadow memory would
	// multiply it, so this server is a plain build.
	race := binary
	binary = plainBinary(t)
	t.Cleanup(func() { binary = race })
	const secret, size, flood = "flood-secret", 25 << 20, 100
	g := newGitRepo(t, map[string]string{"README": "no workflow"})
	sha := g.git("rev-parse", "HEAD")
	s := startServer(t, "flood", t.TempDir(), true)
	c := client{t: t, url: s.url, token: s.token}
	repoID := c.addRepo(g.dir, secret)
	for i := range 5 { // the intake path warm, as a server that has seen webhooks
		if code, b, err := hook(s.url, repoID, secret, "push", fmt.Sprint("warm-", i), pushBody(g.dir, "main", sha, fmt.Sprint("warm ", i))); err != nil || code != http.StatusAccepted {
			t.Fatalf("warm-up webhook: %d %s %v", code, b, err)
		}
	}
	time.Sleep(time.Second)
	idle := vmRSS(t, s.pid())

	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if r := vmRSS(t, s.pid()); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()

	// Each forged POST comes from its own loopback address (127.0.0.2...),
	// as from many attackers: the per-address limit of forged deliveries
	// does not stop them before their bodies are read, so the memory
	// budget is what holds; the signed webhooks come from 127.0.0.1.
	flooder := func(i int) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}, Timeout: 10 * time.Second}
		return &http.Client{Timeout: 3 * time.Minute, Transport: &http.Transport{DialContext: d.DialContext}}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	answers := map[string]int{}
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", fmt.Sprintf("%s/hooks/%d", s.url, repoID), io.LimitReader(pattern{}, size))
			if i%2 == 0 {
				req.ContentLength = size
			} else {
				req.ContentLength = -1 // chunked: the server cannot know the size
			}
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", fmt.Sprint("forged-", i))
			req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("ab", 32))
			what := "no answer"
			if resp, err := flooder(i).Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				what = strconv.Itoa(resp.StatusCode)
			}
			mu.Lock()
			answers[what]++
			mu.Unlock()
		}()
	}
	// Signed webhooks while the flood is on.
	signed := 0
	for i := 0; i < 20; i++ {
		time.Sleep(100 * time.Millisecond)
		code, b, err := hook(s.url, repoID, secret, "push", fmt.Sprint("during-", i), pushBody(g.dir, "main", sha, fmt.Sprint("during ", i)))
		if err != nil || code != http.StatusAccepted {
			t.Errorf("signed webhook %d during the flood: %d %s %v", i, code, b, err)
			continue
		}
		signed++
	}
	wg.Wait()
	time.Sleep(2 * time.Second) // what is given back is seen by now
	after := vmRSS(t, s.pid())
	close(stop)
	<-sampled

	t.Logf("RSS idle %d MB, peak %d MB, after %d MB; flood answers %v; %d signed accepted",
		idle>>20, peak.Load()>>20, after>>20, answers, signed)
	if peak.Load() > idle+100<<20 {
		t.Errorf("peak RSS %d MB over idle %d MB + 100 MB", peak.Load()>>20, idle>>20)
	}
	if after > idle+50<<20 {
		t.Errorf("RSS after the flood %d MB: over idle %d MB + 50 MB (memory not given back)", after>>20, idle>>20)
	}
	for what, n := range answers {
		if what != "401" && what != "503" && what != "no answer" {
			t.Errorf("%d forged webhooks answered %s (want 401, or 503 when the spool is full)", n, what)
		}
	}
	if answers["401"] == 0 {
		t.Errorf("no forged webhook was read to its end and refused: %v", answers)
	}
}
