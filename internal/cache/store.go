// Package cache is the store behind every cache Conveyor keeps: the
// native actions/cache steps and the service speaking GitHub's cache
// protocol (for actions embedding @actions/cache) both read and write it.
//
// Entries are keyed by (repository, ref, key, version). Lookup follows
// GitHub's rules: in the ref's scope, an exact match of the primary key,
// then a prefix match of it, then a prefix match of each restore key in
// turn, newest first; then the same in the default branch's scope. Each
// repository has a size limit; saving past it evicts the least recently
// used entries of that repository.
//
// Blobs (archives and the small JSON index records) live in a Blobs
// backend: a local directory (Dir) or any S3-compatible store (S3).
package cache

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Blobs is where a Store keeps its objects. Names are slash-separated,
// made of [a-z0-9/._-]. Implementations are safe for concurrent use.
type Blobs interface {
	// Put stores r under name (size -1: unknown), replacing any object.
	Put(ctx context.Context, name string, r io.Reader, size int64) error
	// Get opens name; errs.NotFound when absent.
	Get(ctx context.Context, name string) (io.ReadCloser, error)
	// Delete removes name; absent is not an error.
	Delete(ctx context.Context, name string) error
	// List returns the names under prefix.
	List(ctx context.Context, prefix string) ([]string, error)
}

// Entry is one saved cache.
type Entry struct {
	ID       string    `json:"id"`
	Repo     string    `json:"repo"`
	Ref      string    `json:"ref"`
	Key      string    `json:"key"`
	Version  string    `json:"version"`
	Size     int64     `json:"size"`
	Created  time.Time `json:"created"`
	Accessed time.Time `json:"accessed"`
	// URL is where a Remote store reads the entry (not stored).
	URL string `json:"-"`
}

// Query asks for a cache: Keys[0] is the primary key, the rest restore
// keys, in order.
type Query struct {
	Repo       string
	Ref        string
	DefaultRef string // the default branch's ref ("refs/heads/main"); "" skips that scope
	Keys       []string
	Version    string
}

// Store keeps cache entries in Blobs.
type Store struct {
	blobs Blobs
	limit int64 // per repository; 0: none
	now   func() time.Time
	mu    sync.Mutex // serialises save+evict per store
}

// DefaultSizeLimit is GitHub's: 10 GB per repository.
const DefaultSizeLimit = 10 << 30

// NewStore makes a store over blobs with a per-repository size limit
// (0: DefaultSizeLimit, negative: none).
func NewStore(blobs Blobs, limit int64) *Store {
	if limit == 0 {
		limit = DefaultSizeLimit
	}
	return &Store{blobs: blobs, limit: limit, now: time.Now}
}

func repoDir(repo string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(repo)))
	return hex.EncodeToString(sum[:12])
}

func metaName(repo, id string) string { return "meta/" + repoDir(repo) + "/" + id + ".json" }
func blobName(repo, id string) string { return "blobs/" + repoDir(repo) + "/" + id + ".tzst" }

