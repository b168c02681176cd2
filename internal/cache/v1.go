package cache

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// v1 serves the legacy REST protocol (ACTIONS_CACHE_URL).
func (s *Service) v1(w http.ResponseWriter, r *http.Request, scope Scope, rest string) {
	switch {
	case rest == "cache" && r.Method == http.MethodGet:
		s.v1Lookup(w, r, scope)
	case rest == "caches" && r.Method == http.MethodGet:
		s.v1List(w, r, scope)
	case rest == "caches" && r.Method == http.MethodPost:
		s.v1Reserve(w, r, scope)
	case strings.HasPrefix(rest, "caches/"):
		id, err := strconv.ParseInt(strings.TrimPrefix(rest, "caches/"), 10, 64)
		if err != nil {
			httpError(w, http.StatusBadRequest, "bad cache id")
			return
		}
		u, ok := s.upload(id, scope)
		if !ok {
			httpError(w, http.StatusNotFound, "no cache upload in progress with id "+strconv.FormatInt(id, 10))
			return
		}
		switch r.Method {
		case http.MethodPatch:
			s.v1Chunk(w, r, u)
		case http.MethodPost:
			s.v1Commit(w, r, u)
		default:
			httpError(w, http.StatusMethodNotAllowed, "PATCH or POST")
		}
	default:
		httpError(w, http.StatusNotFound, "no such cache endpoint")
	}
}

type v1Entry struct {
	CacheKey        string    `json:"cacheKey"`
	Scope           string    `json:"scope"`
	CacheVersion    string    `json:"cacheVersion,omitempty"`
	CreationTime    time.Time `json:"creationTime"`
	ArchiveLocation string    `json:"archiveLocation,omitempty"`
}

func (s *Service) v1Lookup(w http.ResponseWriter, r *http.Request, scope Scope) {
	q := r.URL.Query()
	keys := q.Get("keys")
	// @actions/cache encodes keys twice (encodeURIComponent, then its HTTP
	// client): undo the second layer.
	if k, err := url.QueryUnescape(keys); err == nil {
		keys = k
	}
	e, err := s.lookup(r.Context(), scope, strings.Split(keys, ","), q.Get("version"))
	if errs.KindOf(err) == errs.NotFound {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v1Entry{CacheKey: e.Key, Scope: e.Ref, CreationTime: e.Created, ArchiveLocation: s.downloadURL(r, e)})
}

func (s *Service) v1List(w http.ResponseWriter, r *http.Request, scope Scope) {
	key := r.URL.Query().Get("key")
	all, err := s.store.Entries(r.Context(), scope.Repo)
	if err != nil {
		writeErr(w, err)
		return
	}
	list := []v1Entry{}
	for _, e := range all {
		if e.Key == key && (e.Ref == scope.Ref || e.Ref == scope.DefaultRef) {
			list = append(list, v1Entry{CacheKey: e.Key, Scope: e.Ref, CacheVersion: e.Version, CreationTime: e.Created})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"totalCount": len(list), "artifactCaches": list})
}

func (s *Service) v1Reserve(w http.ResponseWriter, r *http.Request, scope Scope) {
	var req struct {
		Key       string `json:"key"`
		Version   string `json:"version"`
		CacheSize int64  `json:"cacheSize"`
	}
	if err := readJSON(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	u, err := s.reserve(r.Context(), scope, req.Key, req.Version, req.CacheSize)
	if errs.KindOf(err) == errs.TooLarge {
		httpError(w, http.StatusBadRequest, err.Error()) // the client reads 400 as "over the data cap"
		return
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]int64{"cacheId": u.id})
}

// parseRange reads "bytes START-END/*".
func parseRange(h string) (start, end int64, err error) {
	spec, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, 0, errBadRange
	}
	spec, _, _ = strings.Cut(spec, "/")
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, 0, errBadRange
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, errBadRange
	}
	return start, end, nil
}

func (s *Service) v1Chunk(w http.ResponseWriter, r *http.Request, u *upload) {
	start, end, err := parseRange(r.Header.Get("Content-Range"))
	if err != nil {
		httpError(w, http.StatusBadRequest, "Content-Range: want bytes START-END/*")
		return
	}
	if s.store.limit > 0 && end >= s.store.limit {
		httpError(w, http.StatusRequestEntityTooLarge, "chunk goes past the repository's cache size limit")
		return
	}
	f, err := os.OpenFile(u.file, os.O_WRONLY, 0)
	if err != nil {
		writeErr(w, errs.Wrap("cache upload", errs.Unavailable, err))
		return
	}
	defer f.Close()
	want := end - start + 1
	n, err := io.Copy(io.NewOffsetWriter(f, start), io.LimitReader(r.Body, want))
	if err == nil && n != want {
		httpError(w, http.StatusBadRequest, "chunk shorter than its Content-Range")
		return
	}
	if err != nil {
		writeErr(w, errs.Wrap("cache upload", errs.Unavailable, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) v1Commit(w http.ResponseWriter, r *http.Request, u *upload) {
	var req struct {
		Size int64 `json:"size"`
	}
	if err := readJSON(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	if _, err := s.commit(r.Context(), u, req.Size); err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
