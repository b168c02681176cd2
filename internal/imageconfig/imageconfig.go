// Package imageconfig reads an image's configuration (ENTRYPOINT, CMD,
// WORKDIR, USER, ENV) from its registry, by reference, with a small cache.
// Kubernetes does not expose it, and a step container that wraps the
// image's own entrypoint (the kubernetes backend's wait-file layout) needs
// it.
package imageconfig

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Config is what a step needs of an image's configuration.
type Config struct {
	Entrypoint []string
	Cmd        []string
	WorkingDir string
	User       string
	Env        []string
}

// Options configure a Resolver; zero values take the defaults.
type Options struct {
	// Keychain gives registry credentials (authn.DefaultKeychain reads
	// the docker config of the server's user); nil: anonymous.
	Keychain authn.Keychain
	// Platform picks the image of a multi-platform index; "": linux and
	// this program's architecture.
	OS, Arch string
	// Timeout bounds one lookup; 0: 5 s.
	Timeout time.Duration
	// TTL is how long a configuration is kept; 0: 10 minutes. A failed
	// lookup is kept for FailTTL (0: 30 s), so that an unreachable
	// registry does not cost every job its timeout.
	TTL, FailTTL time.Duration
	// Max is the number of references kept; 0: 256.
	Max int
}

// Resolver looks image configurations up. It is safe for concurrent use.
type Resolver struct {
	opts Options
	now  func() time.Time

	mu    sync.Mutex
	cache map[string]entry
}

type entry struct {
	cfg   Config
	err   error
	until time.Time
}

// New returns a resolver.
func New(opts Options) *Resolver {
	if opts.Keychain == nil {
		opts.Keychain = authn.NewMultiKeychain() // anonymous
	}
	if opts.OS == "" {
		opts.OS = "linux"
	}
	if opts.Arch == "" {
		opts.Arch = runtime.GOARCH
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.TTL <= 0 {
		opts.TTL = 10 * time.Minute
	}
	if opts.FailTTL <= 0 {
		opts.FailTTL = 30 * time.Second
	}
	if opts.Max <= 0 {
		opts.Max = 256
	}
	return &Resolver{opts: opts, now: time.Now, cache: map[string]entry{}}
}

// Config is the configuration of image ref (a reference as docker pull
// takes it: docker.io/library and :latest implied), from the cache or
// its registry. The error has kind Invalid (a bad reference), NotFound
// or Unavailable (the registry).
func (r *Resolver) Config(ctx context.Context, ref string) (Config, error) {
	if c, err, ok := r.cached(ref); ok {
		return c, err
	}
	c, err := r.lookup(ctx, ref)
	if ctx.Err() != nil && err != nil {
		return c, err // the caller's end, not the registry's: not kept
	}
	r.keep(ref, c, err)
	return c, err
}

func (r *Resolver) cached(ref string) (Config, error, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.cache[ref]
	if !ok || r.now().After(e.until) {
		return Config{}, nil, false
	}
	return e.cfg, e.err, true
}

// keep stores a lookup; a full cache first drops what has expired, then
// the entry that expires first.
func (r *Resolver) keep(ref string, c Config, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	ttl := r.opts.TTL
	if err != nil {
		ttl = r.opts.FailTTL
	}
	if _, ok := r.cache[ref]; !ok && len(r.cache) >= r.opts.Max {
		oldest := ""
		for k, e := range r.cache {
			if now.After(e.until) {
				delete(r.cache, k)
				continue
			}
			if oldest == "" || e.until.Before(r.cache[oldest].until) {
				oldest = k
			}
		}
		if len(r.cache) >= r.opts.Max {
			delete(r.cache, oldest)
		}
	}
	r.cache[ref] = entry{cfg: c, err: err, until: now.Add(ttl)}
}

func (r *Resolver) lookup(ctx context.Context, ref string) (Config, error) {
	op := "image config " + ref
	n, err := name.ParseReference(ref)
	if err != nil {
		return Config{}, errs.Wrap(op, errs.Invalid, err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	img, err := remote.Image(n, remote.WithContext(ctx), remote.WithAuthFromKeychain(r.opts.Keychain),
		remote.WithPlatform(v1.Platform{OS: r.opts.OS, Architecture: r.opts.Arch}))
	if err != nil {
		return Config{}, errs.Wrap(op, kindOf(err), err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return Config{}, errs.Wrap(op, kindOf(err), err)
	}
	c := cf.Config
	return Config{Entrypoint: c.Entrypoint, Cmd: c.Cmd, WorkingDir: c.WorkingDir, User: c.User, Env: c.Env}, nil
}

// kindOf maps a registry's answer onto an error kind.
func kindOf(err error) errs.Kind {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound:
			return errs.NotFound
		case http.StatusUnauthorized, http.StatusForbidden:
			return errs.Forbidden
		}
	}
	return errs.Unavailable
}
