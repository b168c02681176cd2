package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/conveyor-ci/conveyor/internal/backend/kubernetes"
	"github.com/conveyor-ci/conveyor/internal/server"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// serverMain is `conveyor server`: the master, on embedded defaults.
func serverMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	start := time.Now()
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	o, lim, code := parseServerFlags(fs, args, stderr)
	if o == nil {
		return code
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lim.level}))
	stopPprof, err := startPprof(o.http.pprofListen, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server:", err)
		return 2
	}
	defer stopPprof()
	st, code := o.openStore(ctx, stderr, log)
	if st == nil {
		return code
	}
	defer st.Close()
	bk, err := openJobBackends(ctx, o.backendName, o.dockerEngine, &o.kube, stderr, outOfProcessRunner(), o.tools.options(filepath.Join(o.storage.data, "toolcache")))
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server:", err)
		return 1
	}
	defer bk.close()
	if kb, ok := bk.main.(*kubernetes.Backend); ok {
		stopSweep := sweepJobPods(ctx, kb, st, time.Minute, log)
		defer stopSweep()
	}
	plats, err := serverPlatforms(bk.main.Name(), o.platforms)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server:", err)
		return 2
	}
	pools, closePools, err := openServerPools(ctx, fs, o.place.poolsFile, &o.sched.workers, poolDeps{engine: o.dockerEngine, runner: outOfProcessRunner(),
		tools: o.tools.options(filepath.Join(o.storage.data, "toolcache")), platforms: plats, store: st, stderr: stderr, log: log})
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server: --pools:", err)
		return 2
	}
	defer closePools()
	ln, addr, code := o.listener(stderr)
	if ln == nil {
		return code
	}
	jobCache, cacheSvc, cacheTokens, stopCache, err := o.cache.startCache(ctx, bk.containers, stderr, o.http.baseURL)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server:", err)
		return 1
	}
	defer stopCache()
	acts, err := o.actions.open(filepath.Join(o.storage.data, "actions"))
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server: action cache:", err)
		return 2
	}
	srv, err := server.New(o.config(addr, plats, lim), server.Deps{Store: st, Backends: server.Backends{Main: bk.main, Host: bk.host, Containers: bk.containers},
		Pools: pools, Log: log, Actions: acts, Cache: jobCache, CacheService: cacheSvc, CacheTokens: cacheTokens})
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
	announce(stdout, o.http.baseURL, st.Dialect(), jobsOn, time.Since(start), tok)
	if err := srv.Run(ctx, ln); err != nil {
		fmt.Fprintln(stderr, "conveyor server:", err)
		return 1
	}
	return 0
}

// parseServerFlags parses conveyor server's flags into fs, then the
// environment and the --config file; nil and the exit code when they are
// wrong (said on stderr).
func parseServerFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (*serverOpts, serverLimits, int) {
	fs.SetOutput(stderr)
	o := &serverOpts{}
	o.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: conveyor server [flags]\n\nRuns the Conveyor server: webhooks, API, scheduler. Every flag can be set as\nCONVEYOR_<FLAG> (dashes as underscores) or in the --config file.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, serverLimits{}, 2
	}
	if err := applyEnvAndFile(fs, o.configFile); err != nil {
		fmt.Fprintln(stderr, "conveyor server:", err)
		return nil, serverLimits{}, 2
	}
	lim, err := o.limits()
	if err != nil {
		fmt.Fprintln(stderr, "conveyor server:", err)
		return nil, serverLimits{}, 2
	}
	return o, lim, 0
}

// announce says where the server listens, and the first start's admin
// token (tok, "" after the first start).
func announce(stdout io.Writer, url, dialect, jobsOn string, ready time.Duration, tok string) {
	fmt.Fprintf(stdout, "conveyor server listening on %s (database %s, jobs on %s, ready in %s)\n",
		url, dialect, jobsOn, ready.Round(time.Millisecond))
	if tok != "" {
		fmt.Fprintf(stdout, "admin token (shown once, stored hashed): %s\n  export CONVEYOR_SERVER=%s CONVEYOR_TOKEN=%s\n", tok, url, tok)
	}
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
