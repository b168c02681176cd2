package cache

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Service speaks GitHub's cache protocols over a Store, so actions that
// embed @actions/cache (actions/cache itself, setup-node, setup-go...)
// work unchanged:
//
//   - v1 (ACTIONS_CACHE_URL): GET _apis/artifactcache/cache?keys=&version=,
//     POST _apis/artifactcache/caches (reserve), PATCH caches/{id} with
//     Content-Range (chunks), POST caches/{id} (commit);
//   - v2 (ACTIONS_RESULTS_URL, with ACTIONS_CACHE_SERVICE_V2 set): Twirp
//     JSON at /twirp/github.actions.results.api.v1.CacheService/
//     {GetCacheEntryDownloadURL,CreateCacheEntry,FinalizeCacheEntryUpload},
//     with uploads as Azure Blob PUTs (one shot, or comp=block and
//     comp=blocklist) to a signed URL.
//
// Calls carry a job's ACTIONS_RUNTIME_TOKEN (Tokens), which fixes the
// repository and ref: a job reads its ref's and the default branch's
// caches and writes only its ref's. Archive downloads and uploads go to
// URLs signed by the service (HMAC, one hour), as Azure's SAS URLs are, so
// they need no token. Mount the Service at the root of its address (Twirp
// paths are absolute).
type Service struct {
	store   *Store
	tokens  *Tokens
	staging string
	secret  [32]byte
	now     func() time.Time

	mu      sync.Mutex
	nextID  int64
	uploads map[int64]*upload
}

// upload is a reserved cache being uploaded.
type upload struct {
	id      int64
	scope   Scope
	key     string
	version string
	file    string
	created time.Time
	blocks  map[string]string // v2 block id → staged file
}

// maxUploadAge bounds how long a reservation waits for its commit.
const maxUploadAge = 2 * time.Hour

// NewService serves store; uploads in progress are kept in a folder of
// this service's own under staging (processes may share a cache folder),
// removed by Close.
func NewService(store *Store, tokens *Tokens, staging string) (*Service, error) {
	if err := os.MkdirAll(staging, 0o700); err != nil {
		return nil, errs.Wrap("cache service", errs.Unavailable, err)
	}
	staging, err := os.MkdirTemp(staging, "service-")
	if err != nil {
		return nil, errs.Wrap("cache service", errs.Unavailable, err)
	}
	s := &Service{store: store, tokens: tokens, staging: staging, now: time.Now, uploads: map[int64]*upload{}}
	if _, err := rand.Read(s.secret[:]); err != nil {
		return nil, errs.Wrap("cache service", errs.Other, err)
	}
	s.nextID = time.Now().UnixNano() & 0xffffffff // ids differ across restarts
	return s, nil
}

// Close removes the uploads in progress.
func (s *Service) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uploads = map[int64]*upload{}
	return os.RemoveAll(s.staging)
}

const (
	twirpPrefix = "/twirp/github.actions.results.api.v1.CacheService/"
	v1Prefix    = "/_apis/artifactcache/"
	dlPrefix    = "/_conveyor/cache/dl/"
	upPrefix    = "/_conveyor/cache/up/"
)

// ServeHTTP implements http.Handler.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, dlPrefix):
		s.download(w, r, strings.TrimPrefix(p, dlPrefix))
	case strings.HasPrefix(p, upPrefix):
		s.blobPut(w, r, strings.TrimPrefix(p, upPrefix))
	case strings.HasPrefix(p, twirpPrefix):
		scope, ok := s.auth(r)
		if !ok {
			twirpError(w, http.StatusUnauthorized, "unauthenticated", "a valid ACTIONS_RUNTIME_TOKEN is required")
			return
		}
		s.twirp(w, r, scope, strings.TrimPrefix(p, twirpPrefix))
	case strings.HasPrefix(p, v1Prefix):
		scope, ok := s.auth(r)
		if !ok {
			httpError(w, http.StatusUnauthorized, "a valid ACTIONS_RUNTIME_TOKEN is required")
			return
		}
		s.v1(w, r, scope, strings.TrimPrefix(p, v1Prefix))
	default:
		httpError(w, http.StatusNotFound, "no such cache endpoint")
	}
}

func (s *Service) auth(r *http.Request) (Scope, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return Scope{}, false
	}
	return s.tokens.Check(tok)
}

// ---- signed URLs ----------------------------------------------------------

