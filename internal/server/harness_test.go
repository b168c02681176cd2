package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/cache"
	cexec "github.com/conveyor-ci/conveyor/internal/exec"
	"github.com/conveyor-ci/conveyor/internal/pool"
	"github.com/conveyor-ci/conveyor/internal/store"
	sqlstore "github.com/conveyor-ci/conveyor/internal/store/sql"
)

// harness is a real server (SQLite, host backend, real HTTP) on a random
// port, with a real git repository as the forge's repository.
type harness struct {
	t     testing.TB
	srv   *Server
	st    store.Store
	url   string
	token string
	repo  *store.Repo
	git   *gitRepo
	stop  func()
	// actions is given to the agents the test starts.
	actions cexec.ActionResolver
}

type harnessOpts struct {
	cfg    Config
	dsn    string
	secret string
	forge  string
	files  map[string]string
	// statusURL, when set, is the forge API commit statuses go to (token
	// "tok-123").
	statusURL string
	// actions fetches remote actions for the server's workers and the
	// agents the test starts.
	actions cexec.ActionResolver
	// cache, when set, gives the server's Deps.Cache and CacheService.
	cache func(baseURL string) (cexec.Cache, http.Handler, *cache.Tokens)
	// objects, when set, keeps logs and artifacts (sqlstore.Options.Objects).
	objects store.Objects
	// backends, when set, run the server's jobs (default: the host).
	backends *Backends
	// listen is the address the server listens on (default
	// 127.0.0.1:0); the harness calls it at 127.0.0.1.
	listen string
	// wrap, when set, is the store the server gets around the harness's.
	wrap func(store.Store) store.Store
	// pools, when set, run the server's jobs instead (Deps.Pools).
	pools *pool.Scheduler
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	if o.dsn == "" {
		o.dsn = filepath.Join(t.TempDir(), "conveyor.db")
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlstore.Open(ctx, o.dsn, sqlstore.Options{Objects: o.objects})
	if err != nil {
		t.Fatal(err)
	}
	h := host.New(host.Options{})
	if o.listen == "" {
		o.listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		t.Fatal(err)
	}
	cfg := o.cfg
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.Listen = ln.Addr().String()
	cfg.AllowFileURLs = true
	cfg.BaseURL = "http://127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	if cfg.Workers == 0 {
		cfg.Workers = 4
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 3 * time.Second
	}
	if cfg.Poll == 0 {
		cfg.Poll = 50 * time.Millisecond
	}
	if cfg.Platforms == nil {
		cfg.Platforms = map[string]string{"ubuntu-latest": "-self-hosted", "self-hosted": "-self-hosted"}
	}
	logw := io.Discard
	if testing.Verbose() {
		logw = os.Stderr
	}
	bks := Backends{Main: h, Host: h}
	if o.backends != nil {
		bks = *o.backends
	}
	var served store.Store = st
	if o.wrap != nil {
		served = o.wrap(st)
	}
	deps := Deps{Store: served, Backends: bks, Pools: o.pools, Log: slog.New(slog.NewTextHandler(logw, nil)), Actions: o.actions}
	if o.cache != nil {
		deps.Cache, deps.CacheService, deps.CacheTokens = o.cache(cfg.BaseURL)
	}
	srv, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := srv.Bootstrap(ctx)
	if err != nil || tok == "" {
		t.Fatalf("bootstrap: %q %v", tok, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Run(ctx, ln); err != nil {
			t.Errorf("server: %v", err)
		}
	}()
	hs := &harness{t: t, srv: srv, st: st, url: cfg.BaseURL, token: tok, actions: o.actions}
	hs.stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("server did not stop within 30 s")
		}
		st.Close()
	}
	t.Cleanup(hs.stop)
	if o.files != nil {
		hs.git = newGitRepo(t, o.files)
		forge := o.forge
		if forge == "" {
			forge = "github"
		}
		secret := o.secret
		if secret == "" {
			secret = "s3cret"
		}
		var out struct {
			Repo struct {
				ID int64 `json:"id"`
			} `json:"repo"`
		}
		in := api.RepoInput{URL: "file://" + hs.git.dir, Forge: forge, Name: "octo/repo", Secret: secret}
		if o.statusURL != "" {
			in.StatusToken, in.APIURL = "tok-123", o.statusURL
		}
		hs.api("POST", "/api/repos", in, http.StatusCreated, &out)
		r, err := st.GetRepo(ctx, 1, out.Repo.ID)
		if err != nil {
			t.Fatal(err)
		}
		hs.repo = r
	}
	return hs
}

