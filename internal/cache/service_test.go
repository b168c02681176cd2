package cache

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// realClient extracts the real actions/cache dist (tag ref) from the compat
// material: the @actions/cache client, bundled.
func realClient(t *testing.T, ref string) string {
	t.Helper()
	repo := filepath.Join(testenv.CompatDir(t, "actions"), "actions", "cache.git")
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	dir := t.TempDir()
	for _, f := range []string{"restore", "save-only"} {
		out, err := exec.Command("git", "-C", repo, "show", ref+":dist/"+f+"/index.js").Output()
		if err != nil {
			t.Fatalf("git show %s:dist/%s: %v", ref, f, err)
		}
		os.MkdirAll(filepath.Join(dir, f), 0o755)
		if err := os.WriteFile(filepath.Join(dir, f, "index.js"), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type clientRun struct {
	t    *testing.T
	dist string
	env  []string
	ws   string
}

// run runs one dist entry point (restore or save-only) with inputs.
func (c *clientRun) run(entry string, inputs map[string]string) (map[string]string, string) {
	c.t.Helper()
	out := filepath.Join(c.t.TempDir(), "out")
	os.WriteFile(out, nil, 0o644)
	os.WriteFile(out+".state", nil, 0o644)
	cmd := exec.Command("node", filepath.Join(c.dist, entry, "index.js"))
	cmd.Dir = c.ws
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Env = append(cmd.Env, "GITHUB_OUTPUT="+out, "GITHUB_STATE="+out+".state", "RUNNER_TEMP="+c.t.TempDir(), "GITHUB_WORKSPACE="+c.ws)
	for k, v := range inputs {
		cmd.Env = append(cmd.Env, "INPUT_"+strings.ToUpper(k)+"="+v)
	}
	logs, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(logs), "::error") {
		c.t.Fatalf("%s: %v\n%s", entry, err, logs)
	}
	b, _ := os.ReadFile(out)
	return parseOutputs(string(b)), string(logs)
}

// parseOutputs reads GITHUB_OUTPUT's name<<DELIM ... DELIM records.
func parseOutputs(s string) map[string]string {
	m := map[string]string{}
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); i++ {
		name, delim, ok := strings.Cut(lines[i], "<<")
		if !ok {
			continue
		}
		var val []string
		for i++; i < len(lines) && lines[i] != delim; i++ {
			val = append(val, lines[i])
		}
		m[name] = strings.Join(val, "\n")
	}
	return m
}

func newTestService(t *testing.T) (*Service, *Tokens, *httptest.Server) {
	d, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tokens := NewTokens()
	svc, err := NewService(NewStore(d, 0), tokens, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	return svc, tokens, srv
}

// The real @actions/cache client (actions/cache's own dist) saves through
// the service in one job and restores in the next, over v1 and v2.
func TestRealClient(t *testing.T) {
	for _, proto := range []string{"v1", "v2"} {
		for _, ref := range []string{"v4", "v5"} {
			t.Run(proto+"/"+ref, func(t *testing.T) { realClientRoundTrip(t, proto, ref) })
		}
	}
}

func realClientRoundTrip(t *testing.T, proto, ref string) {
	dist := realClient(t, ref)
	_, tokens, srv := newTestService(t)
	job := func(gitRef string) *clientRun {
		tok, revoke := tokens.Issue(Scope{Repo: "octo/app", Ref: gitRef, DefaultRef: "refs/heads/main"})
		t.Cleanup(revoke)
		env := []string{"ACTIONS_RUNTIME_TOKEN=" + tok, "GITHUB_REF=" + gitRef, "GITHUB_SERVER_URL=https://github.com",
			"ACTIONS_CACHE_URL=", "ACTIONS_RESULTS_URL=", "ACTIONS_CACHE_SERVICE_V2="}
		if proto == "v1" {
			env = append(env, "ACTIONS_CACHE_URL="+srv.URL+"/")
		} else {
			env = append(env, "ACTIONS_RESULTS_URL="+srv.URL+"/", "ACTIONS_CACHE_SERVICE_V2=true")
		}
		return &clientRun{t: t, dist: dist, env: env, ws: t.TempDir()}
	}
	first := job("refs/heads/main")
	os.MkdirAll(filepath.Join(first.ws, "deps", "sub"), 0o755)
	os.WriteFile(filepath.Join(first.ws, "deps", "sub", "lib.txt"), []byte("cached content"), 0o644)
	outs, logs := first.run("restore", map[string]string{"path": "deps", "key": "deps-abc", "restore-keys": "deps-"})
	if outs["cache-hit"] == "true" || !strings.Contains(logs, "Cache not found") {
		t.Fatalf("first restore: outputs %v\n%s", outs, logs)
	}
	if _, logs := first.run("save-only", map[string]string{"path": "deps", "key": "deps-abc"}); !strings.Contains(logs, "Cache saved with key: deps-abc") {
		t.Fatalf("save:\n%s", logs)
	}
	// A later job on another branch: exact hit from the default branch's scope.
	second := job("refs/heads/feature")
	outs, logs = second.run("restore", map[string]string{"path": "deps", "key": "deps-abc"})
	if outs["cache-hit"] != "true" || !strings.Contains(logs, "Cache restored from key: deps-abc") {
		t.Fatalf("second restore: outputs %v\n%s", outs, logs)
	}
	if b, err := os.ReadFile(filepath.Join(second.ws, "deps", "sub", "lib.txt")); err != nil || string(b) != "cached content" {
		t.Fatalf("restored file = %q, %v\n%s", b, err, logs)
	}
	// A restore key match (not an exact hit).
	third := job("refs/heads/feature")
	outs, logs = third.run("restore", map[string]string{"path": "deps", "key": "deps-xyz", "restore-keys": "deps-"})
	if outs["cache-hit"] != "false" || !strings.Contains(logs, "Cache restored from key: deps-abc") {
		t.Fatalf("restore-key: outputs %v\n%s", outs, logs)
	}
}

func TestServiceRefusesBadTokens(t *testing.T) {
	_, tokens, srv := newTestService(t)
	_, revoke := tokens.Issue(Scope{Repo: "o/r", Ref: "refs/heads/main"})
	revoked, revoke2 := tokens.Issue(Scope{Repo: "o/r", Ref: "refs/heads/main"})
	revoke2()
	defer revoke()
	for _, auth := range []string{"", "Bearer ", "Bearer nope", "Bearer " + revoked, "Basic eDp5"} {
		for _, u := range []string{"/_apis/artifactcache/cache?keys=a&version=b", "/twirp/github.actions.results.api.v1.CacheService/GetCacheEntryDownloadURL"} {
			method := http.MethodGet
			if strings.Contains(u, "twirp") {
				method = http.MethodPost
			}
			req, _ := http.NewRequest(method, srv.URL+u, strings.NewReader(`{"key":"a","version":"b"}`))
			req.Header.Set("Content-Type", "application/json")
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s with %q: status %d, want 401", u, auth, resp.StatusCode)
			}
		}
	}
	// A signed URL with a wrong signature is refused.
	resp, err := http.Get(srv.URL + dlPrefix + "0123456789abcdef01234567/6f2f72?x=99999999999&sig=00")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("bad signature: status %d, want 403", resp.StatusCode)
	}
}

