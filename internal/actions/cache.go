package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// DefaultBaseURL is where actions come from unless told otherwise.
const DefaultBaseURL = "https://github.com"

// DefaultRefTTL is how long a resolved tag or branch is trusted.
const DefaultRefTTL = 5 * time.Minute

// Options configure a Cache. Everything is passed in (see cmd/conveyor for
// the flags and environment variables that fill it).
type Options struct {
	// Dir is the cache folder (trees, ref resolutions, locks). Required.
	Dir string
	// BaseURL is cloned as BaseURL/owner/repo (default DefaultBaseURL);
	// file:// URLs work.
	BaseURL string
	// Token, when set, is sent to BaseURL as HTTP basic auth
	// (x-access-token), through git's environment, never its command line.
	Token string
	// Offline uses only what the cache holds: no git command touches the
	// network.
	Offline bool
	// RefTTL is how long a tag or branch resolution is trusted
	// (default DefaultRefTTL).
	RefTTL time.Duration
	// FetchTimeout bounds one fetch (default 10 minutes).
	FetchTimeout time.Duration
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
	// Git is the git binary (default "git" on PATH).
	Git string
}

// Cache fetches action repositories and keeps their trees by commit SHA.
// It is safe for concurrent use, also by several processes sharing Dir.
type Cache struct {
	opts  Options
	group flights
	stats struct{ resolves, fetches atomic.Int64 }
}

// Resolved is a repository tree at a commit.
type Resolved struct {
	Ref Ref
	SHA string
	// Dir is the repository's tree in the cache. It is shared: callers
	// must copy it before a job may change it.
	Dir string
	// Fetched says the tree came over the network for this call.
	Fetched bool
	// Warning is set when an older resolution was used because the remote
	// could not be reached.
	Warning string
}

// Stats counts network operations, for tests and logs.
type Stats struct {
	// Resolves are ls-remote calls (a known tree's ref checked again).
	Resolves int64
	// Fetches are clones or fetches of a tree.
	Fetches int64
}