// Entries lists a repository's entries, newest first.
func (s *Store) Entries(ctx context.Context, repo string) ([]*Entry, error) {
	names, err := s.blobs.List(ctx, "meta/"+repoDir(repo)+"/")
	if err != nil {
		return nil, err
	}
	var out []*Entry
	for _, n := range names {
		e, err := s.readMeta(ctx, n)
		if err != nil {
			if errs.KindOf(err) == errs.NotFound {
				continue // evicted meanwhile
			}
			return nil, err
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

func (s *Store) readMeta(ctx context.Context, name string) (*Entry, error) {
	rc, err := s.blobs.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var e Entry
	if err := json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&e); err != nil {
		return nil, errs.Wrap("cache", errs.Other, err)
	}
	return &e, nil
}

func (s *Store) writeMeta(ctx context.Context, e *Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return errs.Wrap("cache", errs.Other, err)
	}
	return s.blobs.Put(ctx, metaName(e.Repo, e.ID), strings.NewReader(string(b)), int64(len(b)))
}

// Lookup finds the entry q asks for, by GitHub's rules; errs.NotFound
// when none matches.
func (s *Store) Lookup(ctx context.Context, q Query) (*Entry, error) {
	if len(q.Keys) == 0 {
		return nil, errs.E("cache", errs.Invalid, "no key to look up")
	}
	all, err := s.Entries(ctx, q.Repo)
	if err != nil {
		return nil, err
	}
	scopes := []string{q.Ref}
	if q.DefaultRef != "" && q.DefaultRef != q.Ref {
		scopes = append(scopes, q.DefaultRef)
	}
	for _, ref := range scopes {
		var in []*Entry
		for _, e := range all {
			if e.Ref == ref && e.Version == q.Version {
				in = append(in, e)
			}
		}
		if e := match(in, q.Keys); e != nil {
			return e, nil
		}
	}
	return nil, errs.E("cache", errs.NotFound, "no cache for keys %s", strings.Join(q.Keys, ", "))
}

// match applies the key rules to one scope's entries (newest first).
func match(entries []*Entry, keys []string) *Entry {
	for _, e := range entries {
		if e.Key == keys[0] {
			return e
		}
	}
	for _, k := range keys {
		for _, e := range entries {
			if strings.HasPrefix(e.Key, k) {
				return e
			}
		}
	}
	return nil
}

// Open reads an entry's archive and marks it used (for LRU eviction).
func (s *Store) Open(ctx context.Context, e *Entry) (io.ReadCloser, error) {
	rc, err := s.blobs.Get(ctx, blobName(e.Repo, e.ID))
	if err != nil {
		return nil, err
	}
	touched := *e
	touched.Accessed = s.now()
	if err := s.writeMeta(ctx, &touched); err != nil {
		rc.Close()
		return nil, err
	}
	return rc, nil
}

// Exists reports whether an entry with exactly this scope, key and
// version is stored.
func (s *Store) Exists(ctx context.Context, repo, ref, key, version string) (bool, error) {
	all, err := s.Entries(ctx, repo)
	if err != nil {
		return false, err
	}
	for _, e := range all {
		if e.Ref == ref && e.Key == key && e.Version == version {
			return true, nil
		}
	}
	return false, nil
}

// Save stores the archive r (size -1: unknown) as a new entry; an entry
// with the same (repo, ref, key, version) is an errs.Conflict, as caches
// are immutable. Saving past the repository's limit evicts the least
// recently used entries; an archive larger than the limit is TooLarge.
func (s *Store) Save(ctx context.Context, e Entry, r io.Reader, size int64) (*Entry, error) {
	const op = "cache.Save"
	if e.Repo == "" || e.Key == "" || e.Version == "" {
		return nil, errs.E(op, errs.Invalid, "a cache needs a repository, a key and a version")
	}
	if len(e.Key) > 512 {
		return nil, errs.E(op, errs.Invalid, "key is longer than 512 characters")
	}
	if s.limit > 0 && size > s.limit {
		return nil, errs.E(op, errs.TooLarge, "cache of %d bytes is over the repository's limit of %d bytes", size, s.limit)
	}
	if ok, err := s.Exists(ctx, e.Repo, e.Ref, e.Key, e.Version); err != nil {
		return nil, err
	} else if ok {
		return nil, errs.E(op, errs.Conflict, "a cache with key %q already exists", e.Key)
	}
	e.ID = newID()
	cr := &countingReader{r: r}
	if err := s.blobs.Put(ctx, blobName(e.Repo, e.ID), cr, size); err != nil {
		return nil, err
	}
	e.Size = cr.n
	e.Created = s.now()
	e.Accessed = e.Created
	if s.limit > 0 && e.Size > s.limit {
		_ = s.blobs.Delete(ctx, blobName(e.Repo, e.ID))
		return nil, errs.E(op, errs.TooLarge, "cache of %d bytes is over the repository's limit of %d bytes", e.Size, s.limit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writeMeta(ctx, &e); err != nil {
		_ = s.blobs.Delete(ctx, blobName(e.Repo, e.ID))
		return nil, err
	}
	if err := s.evict(ctx, e.Repo, e.ID); err != nil {
		return nil, err
	}
	return &e, nil
}

// evict deletes the least recently used entries of repo (never keep)
// until the repository fits its limit.
func (s *Store) evict(ctx context.Context, repo, keep string) error {
	if s.limit <= 0 {
		return nil
	}
	all, err := s.Entries(ctx, repo)
	if err != nil {
		return err
	}
	var total int64
	for _, e := range all {
		total += e.Size
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Accessed.Before(all[j].Accessed) })
	for _, e := range all {
		if total <= s.limit {
			break
		}
		if e.ID == keep {
			continue
		}
		if err := s.Delete(ctx, e); err != nil {
			return err
		}
		total -= e.Size
	}
	return nil
}

// EvictUnused deletes repo's entries last used before before (the
// retention of caches, beside the size limit), and returns how many.
func (s *Store) EvictUnused(ctx context.Context, repo string, before time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all, err := s.Entries(ctx, repo)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range all {
		if e.Accessed.Before(before) {
			if err := s.Delete(ctx, e); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// Delete removes an entry.
func (s *Store) Delete(ctx context.Context, e *Entry) error {
	if err := s.blobs.Delete(ctx, metaName(e.Repo, e.ID)); err != nil {
		return err
	}
	return s.blobs.Delete(ctx, blobName(e.Repo, e.ID))
}

func newID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Version is the cache version actions/cache computes: the paths as
// written, the compression method, "windows-only" for Windows archives
// that are not cross-OS, and a salt, hashed with sha256.
func Version(paths []string, compression string, windowsOnly bool) string {
	comps := append([]string{}, paths...)
	if compression != "" {
		comps = append(comps, compression)
	}
	if windowsOnly {
		comps = append(comps, "windows-only")
	}
	comps = append(comps, "1.0")
	sum := sha256.Sum256([]byte(strings.Join(comps, "|")))
	return hex.EncodeToString(sum[:])
}

// Get returns the entry id of repo; errs.NotFound when absent.
func (s *Store) Get(ctx context.Context, repo, id string) (*Entry, error) {
	if !validID(id) {
		return nil, errs.E("cache", errs.NotFound, "no cache entry %q", id)
	}
	return s.readMeta(ctx, metaName(repo, id))
}

func validID(id string) bool {
	if len(id) != 24 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}
