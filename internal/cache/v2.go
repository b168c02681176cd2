package cache

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// flexInt is a protobuf int64 in JSON: a string or a number.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	*f = flexInt(n)
	return err
}

func twirpError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"code": code, "msg": msg})
}

func twirpErr(w http.ResponseWriter, err error) {
	code := map[int]string{400: "invalid_argument", 404: "not_found", 409: "already_exists", 401: "unauthenticated",
		403: "permission_denied", 413: "resource_exhausted"}[statusOf(err)]
	if code == "" {
		code = "internal"
	}
	twirpError(w, statusOf(err), code, err.Error())
}

// twirp serves the v2 CacheService (JSON encoding only, as
// @actions/cache's client uses).
func (s *Service) twirp(w http.ResponseWriter, r *http.Request, scope Scope, method string) {
	if r.Method != http.MethodPost {
		twirpError(w, http.StatusMethodNotAllowed, "bad_route", "POST only")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		twirpError(w, http.StatusUnsupportedMediaType, "bad_route", "only application/json is served")
		return
	}
	var req struct {
		Key         string   `json:"key"`
		RestoreKeys []string `json:"restore_keys"`
		Version     string   `json:"version"`
		SizeBytes   flexInt  `json:"size_bytes"`
	}
	if err := readJSON(r, &req); err != nil {
		twirpErr(w, err)
		return
	}
	ctx := r.Context()
	switch method {
	case "GetCacheEntryDownloadURL":
		e, err := s.lookup(ctx, scope, append([]string{req.Key}, req.RestoreKeys...), req.Version)
		if errs.KindOf(err) == errs.NotFound {
			writeJSON(w, http.StatusOK, map[string]any{"ok": false})
			return
		}
		if err != nil {
			twirpErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "signed_download_url": s.downloadURL(r, e), "matched_key": e.Key})
	case "CreateCacheEntry":
		u, err := s.reserve(ctx, scope, req.Key, req.Version, -1)
		if k := errs.KindOf(err); k == errs.Conflict || k == errs.TooLarge {
			writeJSON(w, http.StatusOK, map[string]any{"ok": false, "message": err.Error()})
			return
		}
		if err != nil {
			twirpErr(w, err)
			return
		}
		name := strconv.FormatInt(u.id, 10)
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "signed_upload_url": s.signedURL(r, upPrefix, name+"/cache.tzst", scope.Repo)})
	case "FinalizeCacheEntryUpload":
		u := s.findUpload(scope, req.Key, req.Version)
		if u == nil {
			writeJSON(w, http.StatusOK, map[string]any{"ok": false, "message": "no upload in progress for key " + req.Key})
			return
		}
		if _, err := s.commit(ctx, u, int64(req.SizeBytes)); err != nil {
			writeJSON(w, http.StatusOK, map[string]any{"ok": false, "message": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "entry_id": strconv.FormatInt(u.id, 10)})
	default:
		twirpError(w, http.StatusNotFound, "bad_route", "no method "+method)
	}
}

func (s *Service) findUpload(scope Scope, key, version string) *upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.uploads {
		if u.scope == scope && u.key == key && u.version == version {
			return u
		}
	}
	return nil
}

// blobPut takes the Azure Blob PUTs of @actions/cache's upload to a
// signed URL: one shot, or blocks (comp=block) then their list
// (comp=blocklist).
func (s *Service) blobPut(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodPut {
		httpError(w, http.StatusMethodNotAllowed, "PUT only")
		return
	}
	idText, _, _ := strings.Cut(name, "/")
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		httpError(w, http.StatusForbidden, "bad or expired signature")
		return
	}
	s.mu.Lock()
	u := s.uploads[id]
	s.mu.Unlock()
	if u == nil || !s.checkSig(r, upPrefix, name, u.scope.Repo) {
		httpError(w, http.StatusForbidden, "bad or expired signature")
		return
	}
	limit := s.store.limit
	if limit <= 0 {
		limit = 1 << 62
	}
	q := r.URL.Query()
	switch q.Get("comp") {
	case "":
		err = writeFile(u.file, io.LimitReader(r.Body, limit+1), limit)
	case "block":
		bid := q.Get("blockid")
		if bid == "" || len(bid) > 128 {
			httpError(w, http.StatusBadRequest, "blockid required")
			return
		}
		f := filepath.Join(s.staging, idText+".block."+strconv.Itoa(len(u.blocks)))
		s.mu.Lock()
		if old, ok := u.blocks[bid]; ok {
			f = old
		} else {
			u.blocks[bid] = f
		}
		s.mu.Unlock()
		err = writeFile(f, io.LimitReader(r.Body, limit+1), limit)
	case "blocklist":
		err = s.commitBlocks(r, u, limit)
	default:
		httpError(w, http.StatusBadRequest, "comp="+q.Get("comp")+" is not supported")
		return
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("ETag", `"0x`+idText+`"`)
	w.WriteHeader(http.StatusCreated)
}

func writeFile(name string, r io.Reader, limit int64) error {
	f, err := os.Create(name)
	if err != nil {
		return errs.Wrap("cache upload", errs.Unavailable, err)
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errs.Wrap("cache upload", errs.Unavailable, err)
	}
	if n > limit {
		return errs.E("cache upload", errs.TooLarge, "upload is over the repository's cache size limit")
	}
	return nil
}

// commitBlocks concatenates the listed blocks, in order, into the upload.
func (s *Service) commitBlocks(r *http.Request, u *upload, limit int64) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return errs.Wrap("cache upload", errs.Invalid, err)
	}
	var list struct {
		Items []struct {
			ID string `xml:",chardata"`
		} `xml:",any"`
	}
	if err := xml.NewDecoder(bytes.NewReader(body)).Decode(&list); err != nil {
		return errs.Wrap("cache upload", errs.Invalid, err)
	}
	out, err := os.Create(u.file)
	if err != nil {
		return errs.Wrap("cache upload", errs.Unavailable, err)
	}
	defer out.Close()
	var total int64
	for _, it := range list.Items {
		s.mu.Lock()
		f, ok := u.blocks[strings.TrimSpace(it.ID)]
		s.mu.Unlock()
		if !ok {
			return errs.E("cache upload", errs.Invalid, "block %q was not uploaded", it.ID)
		}
		in, err := os.Open(f)
		if err != nil {
			return errs.Wrap("cache upload", errs.Unavailable, err)
		}
		n, err := io.Copy(out, in)
		in.Close()
		if err != nil {
			return errs.Wrap("cache upload", errs.Unavailable, err)
		}
		if total += n; total > limit {
			return errs.E("cache upload", errs.TooLarge, "upload is over the repository's cache size limit")
		}
	}
	return errs.Wrap("cache upload", errs.Unavailable, out.Close())
}
