// Package gitmirror keeps one bare mirror per repository on local disk and
// reads from it with the git CLI: workflow files at an event's commit, single
// files for reusable workflows and local actions, the paths a push changed,
// and the whole tree as a job's workspace.
//
// Layout: every repository key maps to <dir>/<sanitised-key>-<hash>.git; the
// first Sync builds the mirror in <dir>/.tmp-* and renames it into place, so a
// crash never leaves a half-cloned mirror behind. Only one process may use a
// cache directory at a time: the per-repository locks live in memory, and a
// Sync removes *.lock files left by a git process that died.
//
// Credentials reach git only through its environment (a credential helper
// that prints two environment variables, configured with GIT_CONFIG_COUNT and
// scoped to the remote's scheme://host), never through argv, a stored remote
// URL, a log line or an error: userinfo in URLs is redacted as https://***@host.
// Git runs with GIT_TERMINAL_PROMPT=0 and without system or global
// configuration; git 2.32 or newer is required.
package gitmirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Defaults for Options.
const (
	DefaultTimeout     = 2 * time.Minute
	DefaultMaxFileSize = 1 << 20
)

// Options configure a Cache. The zero value is usable.
type Options struct {
	// GitPath is the git executable; default "git".
	GitPath string
	// Timeout bounds each git command; default DefaultTimeout.
	Timeout time.Duration
	// MaxFileSize caps each file ReadFiles and ReadFile return; default
	// DefaultMaxFileSize.
	MaxFileSize int64
	// Env is the base environment of git processes; nil means the process
	// environment. GIT_* variables are dropped from it except GIT_SSH,
	// GIT_SSH_COMMAND, GIT_SSL_CAINFO and GIT_SSL_CAPATH.
	Env []string
	// AllowFileURLs permits file:// remotes (tests, local installs); other
	// remotes must be http, https, ssh, git or scp-like user@host:path.
	AllowFileURLs bool
	// Logger, when set, receives one line per git command: its argv (which
	// never holds a secret), duration and outcome.
	Logger func(string)
}

// Credentials authenticate to an http(s) remote. SSH remotes use the keys of
// the process's user instead.
type Credentials struct {
	// Username defaults to "x-access-token" when only Password is set: GitHub
	// requires it for app tokens, and GitLab and Gitea accept any name with a
	// token.
	Username string
	// Password is a password or an access token.
	Password string
}

// String hides the password, so that printing Credentials never leaks it.
func (c Credentials) String() string {
	if c.Password == "" {
		return fmt.Sprintf("{%s}", c.Username)
	}
	return fmt.Sprintf("{%s ***}", c.Username)
}

// GoString hides the password from %#v too.
func (c Credentials) GoString() string { return "gitmirror.Credentials" + c.String() }

func (c Credentials) empty() bool { return c.Username == "" && c.Password == "" }

// Cache is a directory of bare mirrors. Its methods are safe for concurrent
// use: Syncs of one repository coalesce, Syncs of different repositories run
// in parallel, and reads never wait for a Sync.
type Cache struct {
	dir  string
	opts Options

	mu     sync.Mutex
	repos  map[string]*repo     // by mirror directory
	batch  map[string]*catBatch // long-lived readers, by mirror directory
	trees  map[string]treeFiles // workflow folders read, by tree id
	closed bool

	// life ends at Close, which cancels the fetches still running in the
	// background and waits for them (flights).
	life    context.Context
	end     context.CancelFunc
	flights sync.WaitGroup
}

// New returns a Cache rooted at dir, which is created on first Sync.
func New(dir string, opts Options) *Cache {
	if opts.GitPath == "" {
		opts.GitPath = "git"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = DefaultMaxFileSize
	}
	life, end := context.WithCancel(context.Background())
	return &Cache{dir: dir, opts: opts, repos: map[string]*repo{}, life: life, end: end}
}

// repo serialises the network operations on one mirror and coalesces Syncs:
// a Sync asked for while another runs waits for the next one, which starts
// after the running one and serves every caller that queued behind it.
type repo struct {
	fetchMu sync.Mutex // held by every git fetch into the mirror

	mu      sync.Mutex
	running *flight
	queued  *flight
}

