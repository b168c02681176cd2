package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/profiles"
	"github.com/conveyor-ci/conveyor/internal/ratelimit"
	"github.com/conveyor-ci/conveyor/internal/secrets"
	"github.com/conveyor-ci/conveyor/internal/server"
	sqlstore "github.com/conveyor-ci/conveyor/internal/store/sql"
)

// serverOpts are conveyor server's flags, as given.
type serverOpts struct {
	backendName, configFile, logLevel, dockerEngine string
	allowFileURLs                                   bool
	http                                            httpFlags
	storage                                         storageFlags
	hooks                                           hookFlags
	sched                                           schedFlags
	place                                           placeFlags
	platforms                                       listFlag
	tools                                           toolFlags
	kube                                            kubeFlags
	actions                                         actionFlags
	cache                                           *cacheFlags
}

// httpFlags say where and how the server listens.
type httpFlags struct {
	listen, baseURL, tlsCert, tlsKey, trustedProxies, pprofListen string
}

// storageFlags say where the server keeps its data.
type storageFlags struct {
	data, database, keyFile, objects, maxArtifact string
}

// hookFlags bound the webhook bodies not yet verified.
type hookFlags struct {
	hookMemory, hookSpool string
}

// schedFlags say how many jobs this replica runs and how it shares them.
type schedFlags struct {
	workers, repoLimit                  int
	leaseTTL, poll, catchUp, sweepEvery time.Duration
	replica                             string
}

// placeFlags say where jobs run: pools, label profiles, the kubernetes
// layout.
type placeFlags struct {
	poolsFile, labelConfig, kubeWorker, kubeServerURL string
}

