package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	units "github.com/docker/go-units"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/docker"
	"github.com/conveyor-ci/conveyor/internal/cache"
	"github.com/conveyor-ci/conveyor/internal/exec"
)

// cacheFlags are the cache settings of run and server.
type cacheFlags struct {
	dir, sizeLimit string
	s3             cache.S3Config
}

// addCacheFlags registers the cache flags; defDir is --cache-dir's default.
func addCacheFlags(fs *flag.FlagSet, defDir string) *cacheFlags {
	f := &cacheFlags{}
	env := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&f.dir, "cache-dir", env("CONVEYOR_CACHE_DIR", defDir), "folder of the caches (actions/cache and @actions/cache; env CONVEYOR_CACHE_DIR)")
	fs.StringVar(&f.sizeLimit, "cache-size-limit", env("CONVEYOR_CACHE_SIZE_LIMIT", "10g"), "most bytes of caches per repository; older ones are evicted, least recently used first (env CONVEYOR_CACHE_SIZE_LIMIT)")
	fs.StringVar(&f.s3.URL, "cache-s3-url", env("CONVEYOR_CACHE_S3_URL", ""), "keep caches in this S3-compatible store, http(s)://host[:port], instead of --cache-dir (env CONVEYOR_CACHE_S3_URL)")
	fs.StringVar(&f.s3.Bucket, "cache-s3-bucket", env("CONVEYOR_CACHE_S3_BUCKET", "conveyor-cache"), "S3 bucket of the caches, made when missing (env CONVEYOR_CACHE_S3_BUCKET)")
	fs.StringVar(&f.s3.Prefix, "cache-s3-prefix", env("CONVEYOR_CACHE_S3_PREFIX", ""), "object name prefix in the bucket (env CONVEYOR_CACHE_S3_PREFIX)")
	fs.StringVar(&f.s3.Region, "cache-s3-region", env("CONVEYOR_CACHE_S3_REGION", env("AWS_REGION", "")), "S3 region (env CONVEYOR_CACHE_S3_REGION, AWS_REGION)")
	fs.StringVar(&f.s3.AccessKey, "cache-s3-access-key", env("CONVEYOR_CACHE_S3_ACCESS_KEY", env("AWS_ACCESS_KEY_ID", "")), "S3 access key (env CONVEYOR_CACHE_S3_ACCESS_KEY, AWS_ACCESS_KEY_ID)")
	// The secret is read from the environment only: a flag would show in ps.
	f.s3.SecretKey = env("CONVEYOR_CACHE_S3_SECRET_KEY", env("AWS_SECRET_ACCESS_KEY", ""))
	pathStyle, _ := strconv.ParseBool(env("CONVEYOR_CACHE_S3_PATH_STYLE", "true"))
	fs.BoolVar(&f.s3.PathStyle, "cache-s3-path-style", pathStyle, "path-style S3 requests (most self-hosted stores need them; env CONVEYOR_CACHE_S3_PATH_STYLE)")
	return f
}

// defaultRunCacheDir is ~/.cache/conveyor/cache (XDG_CACHE_HOME honoured).
func defaultRunCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "conveyor-cache")
	}
	return filepath.Join(d, "conveyor", "cache")
}

// openBlobs opens the object store the flags name: S3 when
// --cache-s3-url is set, else the folder DIR/store.
func (f *cacheFlags) openBlobs(ctx context.Context) (cache.Blobs, error) {
	if f.s3.URL != "" {
		return cache.NewS3(ctx, f.s3)
	}
	return cache.NewDir(filepath.Join(f.dir, "store"))
}

// openStore opens the cache store the flags name.
func (f *cacheFlags) openStore(ctx context.Context) (*cache.Store, string, error) {
	limit, err := units.RAMInBytes(f.sizeLimit)
	if err != nil || limit <= 0 {
		return nil, "", fmt.Errorf("--cache-size-limit %q: want a size such as 500m or 10g", f.sizeLimit)
	}
	b, err := f.openBlobs(ctx)
	if err != nil {
		return nil, "", err
	}
	return cache.NewStore(b, limit), filepath.Join(f.dir, "staging"), nil
}

// startRunCache opens the store and serves GitHub's cache protocol for the
// run's jobs: on 127.0.0.1 for host jobs, and on the Docker bridge's
// address for container jobs (the engine being local). stop ends it.
func (f *cacheFlags) startRunCache(ctx context.Context, containers backend.Backend, stderr io.Writer) (c exec.Cache, stop func(), err error) {
	c, _, _, stop, err = f.startCache(ctx, containers, stderr, "")
	return c, stop, err
}

// startCache is startRunCache for a process that may serve the protocol
// itself: with hostURL set (the server's base URL, where it mounts svc),
// only the Docker bridge's listener is started here.
func (f *cacheFlags) startCache(ctx context.Context, containers backend.Backend, stderr io.Writer, hostURL string) (c exec.Cache, svc http.Handler, tokens *cache.Tokens, stop func(), err error) {
	store, staging, err := f.openStore(ctx)
	if err != nil {
		return exec.Cache{}, nil, nil, nil, err
	}
	tokens = cache.NewTokens()
	service, err := cache.NewService(store, tokens, staging)
	if err != nil {
		return exec.Cache{}, nil, nil, nil, err
	}
	var servers []*http.Server
	stop = func() {
		for _, s := range servers {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = s.Shutdown(sctx)
			cancel()
		}
		_ = service.Close()
	}
	serve := func(addr string) (string, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return "", err
		}
		s := &http.Server{Handler: service, ReadHeaderTimeout: 30 * time.Second}
		servers = append(servers, s)
		go func() {
			if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fmt.Fprintln(stderr, "conveyor: cache service:", err)
			}
		}()
		return "http://" + ln.Addr().String(), nil
	}
	if hostURL == "" {
		if hostURL, err = serve("127.0.0.1:0"); err != nil {
			return exec.Cache{}, nil, nil, nil, fmt.Errorf("cache service: %w", err)
		}
	}
	containerURL := hostURL
	if d, ok := containers.(*docker.Backend); ok {
		if gw, err := d.HostAddress(ctx); err != nil {
			fmt.Fprintf(stderr, "conveyor: the cache service is not reachable from containers (%v): actions using @actions/cache in containers will miss\n", err)
		} else if u, err := serve(net.JoinHostPort(gw, "0")); err != nil {
			fmt.Fprintf(stderr, "conveyor: cache service on the Docker bridge (%s): %v\n", gw, err)
		} else {
			containerURL = u
		}
	}
	home, _ := os.UserHomeDir()
	return exec.Cache{Store: store, Runtime: cache.NewRuntime(tokens, hostURL, containerURL), Home: home}, service, tokens, stop, nil
}