// flight is one Sync that several callers may wait for.
type flight struct {
	ctx  context.Context // of the caller that started it, without its cancellation, ended by Close
	stop func()          // releases ctx
	rem  remote
	done chan struct{}
	err  error
}

func (c *Cache) repo(dir string) *repo {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.repos[dir]
	if r == nil {
		r = &repo{}
		c.repos[dir] = r
	}
	return r
}

// Sync brings the mirror of key up to date with url, cloning it the first
// time. It fetches branches, tags, and the pull and merge request heads that
// GitHub and GitLab publish (a remote without them is fine), pruning refs the
// remote deleted. If ctx ends first Sync returns, but a fetch already started
// finishes in the background within Options.Timeout, unless Close ends it.
func (c *Cache) Sync(ctx context.Context, key, url string, cred Credentials) error {
	const op = "gitmirror.Sync"
	if err := ctx.Err(); err != nil {
		return ctxErr(op, err)
	}
	dir, err := c.repoDir(op, key)
	if err != nil {
		return err
	}
	rem, err := c.parseRemote(op, url, cred)
	if err != nil {
		return err
	}
	r := c.repo(dir)
	c.mu.Lock()
	closed := c.closed
	if !closed {
		c.flights.Add(1) // under c.mu, so that Close's Wait sees it
	}
	c.mu.Unlock()
	if closed {
		return errs.E(op, errs.Unavailable, "the mirror cache is closed")
	}
	r.mu.Lock()
	f := r.queued
	switch {
	case f != nil:
		c.flights.Done()
	case r.running != nil:
		f = c.newFlight(ctx, rem)
		r.queued = f
	default:
		f = c.newFlight(ctx, rem)
		r.running = f
		go c.fly(r, dir, f)
	}
	r.mu.Unlock()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctxErr(op, ctx.Err())
	}
}

// newFlight is a Sync that outlives its caller's ctx, not Close. The
// caller has counted it in c.flights; fly marks it done.
func (c *Cache) newFlight(ctx context.Context, rem remote) *flight {
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	unhook := context.AfterFunc(c.life, cancel)
	return &flight{ctx: fctx, stop: func() { unhook(); cancel() }, rem: rem, done: make(chan struct{})}
}

// fly runs f, then the flight queued behind it, if any.
func (c *Cache) fly(r *repo, dir string, f *flight) {
	for f != nil {
		f.err = c.sync(f.ctx, r, dir, f.rem)
		f.stop()
		close(f.done)
		c.flights.Done()
		r.mu.Lock()
		r.running, r.queued = r.queued, nil
		f = r.running
		r.mu.Unlock()
	}
}

// repoDir maps a repository key to its mirror directory. The name keeps a
// readable, sanitised form of the key and a hash of the raw key, so that
// "a/b" and "a_b" differ and no key can name a path outside c.dir.
func (c *Cache) repoDir(op, key string) (string, error) {
	if key == "" {
		return "", errs.E(op, errs.Invalid, "empty repository key")
	}
	if c.dir == "" {
		return "", errs.E(op, errs.Invalid, "cache has no directory")
	}
	return filepath.Join(c.dir, dirName(key)), nil
}

func dirName(key string) string {
	var b strings.Builder
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := strings.TrimLeft(b.String(), "._-")
	if len(name) > 64 {
		name = name[:64]
	}
	sum := sha256.Sum256([]byte(key))
	if name == "" {
		return hex.EncodeToString(sum[:8]) + ".git"
	}
	return name + "-" + hex.EncodeToString(sum[:6]) + ".git"
}

// existing returns the mirror directory of key, or NotFound before its
// first successful Sync.
func (c *Cache) existing(op, key string) (string, error) {
	dir, err := c.repoDir(op, key)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(dir); err != nil {
		return "", errs.E(op, errs.NotFound, "repository %q is not mirrored yet", key)
	}
	return dir, nil
}

// ctxErr gives a context's error its kind.
func ctxErr(op string, err error) error {
	return errs.Wrap(op, kindOfCtx(err), err)
}
