package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/conveyor-ci/conveyor/internal/backend/kubernetes"
	"github.com/conveyor-ci/conveyor/internal/ratelimit"
	"github.com/conveyor-ci/conveyor/internal/secrets"
	"github.com/conveyor-ci/conveyor/internal/server"
	"github.com/conveyor-ci/conveyor/internal/store"
	sqlstore "github.com/conveyor-ci/conveyor/internal/store/sql"
)

// serverMain is `conveyor server`: the master, on embedded defaults.
func serverMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	start := time.Now()
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		listen, data, database, baseURL, backendName, configFile, logLevel, replica, dockerEngine string
		maxArtifact, tlsCert, tlsKey, keyFile, hookMemory, hookSpool, objects, trustedProxies     string
		workers, repoLimit                                                                        int
		allowFileURLs                                                                             bool
		leaseTTL, poll, catchUp, sweepEvery                                                       time.Duration
		platforms                                                                                 listFlag
		tools                                                                                     toolFlags
	)
	fs.StringVar(&configFile, "config", "", "YAML config file (keys are flag names); flags > CONVEYOR_* env > file")
	fs.StringVar(&listen, "listen", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&data, "data", "conveyor-data", "data directory (SQLite database, git cache, job dirs)")
	fs.StringVar(&database, "database", "", "database: postgres://... (default: SQLite in the data directory)")
	fs.StringVar(&keyFile, "secret-key-file", "", "key sealing stored credentials, made 0600 on first start (default DATA/"+secrets.KeyFileName+"); "+envSecretKey+" instead holds it")
	fs.StringVar(&baseURL, "base-url", "", "URL the server is reached at (default http://LISTEN)")
	fs.StringVar(&backendName, "backend", "auto", "job sandboxes: auto, docker, host or kubernetes (a pod per job; see --kubeconfig)")
	var kube kubeFlags
	kube.register(fs)
	var poolsFile string
	fs.StringVar(&poolsFile, "pools", "", "YAML file of backend pools (kubernetes clusters, docker, host) that this replica's jobs spread over, with health probes, failover and burst; see docs/kubernetes.md (default: one pool, --backend)")
	var labelConfig string
	fs.StringVar(&labelConfig, "label-config", "", labelConfigHelp)
	fs.StringVar(&dockerEngine, "docker-engine", "auto", engineFlagHelp)
	fs.Var(&platforms, "P", "LABEL=IMAGE for a runs-on label; LABEL=-self-hosted runs on the host (repeatable)")
	fs.IntVar(&workers, "workers", runtime.NumCPU(), "jobs this replica runs at once (0: none, only agents run jobs)")
	fs.IntVar(&repoLimit, "repo-limit", 0, "running jobs per repository across replicas (0: no limit)")
	fs.DurationVar(&leaseTTL, "lease-ttl", 30*time.Second, "a job lease expires after this long without a heartbeat")
	fs.DurationVar(&poll, "poll", 500*time.Millisecond, "how often to look for work made by other replicas")
	fs.DurationVar(&catchUp, "cron-catch-up", time.Hour, "after downtime, fire the latest missed schedule if this recent")
	fs.DurationVar(&sweepEvery, "sweep-every", 10*time.Minute, "how often to delete history past retention (see conveyor retention; negative: never)")
	fs.StringVar(&replica, "replica", "", "name of this replica in leases (default host-pid-random)")
	fs.BoolVar(&allowFileURLs, "allow-file-urls", false, "allow file:// repository URLs (single-user set-ups; lets repos read the server's disk)")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&tlsCert, "tls-cert", "", "serve HTTPS with this PEM certificate (chain) file; needs --tls-key")
	fs.StringVar(&tlsKey, "tls-key", "", "the PEM private key of --tls-cert")
	fs.StringVar(&maxArtifact, "max-artifact-size", "256m", "largest artifact stored (compressed), e.g. 64m, 1g; bigger uploads get 413")
	fs.StringVar(&hookMemory, "hook-memory", "16m", "memory for webhook bodies not yet verified, all requests together; beyond it they are spooled to the data directory")
	fs.StringVar(&objects, "objects", "auto", "where logs and artifacts live: cache (the caches' object store, --cache-dir or --cache-s3-url; the database keeps an index), database, or auto (cache, except PostgreSQL with a local --cache-dir, which other replicas cannot read)")
	fs.StringVar(&hookSpool, "hook-spool", "1g", "disk for spooled webhook bodies not yet verified; beyond it webhooks get 503 (the forge retries)")
	fs.StringVar(&trustedProxies, "trusted-proxy", "", "reverse proxies (addresses or CIDR prefixes, comma-separated) whose X-Forwarded-For names the client; login and webhook limits then key on that client")
	var actionSrc actionFlags
	actionSrc.register(fs, false)
	tools.register(fs)
	cacheF := addCacheFlags(fs, "") // "": DATA/cache
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: conveyor server [flags]\n\nRuns the Conveyor server: webhooks, API, scheduler. Every flag can be set as\nCONVEYOR_<FLAG> (dashes as underscores) or in the --config file.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := applyEnvAndFile(fs, configFile); err != nil {
		fmt.Fprintln(stderr, "conveyor server:", err)
		return 2
	}
	maxArtifactSize, err := parseBytes(maxArtifact)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server: --max-artifact-size:", err)
		return 2
	}
	proxies, err := ratelimit.ParseProxies(trustedProxies)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server: --trusted-proxy:", err)
		return 2
	}
	var hooks server.HookLimits
	for _, b := range []struct {
		flag, val string
		to        *int64
	}{{"hook-memory", hookMemory, &hooks.Memory}, {"hook-spool", hookSpool, &hooks.Spool}} {
		if *b.to, err = parseBytes(b.val); err != nil {
			fmt.Fprintf(stderr, "conveyor server: --%s: %v\n", b.flag, err)
			return 2
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		fmt.Fprintf(stderr, "conveyor server: --log-level %q: %v\n", logLevel, err)
		return 2
	}
	labelProfiles, err := loadLabelConfig(labelConfig)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server: --label-config:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	// Absolute at once: jobs run in other working directories (the host
	// backend's steps find their scripts, git and bash by these paths).
	if data, err = filepath.Abs(data); err != nil {
		fmt.Fprintln(stderr, "conveyor server: --data:", err)
		return 1
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		fmt.Fprintln(stderr, "conveyor server:", err)
		return 1
	}
	if database == "" {
		database = filepath.Join(data, "conveyor.db")
	}
	// Replicas sharing a PostgreSQL database must seal with one key: a key
	// file made per replica would split the credentials between them.
	shared := strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://")
	if shared && os.Getenv(envSecretKey) == "" && keyFile == "" {
		fmt.Fprintf(stderr, "conveyor server: secret key: with PostgreSQL every replica must seal credentials with the same key: set %s on every replica (make one with `conveyor admin new-key`), or --secret-key-file naming a key file they share\n", envSecretKey)
		return 2
	}
	// A key file named on purpose (shared storage) is made when missing.
	keys, keyFrom, err := keySourceOf(data, keyFile).keyring(!shared || keyFile != "")
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server: secret key:", err)
		return 1
	}
	log.Info("secret key", "id", keys.Current(), "from", keyFrom)
	if cacheF.dir == "" {
		cacheF.dir = filepath.Join(data, "cache")
	}
	objs, err := openObjects(ctx, objects, shared, cacheF)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server: --objects:", err)
		return 2
	}
	st, err := sqlstore.Open(ctx, database, sqlstore.Options{Keys: keys, Objects: objs})
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server: database:", err)
		return 1
	}
	defer st.Close()
	bk, err := openJobBackends(ctx, backendName, dockerEngine, &kube, stderr, outOfProcessRunner(), tools.options(filepath.Join(data, "toolcache")))
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server:", err)
		return 1
	}
	defer bk.close()
	if kb, ok := bk.main.(*kubernetes.Backend); ok {
		stopSweep := sweepJobPods(ctx, kb, st, time.Minute, log)
		defer stopSweep()
	}
	plats, err := serverPlatforms(bk.main.Name(), platforms)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server:", err)
		return 2
	}
	pools, closePools, err := openServerPools(ctx, fs, poolsFile, &workers, poolDeps{engine: dockerEngine, runner: outOfProcessRunner(),
		tools: tools.options(filepath.Join(data, "toolcache")), platforms: plats, store: st, stderr: stderr, log: log})
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server: --pools:", err)
		return 2
	}
	defer closePools()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server:", err)
		return 1
	}
	addr := ln.Addr().String()
	raw := ln
	if ln, err = serverTLS(raw, tlsCert, tlsKey); err != nil {
		raw.Close()
		fmt.Fprintln(stderr, "conveyor server:", err)
		return 2
	}
	if baseURL == "" {
		baseURL = "http://" + addr
		if tlsCert != "" {
			baseURL = "https://" + addr
		}
	}
	jobCache, cacheSvc, cacheTokens, stopCache, err := cacheF.startCache(ctx, bk.containers, stderr, baseURL)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server:", err)
		return 1
	}
	defer stopCache()
	if workers <= 0 {
		workers = -1 // server.Config: negative is none (0 would mean one per CPU)
	}
	acts, err := actionSrc.open(filepath.Join(data, "actions"))
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server: action cache:", err)
		return 2
	}
	srv, err := server.New(server.Config{
		Listen: addr, BaseURL: baseURL, DataDir: data, Workers: workers, RepoLimit: repoLimit,
		LeaseTTL: leaseTTL, Poll: poll, CronCatchUp: catchUp, Sweep: server.Sweep{Every: sweepEvery}, Platforms: plats, Profiles: labelProfiles, Replica: replica, Version: version,
		AllowFileURLs: allowFileURLs, MaxArtifactSize: maxArtifactSize, Hooks: hooks,
		TrustedProxies: proxies,
	}, server.Deps{Store: st, Backends: server.Backends{Main: bk.main, Host: bk.host, Containers: bk.containers}, Pools: pools, Log: log, Actions: acts,
		Cache: jobCache, CacheService: cacheSvc, CacheTokens: cacheTokens})
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server:", err)
		return 1
	}
	tok, err := srv.Bootstrap(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server: first start:", err)
		return 1
	}
	jobsOn := bk.main.Name()
	if pools != nil {
		jobsOn = "backend pools " + pools.Names()
	}
	fmt.Fprintf(stdout, "conveyor server listening on %s (database %s, jobs on %s, ready in %s)\n",
		baseURL, st.Dialect(), jobsOn, time.Since(start).Round(time.Millisecond))
	if tok != "" {
		fmt.Fprintf(stdout, "admin token (shown once, stored hashed): %s\n  export CONVEYOR_SERVER=%s CONVEYOR_TOKEN=%s\n", tok, baseURL, tok)
	}
	if err := srv.Run(ctx, ln); err != nil {
		fmt.Fprintln(stderr, "conveyor server:", err)
		return 1
	}
	return 0
}

