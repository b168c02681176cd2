package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/cache"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/exec"
	"github.com/conveyor-ci/conveyor/internal/gitmirror"
	"github.com/conveyor-ci/conveyor/internal/logs"
	"github.com/conveyor-ci/conveyor/internal/pool"
	"github.com/conveyor-ci/conveyor/internal/store"
	sqlstore "github.com/conveyor-ci/conveyor/internal/store/sql"
	"github.com/conveyor-ci/conveyor/internal/trigger"
	"github.com/conveyor-ci/conveyor/internal/web"
)

// Server is one replica of the master.
type Server struct {
	cfg      Config
	store    store.Store
	backends Backends
	pools    *pool.Scheduler // nil: jobs run on backends
	log      *slog.Logger
	hub      *logs.Hub // live log followers
	cancels  *logs.Hub // running jobs of a run cancelled on this replica
	metrics  *metrics
	http     *http.Client // for commit statuses
	jobsDir  string
	handler  http.Handler
	src      sources
	kit      jobKit
	hooks    hookIntake
	wake     wakes
	crons    *cronState
	jobs     sync.WaitGroup
}

// sources are where runs and jobs come from, kept between events.
type sources struct {
	git     *gitmirror.Cache
	filters *trigger.Cache // compiled CEL filters
	// workflows are parsed and linted workflow files, for event storms.
	workflows *workflowCache
	trees     *srcCache // checked-out trees of commits, shared by their jobs
}

// jobKit is what the server gives its jobs besides their sandbox.
type jobKit struct {
	actions exec.ActionResolver
	cache   exec.Cache // for local jobs' actions/cache and @actions/cache
	// cacheTokens issues agents' jobs their cache tokens (nil: none).
	cacheTokens *cache.Tokens
}

// hookIntake is what the webhook path keeps between requests.
type hookIntake struct {
	intake *sqlstore.AcceptBatcher // the group commit of accepted deliveries
	// repos spares the webhook path a repository query per request.
	repos  *hookRepos
	bodies *hookBodies  // webhook bodies read before they are verified
	bad    hookLimiters // webhooks refused for their signature, per address
}

// wakes wake the server's loops: events to process, jobs to dispatch,
// statuses to send, schedules to recompute (scheduleDirty says a
// repository's schedules changed). work wakes agents' lease requests
// (key 0) whenever dispatch is woken; closing is closed when the server
// starts to stop, ready once it serves.
type wakes struct {
	event, dispatch, status, schedule chan struct{}
	scheduleDirty                     atomic.Bool
	work                              *logs.Hub
	closing, ready                    chan struct{}
}

// New builds a server over an open store. Run starts it.
func New(cfg Config, d Deps) (*Server, error) {
	cfg.defaults()
	if err := checkPodWorkers(cfg.PodWorkers, d.Pools); err != nil {
		return nil, err
	}
	if cfg.Replica == "" {
		host, _ := os.Hostname()
		cfg.Replica = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomHex(3))
	}
	if d.Log == nil {
		d.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	s := &Server{
		cfg: cfg, store: d.Store, backends: d.Backends, pools: d.Pools, log: d.Log, kit: jobKit{actions: d.Actions},
		src: sources{git: gitmirror.New(filepath.Join(cfg.DataDir, "git"), gitmirror.Options{AllowFileURLs: cfg.AllowFileURLs}),
			filters: trigger.NewCache(1024), workflows: newWorkflowCache(256)},
		hub:     logs.NewHub(),
		http:    &http.Client{Timeout: 30 * time.Second},
		cancels: logs.NewHub(),
		jobsDir: filepath.Join(cfg.DataDir, "jobs"),
		wake: wakes{event: make(chan struct{}, 1), dispatch: make(chan struct{}, 1), status: make(chan struct{}, 1),
			schedule: make(chan struct{}, 1), work: logs.NewHub(), closing: make(chan struct{}), ready: make(chan struct{})},
		crons: newCronState(),
		hooks: hookIntake{repos: newHookRepos(hookRepoTTL, 4096)},
	}
	agents := &agentService{s: s}
	// Job folders left by a previous process of this data directory (killed
	// mid-job) belong to attempts whose leases expire and re-run elsewhere.
	if err := os.RemoveAll(s.jobsDir); err != nil {
		d.Log.Warn("removing job folders left by a previous run", "dir", s.jobsDir, "err", err)
	}
	if err := os.MkdirAll(s.jobsDir, 0o700); err != nil {
		return nil, errs.Wrap("server", errs.Unavailable, err)
	}
	spool := filepath.Join(cfg.DataDir, "spool")
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return nil, errs.Wrap("server", errs.Unavailable, err)
	}
	s.hooks.bodies = newHookBodies(cfg.Hooks, spool)
	s.hooks.bad = newHookLimiters(cfg.Limits)
	// Trees of recent commits are kept a minute: the jobs of a run follow each other.
	s.src.trees = newSrcCache(filepath.Join(s.jobsDir, "commits"), time.Minute, 16)
	s.hooks.intake = sqlstore.NewAcceptBatcher(d.Store, 256, time.Millisecond)
	s.metrics = newMetrics(d.Store)
	if d.Pools != nil {
		s.metrics.reg.MustRegister(newPoolStates(d.Pools))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hooks/{repo}", s.hook)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metrics.handler())
	apiHandler := api.New(api.Deps{
		Store: d.Store, Accounts: d.Store, Secrets: d.Store, JobTokens: d.Store, Quotas: d.Store, Actions: s, Notifier: s.hub, BaseURL: cfg.BaseURL, Version: cfg.Version, Log: d.Log,
		Agents: agents, AgentAdmin: agents, Artifacts: d.Store, MaxArtifactSize: cfg.MaxArtifactSize, Retention: d.Store,
		Environments: d.Store, Approvals: approvals{s}, Logins: cfg.Limits.Logins, Failures: d.Store,
	})
	mux.Handle("/api/", apiHandler)
	// The browser UI: every other path (its pages call the API in-process).
	ui, err := web.New(web.Deps{API: apiHandler, BaseURL: cfg.BaseURL, Version: cfg.Version, Log: d.Log})
	if err != nil {
		return nil, errs.Wrap("server", errs.Other, err)
	}
	mux.Handle("/", ui)
	if d.CacheService != nil {
		for _, p := range []string{"/_apis/artifactcache/", "/twirp/github.actions.results.api.v1.CacheService/", "/_conveyor/cache/"} {
			mux.Handle(p, d.CacheService)
		}
	}
	s.kit.cache = d.Cache
	s.kit.cacheTokens = d.CacheTokens
	// Behind trusted proxies, every handler (the UI's in-process API calls
	// too) sees the client's address as RemoteAddr.
	s.handler = cfg.TrustedProxies.RealAddr(mux)
	return s, nil
}