func (s *Service) sign(parts ...string) string {
	m := hmac.New(sha256.New, s.secret[:])
	m.Write([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(m.Sum(nil))
}

// signedURL builds base+prefix+name?x=EXP&sig=SIG, base being the address
// the client reached us at (so the URL works from where it called).
func (s *Service) signedURL(r *http.Request, prefix, name, repo string) string {
	exp := strconv.FormatInt(s.now().Add(time.Hour).Unix(), 10)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + prefix + name + "?x=" + exp + "&sig=" + s.sign(prefix, name, repo, exp)
}

// checkSig verifies a signed URL's expiry and signature (constant time).
func (s *Service) checkSig(r *http.Request, prefix, name, repo string) bool {
	q := r.URL.Query()
	exp, err := strconv.ParseInt(q.Get("x"), 10, 64)
	if err != nil || s.now().Unix() > exp {
		return false
	}
	return hmac.Equal([]byte(q.Get("sig")), []byte(s.sign(prefix, name, repo, q.Get("x"))))
}

// download serves an entry's archive: name is REPOHASH/ID. The signature
// covers both, so a URL names exactly one entry.
func (s *Service) download(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		httpError(w, http.StatusMethodNotAllowed, "GET only")
		return
	}
	repo, id, ok := s.entryRef(name)
	if !ok || !s.checkSig(r, dlPrefix, name, repo) {
		httpError(w, http.StatusForbidden, "bad or expired signature")
		return
	}
	e, err := s.store.Get(r.Context(), repo, id)
	if err != nil {
		writeErr(w, err)
		return
	}
	rc, err := s.store.Open(r.Context(), e)
	if err != nil {
		writeErr(w, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(e.Size, 10))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = io.Copy(w, rc)
}

// entryRef decodes a download name: "ID/HEX(REPO)".
func (s *Service) entryRef(name string) (repo, id string, ok bool) {
	id, hexRepo, found := strings.Cut(name, "/")
	if !found {
		return "", "", false
	}
	b, err := hex.DecodeString(hexRepo)
	if err != nil {
		return "", "", false
	}
	return string(b), id, validID(id)
}

func (s *Service) downloadURL(r *http.Request, e *Entry) string {
	name := e.ID + "/" + hex.EncodeToString([]byte(e.Repo))
	return s.signedURL(r, dlPrefix, name, e.Repo)
}

// ---- reservations ---------------------------------------------------------

// reserve starts an upload for (scope, key, version); Conflict when the
// entry exists or another job is uploading it.
func (s *Service) reserve(ctx context.Context, scope Scope, key, version string, size int64) (*upload, error) {
	const op = "cache reserve"
	if key == "" || version == "" {
		return nil, errs.E(op, errs.Invalid, "key and version are required")
	}
	if s.store.limit > 0 && size > s.store.limit {
		return nil, errs.E(op, errs.TooLarge, "cache size of %d bytes is over the repository's limit of %d bytes", size, s.store.limit)
	}
	if ok, err := s.store.Exists(ctx, scope.Repo, scope.Ref, key, version); err != nil {
		return nil, err
	} else if ok {
		return nil, errs.E(op, errs.Conflict, "cache entry with key %q and this version already exists", key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	for _, u := range s.uploads {
		if u.scope == scope && u.key == key && u.version == version {
			return nil, errs.E(op, errs.Conflict, "another job is creating the cache with key %q", key)
		}
	}
	s.nextID++
	u := &upload{id: s.nextID, scope: scope, key: key, version: version, created: s.now(), blocks: map[string]string{},
		file: filepath.Join(s.staging, strconv.FormatInt(s.nextID, 10)+".upload")}
	f, err := os.Create(u.file)
	if err != nil {
		return nil, errs.Wrap(op, errs.Unavailable, err)
	}
	f.Close()
	s.uploads[u.id] = u
	return u, nil
}

func (s *Service) expireLocked() {
	for id, u := range s.uploads {
		if s.now().Sub(u.created) > maxUploadAge {
			s.dropLocked(id, u)
		}
	}
}

func (s *Service) dropLocked(id int64, u *upload) {
	delete(s.uploads, id)
	os.Remove(u.file)
	for _, b := range u.blocks {
		os.Remove(b)
	}
}

func (s *Service) upload(id int64, scope Scope) (*upload, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.uploads[id]
	if !ok || u.scope != scope {
		return nil, false
	}
	return u, true
}

// commit checks the staged size and moves the upload into the store.
func (s *Service) commit(ctx context.Context, u *upload, size int64) (*Entry, error) {
	s.mu.Lock()
	if s.uploads[u.id] != u {
		s.mu.Unlock()
		return nil, errs.E("cache commit", errs.NotFound, "no upload in progress with id %d", u.id)
	}
	delete(s.uploads, u.id) // committing: no other request may touch it
	s.mu.Unlock()
	defer func() {
		os.Remove(u.file)
		for _, b := range u.blocks {
			os.Remove(b)
		}
	}()
	f, err := os.Open(u.file)
	if err != nil {
		return nil, errs.Wrap("cache commit", errs.Unavailable, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, errs.Wrap("cache commit", errs.Unavailable, err)
	}
	if size >= 0 && fi.Size() != size {
		return nil, errs.E("cache commit", errs.Invalid, "cache size mismatch: %d bytes uploaded, %d announced", fi.Size(), size)
	}
	return s.store.Save(ctx, Entry{Repo: u.scope.Repo, Ref: u.scope.Ref, Key: u.key, Version: u.version}, f, fi.Size())
}

// lookup runs a query for a job.
func (s *Service) lookup(ctx context.Context, scope Scope, keys []string, version string) (*Entry, error) {
	var clean []string
	for _, k := range keys {
		if k = strings.TrimSpace(k); k != "" {
			clean = append(clean, k)
		}
	}
	if len(clean) == 0 || version == "" {
		return nil, errs.E("cache lookup", errs.Invalid, "keys and version are required")
	}
	return s.store.Lookup(ctx, Query{Repo: scope.Repo, Ref: scope.Ref, DefaultRef: scope.DefaultRef, Keys: clean, Version: version})
}

// ---- helpers ----------------------------------------------------------------

func readJSON(r *http.Request, v any) error {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
		return errs.Wrap("cache", errs.Invalid, err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg})
}

func statusOf(err error) int {
	switch errs.KindOf(err) {
	case errs.Invalid:
		return http.StatusBadRequest
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Conflict:
		return http.StatusConflict
	case errs.Unauthorized:
		return http.StatusUnauthorized
	case errs.Forbidden:
		return http.StatusForbidden
	case errs.TooLarge:
		return http.StatusRequestEntityTooLarge
	case errs.Canceled:
		return 499
	}
	return http.StatusInternalServerError
}

func writeErr(w http.ResponseWriter, err error) {
	httpError(w, statusOf(err), err.Error())
}

var errBadRange = errors.New("bad Content-Range")