// serverPlatforms is the runs-on mapping: the same defaults as conveyor
// run, all to the host when jobs run on the host, then -P entries.
func serverPlatforms(backend string, given []string) (map[string]string, error) {
	m := map[string]string{}
	for k, v := range defaultPlatforms {
		m[k] = v
	}
	if backend == "host" {
		m = hostPlatforms(m)
	}
	for _, p := range given {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("-P %q: want LABEL=IMAGE", p)
		}
		m[strings.ToLower(k)] = v
	}
	return m, nil
}

// applyEnvAndFile fills flags not given on the command line from
// CONVEYOR_<NAME> and then from the config file.
func applyEnvAndFile(fs *flag.FlagSet, file string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["config"] {
		if v, ok := os.LookupEnv("CONVEYOR_CONFIG"); ok {
			file = v
		}
	}
	fileVals := map[string]any{}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		if err := yaml.Unmarshal(b, &fileVals); err != nil {
			return fmt.Errorf("%s: %v", file, err)
		}
		for k := range fileVals {
			if fs.Lookup(k) == nil || k == "config" {
				return fmt.Errorf("%s: unknown setting %q", file, k)
			}
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil || f.Name == "config" {
			return
		}
		env := "CONVEYOR_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %v", env, v, e)
			}
			return
		}
		if v, ok := fileVals[f.Name]; ok {
			vals := []any{v}
			if l, isList := v.([]any); isList {
				vals = l
			}
			for _, x := range vals {
				if e := fs.Set(f.Name, fmt.Sprint(x)); e != nil {
					err = fmt.Errorf("%s: %s: %v", file, f.Name, e)
				}
			}
		}
	})
	return err
}

// openObjects opens where logs and artifacts live (nil: the database),
// by --objects; shared says the database is PostgreSQL.
func openObjects(ctx context.Context, mode string, shared bool, cacheF *cacheFlags) (store.Objects, error) {
	switch mode {
	case "database":
		return nil, nil
	case "auto":
		if shared && cacheF.s3.URL == "" {
			return nil, nil // a folder per replica: the others could not read it
		}
	case "cache":
	default:
		return nil, fmt.Errorf("%q: want auto, cache or database", mode)
	}
	return cacheF.openBlobs(ctx)
}