// Handler is the HTTP handler (for tests that serve it themselves).
func (s *Server) Handler() http.Handler { return s.handler }

// Bootstrap creates the first user, "admin" (server admin and admin of the
// default organisation), with an admin-scoped API token, when no user
// exists, and returns the token ("" when users exist). Only its hash is
// kept. Databases from before users existed got their "admin" user from
// the schema upgrade (see sqlstore's adoptTokens), so no token is printed
// again there.
func (s *Server) Bootstrap(ctx context.Context) (string, error) {
	org, err := s.store.EnsureOrg(ctx, "default")
	if err != nil {
		return "", err
	}
	tok := "cvy_" + randomHex(24)
	sum := sha256.Sum256([]byte(tok))
	made, err := s.store.CreateFirstAdmin(ctx, &store.User{Name: "admin"}, org.ID,
		&store.Token{Name: "admin", Role: store.RoleAdmin, Hash: sum[:]})
	if err != nil || !made {
		return "", err
	}
	return tok, nil
}

// Run serves on ln and runs the background loops until ctx ends, then
// shuts down: no new leases, HTTP drained, running jobs stopped (their
// leases expire and they are re-queued as interrupted attempts).
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	loopCtx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){s.processLoop, s.dispatchLoop, s.expireLoop, s.statusLoop, s.cronLoop, s.sweepLoop, s.moveLogsLoop, s.poolLoop} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(loopCtx)
		}()
	}
	close(s.wake.ready)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	close(s.wake.closing) // agents' long polls answer now, so that Shutdown does not wait for them
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	stopLoops()
	wg.Wait()
	s.jobs.Wait()
	s.hooks.intake.Close()
	s.src.git.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.wake.ready:
	default:
		writeError(w, api.Public(errs.E("readyz", errs.Unavailable, "starting")))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.store.Stats(ctx); err != nil {
		s.log.Warn("not ready: the database does not answer", "err", err)
		writeError(w, api.Public(errs.E("readyz", errs.Unavailable, "database unavailable; retry later")))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// expireLoop returns lost leases to the queue (or fails them). After the
// store was out of reach, leases that ran out meanwhile get one more TTL
// from its return: their holders, who could not heartbeat either, retry
// their heartbeats and completions in that time (package worker).
func (s *Server) expireLoop(ctx context.Context) {
	every := max(s.cfg.LeaseTTL/4, 100*time.Millisecond)
	var g outageGrace
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		now := time.Now()
		s.src.trees.sweep(now)
		s.openGates(ctx, now)
		exp, err := s.store.Expire(ctx, g.cutoff(now, s.cfg.LeaseTTL))
		g.saw(now, err)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("expiring leases", "err", err)
			}
			continue
		}
		for _, e := range exp {
			s.log.Warn("lease expired", "job", e.JobID, "run", e.RunID, "requeued", e.Requeue, "reason", e.Reason)
			s.hub.Notify(e.JobID)
		}
		if len(exp) > 0 {
			s.wakeDispatch()
			s.wakeStatuses()
		}
	}
}

// outageGrace tracks the store's outages as the expire loop sees them.
type outageGrace struct{ down, up time.Time }

// cutoff is when leases must have ended to be expired now: during an
// outage and for ttl after it, the time it began.
func (g *outageGrace) cutoff(now time.Time, ttl time.Duration) time.Time {
	if g.down.IsZero() {
		return now
	}
	if !g.up.IsZero() && now.Sub(g.up) >= ttl {
		*g = outageGrace{}
		return now
	}
	return g.down
}

// saw records the outcome of a call made at now.
func (g *outageGrace) saw(now time.Time, err error) {
	switch {
	case err != nil: // a new outage, or the last one goes on
		if g.down.IsZero() {
			g.down = now
		}
		g.up = time.Time{}
	case !g.down.IsZero() && g.up.IsZero():
		g.up = now
	}
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (s *Server) wakeEvents()   { wake(s.wake.event) }
func (s *Server) wakeDispatch() { wake(s.wake.dispatch); s.wake.work.Notify(0) }
func (s *Server) wakeStatuses() { wake(s.wake.status) }

func (s *Server) cancelWake(runID int64) <-chan struct{} { return s.cancels.Wait(runID) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) { api.WriteError(w, err) }