// New returns a Cache over opts.Dir (made if needed).
func New(opts Options) (*Cache, error) {
	if opts.Dir == "" {
		return nil, errs.E("actions", errs.Invalid, "no cache folder")
	}
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	opts.BaseURL = strings.TrimSuffix(opts.BaseURL, "/")
	if _, err := url.Parse(opts.BaseURL); err != nil || !strings.Contains(opts.BaseURL, "://") {
		return nil, errs.E("actions", errs.Invalid, "actions URL %q: want a URL such as https://github.com or file:///srv/mirror", redact(opts.BaseURL))
	}
	if opts.RefTTL <= 0 {
		opts.RefTTL = DefaultRefTTL
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Git == "" {
		opts.Git = "git"
	}
	for _, d := range []string{"trees", "refs", "locks", "tmp"} {
		if err := os.MkdirAll(filepath.Join(opts.Dir, d), 0o755); err != nil {
			return nil, errs.Wrap("actions cache", errs.Unavailable, err)
		}
	}
	c := &Cache{opts: opts}
	c.removeStaleTemp()
	return c, nil
}

// BaseURL is where the cache fetches from, without credentials.
func (c *Cache) BaseURL() string { return redact(c.opts.BaseURL) }

// Stats returns the network operations made so far.
func (c *Cache) Stats() Stats {
	return Stats{Resolves: c.stats.resolves.Load(), Fetches: c.stats.fetches.Load()}
}

// Resolve returns the tree of r's repository at r's version, from the
// cache when it may, else fetched.
func (c *Cache) Resolve(ctx context.Context, r Ref) (*Resolved, error) {
	if r.IsSHA() {
		if c.hasTree(r, r.Version) {
			return c.resolved(r, r.Version, false), nil
		}
		if c.opts.Offline {
			return nil, c.offlineErr(r)
		}
		return c.once(ctx, r.key()+"@"+r.Version, func(ctx context.Context) (*Resolved, error) {
			unlock, err := c.lock(ctx, r, r.Version)
			if err != nil {
				return nil, err
			}
			defer unlock()
			if c.hasTree(r, r.Version) {
				return c.resolved(r, r.Version, false), nil
			}
			if _, err := c.fetch(ctx, r); err != nil {
				return nil, err
			}
			return c.resolved(r, r.Version, true), nil
		})
	}
	rec := c.readRecord(r)
	if rec != nil && c.hasTree(r, rec.SHA) && (c.opts.Offline || c.fresh(rec)) {
		return c.resolved(r, rec.SHA, false), nil
	}
	if c.opts.Offline {
		return nil, c.offlineErr(r)
	}
	return c.once(ctx, r.key()+"@"+r.Version, func(ctx context.Context) (*Resolved, error) {
		return c.update(ctx, r)
	})
}

// update resolves a tag or branch again (or for the first time) under the
// ref's file lock, fetching the tree when its commit is new.
func (c *Cache) update(ctx context.Context, r Ref) (*Resolved, error) {
	unlock, err := c.lock(ctx, r, r.Version)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rec := c.readRecord(r) // another process may have done it meanwhile
	if rec != nil && c.hasTree(r, rec.SHA) {
		if c.fresh(rec) {
			return c.resolved(r, rec.SHA, false), nil
		}
		sha, err := c.lsRemote(ctx, r)
		if err != nil && errs.KindOf(err) == errs.Unavailable {
			res := c.resolved(r, rec.SHA, false)
			res.Warning = fmt.Sprintf("could not check %s for a newer commit (%v); using %s resolved at %s", r, err, rec.SHA[:12], rec.Resolved.UTC().Format(time.RFC3339))
			return res, nil
		}
		if err != nil {
			return nil, err
		}
		fetched := false
		if !c.hasTree(r, sha) {
			if _, err := c.fetch(ctx, Ref{Owner: r.Owner, Repo: r.Repo, Version: sha}); err != nil {
				return nil, err
			}
			fetched = true
		}
		if err := c.writeRecord(r, sha); err != nil {
			return nil, err
		}
		return c.resolved(r, sha, fetched), nil
	}
	// First time: one clone of the ref says its commit too.
	sha, err := c.fetch(ctx, r)
	if err != nil {
		return nil, err
	}
	if err := c.writeRecord(r, sha); err != nil {
		return nil, err
	}
	return c.resolved(r, sha, true), nil
}

// once runs fn once for concurrent callers with the same key (see
// flights), bounded by FetchTimeout.
func (c *Cache) once(ctx context.Context, key string, fn func(context.Context) (*Resolved, error)) (*Resolved, error) {
	return c.group.do(ctx, key, c.opts.FetchTimeout, fn)
}

func (c *Cache) resolved(r Ref, sha string, fetched bool) *Resolved {
	return &Resolved{Ref: r, SHA: sha, Dir: c.treeDir(r, sha), Fetched: fetched}
}

func (c *Cache) offlineErr(r Ref) error {
	return errs.E("actions", errs.NotFound, "%s is not in the action cache (%s) and --offline forbids fetching it: run once without --offline to fetch it", r, c.opts.Dir)
}

func (c *Cache) treeDir(r Ref, sha string) string {
	return filepath.Join(c.opts.Dir, "trees", filepath.FromSlash(r.key()), sha)
}

func (c *Cache) hasTree(r Ref, sha string) bool {
	st, err := os.Stat(c.treeDir(r, sha))
	return err == nil && st.IsDir()
}

// record is a tag or branch resolution, kept in the cache so that the
// next process within RefTTL does not ask the remote again.
type record struct {
	SHA      string    `json:"sha"`
	Resolved time.Time `json:"resolved"`
	URL      string    `json:"url"`
}

func (c *Cache) recordPath(r Ref) string {
	return filepath.Join(c.opts.Dir, "refs", filepath.FromSlash(r.key()), url.PathEscape(r.Version)+".json")
}

func (c *Cache) readRecord(r Ref) *record {
	b, err := os.ReadFile(c.recordPath(r))
	if err != nil {
		return nil
	}
	var rec record
	if json.Unmarshal(b, &rec) != nil || !shaRe.MatchString(rec.SHA) || rec.URL != redact(c.opts.BaseURL) {
		return nil
	}
	return &rec
}

func (c *Cache) fresh(rec *record) bool {
	age := c.opts.Now().Sub(rec.Resolved)
	return age >= 0 && age < c.opts.RefTTL
}

func (c *Cache) writeRecord(r Ref, sha string) error {
	b, _ := json.Marshal(record{SHA: sha, Resolved: c.opts.Now(), URL: redact(c.opts.BaseURL)})
	p := c.recordPath(r)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return errs.Wrap("actions cache", errs.Unavailable, err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".rec-*")
	if err != nil {
		return errs.Wrap("actions cache", errs.Unavailable, err)
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), p)
	}
	if werr != nil {
		os.Remove(f.Name())
		return errs.Wrap("actions cache", errs.Unavailable, werr)
	}
	return nil
}

// lock takes the cache's file lock for one repository and version.
func (c *Cache) lock(ctx context.Context, r Ref, version string) (func(), error) {
	p := filepath.Join(c.opts.Dir, "locks", filepath.FromSlash(r.key()), url.PathEscape(version)+".lock")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, errs.Wrap("actions cache", errs.Unavailable, err)
	}
	unlock, err := lockFile(ctx, p)
	if err != nil {
		return nil, errs.Wrap("actions cache lock", errs.KindOf(err), err)
	}
	return unlock, nil
}

// removeStaleTemp removes temporary folders that a killed fetch left.
// Only old ones: another process may be fetching right now.
func (c *Cache) removeStaleTemp() {
	dir := filepath.Join(c.opts.Dir, "tmp")
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if info, err := e.Info(); err == nil && c.opts.Now().Sub(info.ModTime()) > 2*c.opts.FetchTimeout {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// redact drops the user information of a URL (a token in it).
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = nil
	return u.String()
}
