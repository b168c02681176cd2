package e2e

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/secrets"
)

// tcpProxy forwards connections to a target until cut, which closes its
// listener and every connection: the database is gone, as far as the
// server can tell.
type tcpProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	cutOK bool
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.cutOK {
				c.Close()
				up.Close()
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutOK = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestDatabaseDownSaysNothingInternal runs the real server on PostgreSQL
// through a proxy, then cuts the proxy: webhooks (signed or not), /readyz
// and the API's authentication answer 503 "unavailable, retry" without
// the driver's text (user, database, address), which goes to the log.
func TestDatabaseDownSaysNothingInternal(t *testing.T) {
	skipShort(t)
	dsn := freshSchema(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	const secret = "down-secret"
	g := newGitRepo(t, map[string]string{"README": "no workflow"})
	sha := g.git("rev-parse", "HEAD")
	keyFile := filepath.Join(t.TempDir(), "server.key") // PostgreSQL needs a key given
	if _, err := secrets.WriteKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "dbdown", t.TempDir(), true, "--database", u.String(), "--secret-key-file", keyFile)
	c := client{t: t, url: s.url, token: s.token}
	repoID := c.addRepo(g.dir, secret)

	proxy.cut()
	time.Sleep(2500 * time.Millisecond) // past the webhook path's repository cache (2 s)
	leaks := []string{"failed to connect", "user=", "database=", "dial", proxy.ln.Addr().String(), "127.0.0.1", "postgres", "sql"}
	check := func(what string, code int, body []byte, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "retry") {
			t.Errorf("%s: %d %s, want 503 saying retry", what, code, body)
		}
		for _, l := range leaks {
			if strings.Contains(strings.ToLower(string(body)), strings.ToLower(l)) {
				t.Errorf("%s: answer tells %q: %s", what, l, body)
			}
		}
	}
	code, body, err := hook(s.url, repoID, secret, "push", "down-1", pushBody(g.dir, "main", sha, "down"))
	check("signed webhook", code, body, err)
	code, body, err = hook(s.url, repoID, "not-the-secret", "push", "down-2", pushBody(g.dir, "main", sha, "down"))
	check("webhook signed with another secret", code, body, err)
	get := func(path, auth string) (int, []byte, error) {
		req, _ := http.NewRequest("GET", s.url+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	code, body, err = get("/readyz", "")
	check("/readyz", code, body, err)
	code, body, err = get("/api/runs", "Bearer cvy_someone_guessing")
	check("API with an unknown token", code, body, err)
	code, body, err = get("/api/runs", "Bearer "+s.token)
	check("API with the admin token", code, body, err)
	req, _ := http.NewRequest("POST", s.url+"/api/agent/lease", nil)
	req.Header.Set("Authorization", "Bearer cvy_agent_guess")
	if resp, err := httpClient.Do(req); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		check("agent lease with an unknown token", resp.StatusCode, b, nil)
	} else {
		t.Errorf("agent lease: %v", err)
	}
	// The details are in the server's log.
	waitFor(t, 5*time.Second, "the driver's error in the server log", func() bool {
		return strings.Contains(s.stderr(), "failed to connect")
	}, func() string { return tail(s.stderr(), 20) })
	if !strings.Contains(s.stderr(), "reason=store") {
		t.Errorf("the refused webhook is not logged with its reason:\n%s", tail(s.stderr(), 30))
	}
}