// api calls the REST API with the admin token and decodes the answer.
func (h *harness) api(method, path string, body any, want int, out any) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		h.t.Fatalf("%s %s: %d %s (want %d)", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			h.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

// hook posts a GitHub-signed webhook and returns the status and body.
func (h *harness) hook(event string, payload any, delivery string) (int, string) {
	h.t.Helper()
	body, _ := json.Marshal(payload)
	return h.hookRaw(event, body, delivery, sign(h.repo.Secret, body))
}

func (h *harness) hookRaw(event string, body []byte, delivery, sig string) (int, string) {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.url+"/hooks/"+itoa(h.repo.ID), bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", event)
	if delivery != "" {
		req.Header.Set("X-GitHub-Delivery", delivery)
	}
	if sig != "" {
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// push is a GitHub push payload for the repository's last commit.
func (h *harness) push(branch string, changed ...string) map[string]any {
	sha, msg := h.git.head()
	return map[string]any{
		"ref": "refs/heads/" + branch, "before": "0000000000000000000000000000000000000000", "after": sha,
		"created": true, "deleted": false,
		"repository":  map[string]any{"full_name": "octo/repo", "clone_url": "file://" + h.git.dir, "default_branch": "main"},
		"sender":      map[string]any{"login": "octocat"},
		"head_commit": map[string]any{"id": sha, "message": msg},
		"commits":     []any{map[string]any{"id": sha, "message": msg, "added": changed, "removed": []string{}, "modified": []string{}}},
	}
}

// waitRuns waits until n runs exist and all are finished.
func (h *harness) waitRuns(n int, timeout time.Duration) []*store.Run {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		runs, err := h.st.ListRuns(context.Background(), 1, store.RunFilter{Limit: 100})
		if err != nil {
			h.t.Fatal(err)
		}
		done := len(runs) >= n
		for _, r := range runs {
			if !store.Terminal(r.Status) {
				done = false
			}
		}
		if done {
			return runs
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("waiting for %d finished runs: have %s", n, describeRuns(runs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor polls cond until it holds.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func describeRuns(runs []*store.Run) string {
	var b strings.Builder
	for _, r := range runs {
		b.WriteString("\n  run " + itoa(r.ID) + " " + r.Workflow + " " + r.Status + " " + r.Error)
	}
	return b.String()
}

// jobLog returns the stored log of a job of run.
func (h *harness) jobLog(runID int64, key string) string {
	h.t.Helper()
	return h.jobLogIn(1, runID, key)
}

// jobLogIn returns the stored log of a job of a run of organisation org.
func (h *harness) jobLogIn(org, runID int64, key string) string {
	h.t.Helper()
	jobs, err := h.st.Jobs(context.Background(), org, runID)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, j := range jobs {
		if j.Key == key {
			var b strings.Builder
			for after := int64(0); ; {
				chunks, err := h.st.ReadLog(context.Background(), org, j.ID, after, 10000)
				if err != nil {
					h.t.Fatal(err)
				}
				for _, c := range chunks {
					b.Write(c.Data)
					after = c.Seq
				}
				if store.LogPageEnd(chunks, 10000) {
					return b.String()
				}
			}
		}
	}
	h.t.Fatalf("run %d has no job %s", runID, key)
	return ""
}

func (h *harness) jobs(runID int64) map[string]*store.Job {
	h.t.Helper()
	jobs, err := h.st.Jobs(context.Background(), 1, runID)
	if err != nil {
		h.t.Fatal(err)
	}
	m := map[string]*store.Job{}
	for _, j := range jobs {
		m[j.Key] = j
	}
	return m
}

// gitRepo is a real repository on disk (the "forge" side).
type gitRepo struct {
	t   testing.TB
	dir string
}

func newGitRepo(t testing.TB, files map[string]string) *gitRepo {
	t.Helper()
	g := &gitRepo{t: t, dir: t.TempDir()}
	g.git("init", "-q", "-b", "main")
	g.commit("first commit", files)
	return g
}

func (g *gitRepo) git(args ...string) string {
	g.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = g.dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		g.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files (an empty content deletes) and commits them.
func (g *gitRepo) commit(msg string, files map[string]string) string {
	g.t.Helper()
	for name, content := range files {
		p := filepath.Join(g.dir, name)
		if content == "" {
			_ = os.Remove(p)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			g.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			g.t.Fatal(err)
		}
	}
	g.git("add", "-A")
	g.git("commit", "-q", "--allow-empty", "-m", msg)
	return g.git("rev-parse", "HEAD")
}

func (g *gitRepo) head() (sha, msg string) {
	return g.git("rev-parse", "HEAD"), g.git("log", "-1", "--format=%B")
}