func (o *serverOpts) register(fs *flag.FlagSet) {
	fs.StringVar(&o.configFile, "config", "", "YAML config file (keys are flag names); flags > CONVEYOR_* env > file")
	fs.StringVar(&o.http.listen, "listen", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&o.storage.data, "data", "conveyor-data", "data directory (SQLite database, git cache, job dirs)")
	fs.StringVar(&o.storage.database, "database", "", "database: postgres://... (default: SQLite in the data directory)")
	fs.StringVar(&o.storage.keyFile, "secret-key-file", "", "key sealing stored credentials, made 0600 on first start (default DATA/"+secrets.KeyFileName+"); "+envSecretKey+" instead holds it")
	fs.StringVar(&o.http.baseURL, "base-url", "", "URL the server is reached at (default http://LISTEN)")
	fs.StringVar(&o.backendName, "backend", "auto", "job sandboxes: auto, docker, host or kubernetes (a pod per job; see --kubeconfig)")
	o.kube.register(fs)
	fs.StringVar(&o.place.kubeWorker, "kube-worker", "attach", "kubernetes backend and pools: attach (this server drives each step over one attach stream) or pod (the job's pod runs its steps itself and reports to --kube-server-url; jobs it cannot run stay on attach); see docs/kubernetes.md")
	fs.StringVar(&o.place.kubeServerURL, "kube-server-url", "", "for the worker layout (--kube-worker pod, or pools with worker: pod): the URL job pods reach this server at, e.g. http://10.0.0.5:8080 (pods often cannot use --base-url)")
	fs.StringVar(&o.place.poolsFile, "pools", "", "YAML file of backend pools (kubernetes clusters, docker, host) that this replica's jobs spread over, with health probes, failover and burst; see docs/kubernetes.md (default: one pool, --backend)")
	fs.StringVar(&o.place.labelConfig, "label-config", "", labelConfigHelp)
	fs.StringVar(&o.dockerEngine, "docker-engine", "auto", engineFlagHelp)
	fs.Var(&o.platforms, "P", "LABEL=IMAGE for a runs-on label; LABEL=-self-hosted runs on the host (repeatable)")
	fs.IntVar(&o.sched.workers, "workers", runtime.NumCPU(), "jobs this replica runs at once (0: none, only agents run jobs)")
	fs.IntVar(&o.sched.repoLimit, "repo-limit", 0, "running jobs per repository across replicas (0: no limit)")
	fs.DurationVar(&o.sched.leaseTTL, "lease-ttl", 30*time.Second, "a job lease expires after this long without a heartbeat")
	fs.DurationVar(&o.sched.poll, "poll", 500*time.Millisecond, "how often to look for work made by other replicas")
	fs.DurationVar(&o.sched.catchUp, "cron-catch-up", time.Hour, "after downtime, fire the latest missed schedule if this recent")
	fs.DurationVar(&o.sched.sweepEvery, "sweep-every", 10*time.Minute, "how often to delete history past retention (see conveyor retention; negative: never)")
	fs.StringVar(&o.sched.replica, "replica", "", "name of this replica in leases (default host-pid-random)")
	fs.BoolVar(&o.allowFileURLs, "allow-file-urls", false, "allow file:// repository URLs (single-user set-ups; lets repos read the server's disk)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.http.tlsCert, "tls-cert", "", "serve HTTPS with this PEM certificate (chain) file; needs --tls-key")
	fs.StringVar(&o.http.tlsKey, "tls-key", "", "the PEM private key of --tls-cert")
	fs.StringVar(&o.storage.maxArtifact, "max-artifact-size", "256m", "largest artifact stored (compressed), e.g. 64m, 1g; bigger uploads get 413")
	fs.StringVar(&o.hooks.hookMemory, "hook-memory", "16m", "memory for webhook bodies not yet verified, all requests together; beyond it they are spooled to the data directory")
	fs.StringVar(&o.storage.objects, "objects", "auto", "where logs and artifacts live: cache (the caches' object store, --cache-dir or --cache-s3-url; the database keeps an index), database, or auto (cache, except PostgreSQL with a local --cache-dir, which other replicas cannot read)")
	fs.StringVar(&o.hooks.hookSpool, "hook-spool", "1g", "disk for spooled webhook bodies not yet verified; beyond it webhooks get 503 (the forge retries)")
	fs.StringVar(&o.http.pprofListen, "pprof-listen", "", "serve Go's CPU, heap and goroutine profiles (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; off by default (they expose internals: keep it on loopback)")
	fs.StringVar(&o.http.trustedProxies, "trusted-proxy", "", "reverse proxies (addresses or CIDR prefixes, comma-separated) whose X-Forwarded-For names the client; login and webhook limits then key on that client")
	o.actions.register(fs, false)
	o.tools.register(fs)
	o.cache = addCacheFlags(fs, "") // "": DATA/cache
}

// serverLimits are the flags that needed parsing.
type serverLimits struct {
	maxArtifact int64
	proxies     ratelimit.Proxies
	hooks       server.HookLimits
	level       slog.Level
	profiles    *profiles.Config
	podWorkers  server.PodWorkers
}

// limits parses the flags given as text; errors name the flag.
func (o *serverOpts) limits() (serverLimits, error) {
	var l serverLimits
	var err error
	if l.maxArtifact, err = parseBytes(o.storage.maxArtifact); err != nil {
		return l, fmt.Errorf("--max-artifact-size: %w", err)
	}
	if l.proxies, err = ratelimit.ParseProxies(o.http.trustedProxies); err != nil {
		return l, fmt.Errorf("--trusted-proxy: %w", err)
	}
	for _, b := range []struct {
		flag, val string
		to        *int64
	}{{"hook-memory", o.hooks.hookMemory, &l.hooks.Memory}, {"hook-spool", o.hooks.hookSpool, &l.hooks.Spool}} {
		if *b.to, err = parseBytes(b.val); err != nil {
			return l, fmt.Errorf("--%s: %w", b.flag, err)
		}
	}
	if err := l.level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return l, fmt.Errorf("--log-level %q: %w", o.logLevel, err)
	}
	if l.profiles, err = loadLabelConfig(o.place.labelConfig); err != nil {
		return l, fmt.Errorf("--label-config: %w", err)
	}
	if l.podWorkers, err = podWorkers(o.place.kubeWorker, o.place.kubeServerURL); err != nil {
		return l, err
	}
	return l, nil
}

// podWorkers is the kubernetes layout of --kube-worker and --kube-server-url.
func podWorkers(layout, serverURL string) (server.PodWorkers, error) {
	switch layout {
	case "", "attach":
		if serverURL == "" {
			return server.PodWorkers{}, nil
		}
		// For the pools that say worker: pod.
		pw, err := podWorkers("pod", serverURL)
		pw.PoolsOnly = true
		return pw, err
	case "pod":
	default:
		return server.PodWorkers{}, fmt.Errorf("--kube-worker %q: want attach or pod", layout)
	}
	u, err := url.Parse(serverURL)
	if serverURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return server.PodWorkers{}, fmt.Errorf("--kube-worker pod needs --kube-server-url, the http(s) URL job pods reach this server at (got %q)", serverURL)
	}
	return server.PodWorkers{ServerURL: serverURL}, nil
}

