package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Remote reads and writes a cache Service elsewhere (the server, for the
// jobs of agents) over GitHub's v2 protocol, with a job's token: the
// token fixes the repository and ref, so Query's and Entry's are ignored.
// It satisfies exec.Caches.
type Remote struct {
	base, token string
	hc          *http.Client
}

// NewRemote talks to the service at base (its root URL) with token.
func NewRemote(base, token string, hc *http.Client) *Remote {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Remote{base: trimSlash(base), token: token, hc: hc}
}

func (r *Remote) twirp(ctx context.Context, method string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return errs.Wrap("cache remote", errs.Other, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+twirpPrefix+method, bytes.NewReader(body))
	if err != nil {
		return errs.Wrap("cache remote", errs.Invalid, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := r.hc.Do(req)
	if err != nil {
		return errs.Wrap("cache remote", errs.Unavailable, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		kind := errs.Unavailable
		if resp.StatusCode == http.StatusUnauthorized {
			kind = errs.Unauthorized
		}
		return errs.E("cache remote", kind, "%s: %d %s", method, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return errs.Wrap("cache remote", errs.Other, json.Unmarshal(b, out))
}

// Lookup implements exec.Caches; the entry's URL is where Open reads.
func (r *Remote) Lookup(ctx context.Context, q Query) (*Entry, error) {
	if len(q.Keys) == 0 {
		return nil, errs.E("cache remote", errs.Invalid, "no key to look up")
	}
	var out struct {
		OK  bool   `json:"ok"`
		URL string `json:"signed_download_url"`
		Key string `json:"matched_key"`
	}
	in := map[string]any{"key": q.Keys[0], "restore_keys": q.Keys[1:], "version": q.Version}
	if err := r.twirp(ctx, "GetCacheEntryDownloadURL", in, &out); err != nil {
		return nil, err
	}
	if !out.OK {
		return nil, errs.E("cache remote", errs.NotFound, "no cache for keys %s", strings.Join(q.Keys, ", "))
	}
	return &Entry{Key: out.Key, Version: q.Version, URL: out.URL}, nil
}

// Open implements exec.Caches.
func (r *Remote) Open(ctx context.Context, e *Entry) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.URL, nil)
	if err != nil {
		return nil, errs.Wrap("cache remote", errs.Invalid, err)
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, errs.Wrap("cache remote", errs.Unavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, errs.E("cache remote", errs.Unavailable, "download: status %d", resp.StatusCode)
	}
	e.Size = resp.ContentLength
	return resp.Body, nil
}

// Save implements exec.Caches: reserve, one streamed PUT, finalize.
func (r *Remote) Save(ctx context.Context, e Entry, body io.Reader, size int64) (*Entry, error) {
	var created struct {
		OK      bool   `json:"ok"`
		URL     string `json:"signed_upload_url"`
		Message string `json:"message"`
	}
	if err := r.twirp(ctx, "CreateCacheEntry", map[string]any{"key": e.Key, "version": e.Version}, &created); err != nil {
		return nil, err
	}
	if !created.OK {
		return nil, errs.E("cache remote", errs.Conflict, "%s", created.Message)
	}
	cr := &countingReader{r: body}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, created.URL, cr)
	if err != nil {
		return nil, errs.Wrap("cache remote", errs.Invalid, err)
	}
	if size >= 0 {
		req.ContentLength = size
	}
	req.Header.Set("x-ms-blob-type", "BlockBlob")
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, errs.Wrap("cache remote", errs.Unavailable, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		kind := errs.Unavailable
		if resp.StatusCode == http.StatusRequestEntityTooLarge {
			kind = errs.TooLarge
		}
		return nil, errs.E("cache remote", kind, "upload: status %d", resp.StatusCode)
	}
	var fin struct {
		OK      bool   `json:"ok"`
		Message string `json:"message"`
	}
	in := map[string]any{"key": e.Key, "version": e.Version, "size_bytes": strconv.FormatInt(cr.n, 10)}
	if err := r.twirp(ctx, "FinalizeCacheEntryUpload", in, &fin); err != nil {
		return nil, err
	}
	if !fin.OK {
		return nil, errs.E("cache remote", errs.Other, "finalize: %s", fin.Message)
	}
	e.Size = cr.n
	return &e, nil
}

// StaticRuntime gives every job the same service URL and token (an
// agent's job, whose token the server issued). It satisfies
// exec.CacheRuntime.
type StaticRuntime struct{ URL, Token string }

// JobEnv implements exec.CacheRuntime.
func (s StaticRuntime) JobEnv(string, Scope, bool) map[string]string {
	u := trimSlash(s.URL) + "/"
	return map[string]string{"ACTIONS_CACHE_URL": u, "ACTIONS_RESULTS_URL": u, "ACTIONS_RUNTIME_TOKEN": s.Token, "ACTIONS_CACHE_SERVICE_V2": "true"}
}

// Release implements exec.CacheRuntime (the server's expiry ends the token).
func (StaticRuntime) Release(string) {}
