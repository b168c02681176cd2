// Package server wires Conveyor's master into one process: webhook intake,
// the REST API, event processing (trigger matching, planning), the job
// dispatcher that runs each job in a fresh sandbox with the shared executor,
// cron, lease expiry, commit statuses, health and metrics.
package server

import (
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/cache"
	"github.com/conveyor-ci/conveyor/internal/exec"
	"github.com/conveyor-ci/conveyor/internal/pool"
	"github.com/conveyor-ci/conveyor/internal/profiles"
	"github.com/conveyor-ci/conveyor/internal/ratelimit"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// Config is the server's configuration (flags, CONVEYOR_* env or a config
// file, read in cmd/conveyor).
type Config struct {
	// Listen is the HTTP address; BaseURL the URL forges and users reach
	// it at (default http://Listen).
	Listen  string
	BaseURL string
	// DataDir holds the SQLite database (when no Database is given), the
	// git mirror cache and job directories.
	DataDir string
	// Workers is how many jobs this replica runs at once (0: one per CPU;
	// negative: none, only agents run jobs); RepoLimit caps running jobs
	// per repository across replicas and agents (0: no cap).
	Workers   int
	RepoLimit int
	// LeaseTTL is how long a job lease lives without a heartbeat, on this
	// replica's workers and on agents.
	LeaseTTL time.Duration
	// AgentPoll is how long an agent's lease request waits for work
	// before it is answered with nothing (default 20 s); an agent is
	// online when it was seen within AgentPoll + 10 s.
	AgentPoll time.Duration
	// Poll is how often the store is polled for work made elsewhere
	// (other replicas); local work wakes the loops at once.
	Poll time.Duration
	// CronCatchUp: after downtime, the latest missed schedule fires only
	// when it is this recent.
	CronCatchUp time.Duration
	// Platforms maps runs-on labels to images ("-self-hosted": host).
	Platforms map[string]string
	// Profiles are the sandbox profiles of runs-on labels for this
	// replica's workers (nil: none); agents read their own.
	Profiles *profiles.Config
	// PodWorkers, with a ServerURL, runs kubernetes jobs in the worker
	// layout (the pod runs its steps itself); see PodWorkers.
	PodWorkers PodWorkers
	// Replica names this process in leases (default host-pid-random).
	Replica string
	// StatusBackoff is the first wait before a failed commit status is
	// sent again; it doubles with every attempt.
	StatusBackoff time.Duration
	// AllowFileURLs lets repositories be file:// URLs (tests, single-user
	// set-ups); off by default so a tenant cannot read the server's disk.
	AllowFileURLs bool
	// MaxArtifactSize caps one artifact's stored (compressed) size in
	// bytes (default DefaultMaxArtifactSize); bigger uploads fail with 413.
	MaxArtifactSize int64
	// Hooks bound the memory and disk of webhook bodies not yet verified.
	Hooks HookLimits
	// Limits bound failed logins and webhooks with bad signatures per
	// client address; TrustedProxies are the reverse proxies whose
	// X-Forwarded-For names the client (none: the peer is the client).
	Limits         Limits
	TrustedProxies ratelimit.Proxies
	// Sweep tunes the retention sweeper.
	Sweep Sweep
	// Version is reported by the API.
	Version string
	// Now is the clock cron reads (default time.Now); tests drive it.
	Now func() time.Time
}

// DefaultMaxArtifactSize is the default cap of one artifact: artifacts
// may live in the database (in 1 MiB chunks), so they are kept modest.
const DefaultMaxArtifactSize = 256 << 20

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.BaseURL == "" {
		c.BaseURL = "http://" + c.Listen
	}
	if c.Workers == 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.AgentPoll <= 0 {
		c.AgentPoll = 20 * time.Second
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 30 * time.Second
	}
	if c.Poll <= 0 {
		c.Poll = 500 * time.Millisecond
	}
	if c.StatusBackoff <= 0 {
		c.StatusBackoff = time.Second
	}
	if c.MaxArtifactSize <= 0 {
		c.MaxArtifactSize = DefaultMaxArtifactSize
	}
	if c.CronCatchUp <= 0 {
		c.CronCatchUp = time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Sweep.defaults()
	c.Limits.defaults()
}

// Limits bound what one client address may try without succeeding.
type Limits struct {
	// Logins bound failed password logins (see api.LoginLimits).
	Logins api.LoginLimits
	// HookPerRepo is the bucket of one address and hook URL, HookPerAddress
	// of one address: each webhook refused for its signature (or an
	// unknown repository) takes a token from both, and an address without
	// tokens is answered 429 before its body is read (defaults 10 then
	// one every 6 s, and 60 then one a second). Signed deliveries take
	// nothing: a forge's deliveries for its other repositories pass as
	// long as the address has tokens left.
	HookPerRepo, HookPerAddress ratelimit.Limit
	// Now is the buckets' clock (default time.Now).
	Now func() time.Time
}

func (l *Limits) defaults() {
	if l.HookPerRepo.Burst <= 0 {
		l.HookPerRepo = ratelimit.Limit{Burst: 10, Every: 6 * time.Second}
	}
	if l.HookPerAddress.Burst <= 0 {
		l.HookPerAddress = ratelimit.Limit{Burst: 60, Every: time.Second}
	}
	if l.Logins.Now == nil {
		l.Logins.Now = l.Now
	}
}

// Backends are the sandboxes jobs run in (see exec.Options).
type Backends struct {
	Main, Host, Containers backend.Backend
}

// Deps are what the server is built from; main opens them.
type Deps struct {
	Store    store.Store
	Backends Backends
	// Pools, when set, run this replica's jobs instead of Backends: each
	// job on a healthy pool serving its labels with room (package pool);
	// the server runs their probes.
	Pools *pool.Scheduler
	Log   *slog.Logger
	// Stdout receives the start-up lines (URL, first admin token).
	Stdout io.Writer
	// Actions fetches the remote actions of the jobs this replica runs.
	Actions exec.ActionResolver
	// Cache is what local jobs get for actions/cache and @actions/cache;
	// CacheService, when set, is mounted at the root paths of GitHub's
	// cache protocols (see internal/cache.Service).
	Cache        exec.Cache
	CacheService http.Handler
	// CacheTokens issues the cache tokens of agents' jobs (nil: agents'
	// jobs get no cache).
	CacheTokens *cache.Tokens
}