// openStore makes the data folder absolute and opens the database with
// its key and object store; nil and the exit code when it cannot.
func (o *serverOpts) openStore(ctx context.Context, stderr io.Writer, log *slog.Logger) (*sqlstore.DB, int) {
	var err error
	// Absolute at once: jobs run in other working directories (the host
	// backend's steps find their scripts, git and bash by these paths).
	if o.storage.data, err = filepath.Abs(o.storage.data); err != nil {
		fmt.Fprintln(stderr, "conveyor server: --data:", err)
		return nil, 1
	}
	if err := os.MkdirAll(o.storage.data, 0o700); err != nil {
		fmt.Fprintln(stderr, "conveyor server:", err)
		return nil, 1
	}
	if o.storage.database == "" {
		o.storage.database = filepath.Join(o.storage.data, "conveyor.db")
	}
	// Replicas sharing a PostgreSQL database must seal with one key: a key
	// file made per replica would split the credentials between them.
	shared := strings.HasPrefix(o.storage.database, "postgres://") || strings.HasPrefix(o.storage.database, "postgresql://")
	if shared && os.Getenv(envSecretKey) == "" && o.storage.keyFile == "" {
		fmt.Fprintf(stderr, "conveyor server: secret key: with PostgreSQL every replica must seal credentials with the same key: set %s on every replica (make one with `conveyor admin new-key`), or --secret-key-file naming a key file they share\n", envSecretKey)
		return nil, 2
	}
	// A key file named on purpose (shared storage) is made when missing.
	keys, keyFrom, err := keySourceOf(o.storage.data, o.storage.keyFile).keyring(!shared || o.storage.keyFile != "")
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server: secret key:", err)
		return nil, 1
	}
	log.Info("secret key", "id", keys.Current(), "from", keyFrom)
	if o.cache.dir == "" {
		o.cache.dir = filepath.Join(o.storage.data, "cache")
	}
	objs, err := openObjects(ctx, o.storage.objects, shared, o.cache)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server: --objects:", err)
		return nil, 2
	}
	st, err := sqlstore.Open(ctx, o.storage.database, sqlstore.Options{Keys: keys, Objects: objs})
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server: database:", err)
		return nil, 1
	}
	return st, 0
}

// listener listens (with TLS when asked) and fills in the base URL; nil
// and the exit code when it cannot.
func (o *serverOpts) listener(stderr io.Writer) (net.Listener, string, int) {
	ln, err := net.Listen("tcp", o.http.listen)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server:", err)
		return nil, "", 1
	}
	addr := ln.Addr().String()
	raw := ln
	if ln, err = serverTLS(raw, o.http.tlsCert, o.http.tlsKey); err != nil {
		raw.Close()
		fmt.Fprintln(stderr, "conveyor server:", err)
		return nil, "", 2
	}
	if o.http.baseURL == "" {
		o.http.baseURL = "http://" + addr
		if o.http.tlsCert != "" {
			o.http.baseURL = "https://" + addr
		}
	}
	return ln, addr, 0
}

// config is the server's configuration from the flags.
func (o *serverOpts) config(addr string, plats map[string]string, l serverLimits) server.Config {
	workers := o.sched.workers
	if workers <= 0 {
		workers = -1 // server.Config: negative is none (0 would mean one per CPU)
	}
	return server.Config{
		Listen: addr, BaseURL: o.http.baseURL, DataDir: o.storage.data, Workers: workers, RepoLimit: o.sched.repoLimit,
		LeaseTTL: o.sched.leaseTTL, Poll: o.sched.poll, CronCatchUp: o.sched.catchUp, Sweep: server.Sweep{Every: o.sched.sweepEvery},
		Platforms: plats, Profiles: l.profiles, Replica: o.sched.replica, Version: version,
		AllowFileURLs: o.allowFileURLs, MaxArtifactSize: l.maxArtifact, Hooks: l.hooks, TrustedProxies: l.proxies,
		PodWorkers: l.podWorkers,
	}
}