// v2 uploads of more than one block (what BlockBlobClient does above
// 128 MiB): blocks, then the list in order, then Finalize; and the size
// check of Finalize.
func TestServiceBlockUpload(t *testing.T) {
	_, tokens, srv := newTestService(t)
	tok, revoke := tokens.Issue(Scope{Repo: "o/r", Ref: "refs/heads/main"})
	defer revoke()
	call := func(method string, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+twirpPrefix+method, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", method, resp.StatusCode, err)
		}
		return out
	}
	put := func(u, body string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPut, u, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %s: %d", u, resp.StatusCode)
		}
	}
	for i, size := range []string{"10", "11"} {
		key := "blocks-" + size
		created := call("CreateCacheEntry", `{"key":"`+key+`","version":"v"}`)
		up, _ := created["signed_upload_url"].(string)
		if created["ok"] != true || up == "" {
			t.Fatalf("create: %v", created)
		}
		put(up+"&comp=block&blockid=Yg==", "world")
		put(up+"&comp=block&blockid=YQ==", "hello")
		put(up+"&comp=blocklist", `<?xml version="1.0" encoding="utf-8"?><BlockList><Latest>YQ==</Latest><Latest>Yg==</Latest></BlockList>`)
		fin := call("FinalizeCacheEntryUpload", `{"key":"`+key+`","version":"v","size_bytes":"`+size+`"}`)
		if (fin["ok"] == true) != (i == 0) {
			t.Fatalf("finalize with size %s: %v", size, fin)
		}
	}
	got := call("GetCacheEntryDownloadURL", `{"key":"blocks-10","version":"v"}`)
	resp, err := http.Get(got["signed_download_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "helloworld" {
		t.Errorf("downloaded %q, want the blocks in list order", b)
	}
	// A tampered signature is refused.
	resp, err = http.Get(strings.Replace(got["signed_download_url"].(string), "sig=", "sig=0", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("tampered URL: status %d, want 403", resp.StatusCode)
	}
}
