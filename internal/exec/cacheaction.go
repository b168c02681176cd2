package exec

import (
	"context"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/archive"
	"github.com/conveyor-ci/conveyor/internal/cache"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/expr"
	"github.com/conveyor-ci/conveyor/internal/glob"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// Caches is the store the native actions/cache steps read and write;
// *cache.Store satisfies it.
type Caches interface {
	Lookup(ctx context.Context, q cache.Query) (*cache.Entry, error)
	Open(ctx context.Context, e *cache.Entry) (io.ReadCloser, error)
	Save(ctx context.Context, e cache.Entry, r io.Reader, size int64) (*cache.Entry, error)
}

// CacheRuntime gives jobs GitHub's cache protocol, for actions that embed
// @actions/cache (setup-node with cache:, the real actions/cache...).
// Implementations are safe for concurrent use.
type CacheRuntime interface {
	// JobEnv returns the env a job's processes get (ACTIONS_CACHE_URL,
	// ACTIONS_RESULTS_URL, ACTIONS_RUNTIME_TOKEN, ...), issuing the job's
	// token on the first call; container says the job's processes run in
	// a container (so the service's address must be reachable from one).
	JobEnv(job string, scope cache.Scope, container bool) map[string]string
	// Release revokes the job's token; safe to call for any job.
	Release(job string)
}

// Cache wires caches into an executor. The zero value has none: native
// actions/cache steps then fail with a clear error.
type Cache struct {
	Store   Caches
	Runtime CacheRuntime
	// Home is the host user's home directory: ~ in the paths of jobs that
	// run on the host.
	Home string
}

// cacheCompression names the native archive format in cache versions, so
// the native steps and the real actions/cache (tar with its own names)
// never read each other's entries.
const cacheCompression = "conveyor-tar-zstd"

// cacheAction tells whether uses names actions/cache (cache),
// actions/cache/restore (restore) or actions/cache/save (save), any ref.
func cacheAction(uses string) string {
	name, _, _ := strings.Cut(uses, "@")
	switch strings.ToLower(name) {
	case "actions/cache":
		return "cache"
	case "actions/cache/restore":
		return "restore"
	case "actions/cache/save":
		return "save"
	}
	return ""
}

// cacheScope is the job's cache scope.
func (jr *jobRun) cacheScope() cache.Scope {
	ev := jr.e.opts.Event
	s := cache.Scope{Repo: ev.Repository, Ref: ev.Ref}
	if t := jr.e.opts.Tenant; t.OrgID != 0 && t.Repo != "" {
		s.Repo = cache.TenantRepo(t.OrgID, t.Repo) // a server's job: its organisation's repository
	}
	if repo, ok := ev.Payload["repository"].(map[string]any); ok {
		if b, ok := repo["default_branch"].(string); ok && b != "" {
			s.DefaultRef = "refs/heads/" + b
		}
	}
	if s.Repo == "" {
		s.Repo = "local"
	}
	return s
}

// onHost says the job's processes see the host's file system.
func (jr *jobRun) onHost() bool { return jr.box.dirs.Host == jr.box.dirs.Sandbox }

// cacheEnv adds the cache protocol's env to a step's process env.
func (jr *jobRun) cacheEnv(env map[string]string) {
	if rt := jr.e.opts.Cache.Runtime; rt != nil {
		for k, v := range rt.JobEnv(jr.e.token+"/"+jr.key, jr.cacheScope(), !jr.onHost()) {
			env[k] = v
		}
		jr.e.opts.Masker.Add(env["ACTIONS_RUNTIME_TOKEN"])
	}
}

// releaseCache ends the job's cache token.
func (jr *jobRun) releaseCache() {
	if rt := jr.e.opts.Cache.Runtime; rt != nil {
		rt.Release(jr.e.token + "/" + jr.key)
	}
}

// cacheInputs are a cache step's inputs, evaluated.
type cacheInputs struct {
	lines       []string // path:, one entry a line, as written (they make the version)
	key         string
	restoreKeys []string
	lookupOnly  bool
	failOnMiss  bool
	version     string
}

func (sr *stepRun) cacheInputs(c *expr.Context) (*cacheInputs, error) {
	with, err := sr.evalWith(c)
	if err != nil {
		return nil, err
	}
	in := func(k string) string { v, _ := lookupFold(with, k); return strings.TrimSpace(v) }
	ci := &cacheInputs{key: in("key"), lines: nonEmptyLines(in("path")), restoreKeys: nonEmptyLines(in("restore-keys"))}
	if len(ci.lines) == 0 {
		return nil, errs.E("cache", errs.Invalid, "Input required and not supplied: path")
	}
	if ci.key == "" {
		return nil, errs.E("cache", errs.Invalid, "Input required and not supplied: key")
	}
	if strings.Contains(ci.key, ",") {
		return nil, errs.E("cache", errs.Invalid, "Key Validation Error: %s cannot contain commas.", ci.key)
	}
	for name, dst := range map[string]*bool{"lookup-only": &ci.lookupOnly, "fail-on-cache-miss": &ci.failOnMiss} {
		if v := in(name); v != "" {
			if *dst, err = boolInput(name, v); err != nil {
				return nil, err
			}
		}
	}
	if v := in("enableCrossOsArchive"); v != "" {
		if _, err := boolInput("enableCrossOsArchive", v); err != nil {
			return nil, err
		}
	}
	// Linux archives are cross-OS already: enableCrossOsArchive changes the
	// version on Windows only, as in actions/cache.
	ci.version = cache.Version(ci.lines, cacheCompression, false)
	return ci, nil
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// cacheStep runs actions/cache (restore now, save in a post step),
// actions/cache/restore or actions/cache/save natively.
func (sr *stepRun) cacheStep(ctx context.Context, c *expr.Context, kind string) error {
	store := sr.jr.e.opts.Cache.Store
	if store == nil {
		return errs.E("cache", errs.Unavailable, "%s: this executor has no cache store", sr.step.Uses)
	}
	ci, err := sr.cacheInputs(c)
	if err != nil {
		return err
	}
	paths, err := sr.jr.cachePaths(ci.lines)
	if err != nil {
		return err
	}
	if kind == "save" {
		return sr.saveCache(ctx, store, paths, ci)
	}
	matched, err := sr.restoreCache(ctx, store, paths, ci, kind == "restore")
	if err != nil || kind != "cache" {
		return err
	}
	jr := sr.jr
	jr.steps.posts = append(jr.steps.posts, func(pctx context.Context) {
		ps := &workflow.Step{Name: "Post " + sr.name, ID: "post-" + sr.id, If: "success()"}
		jr.runPost(pctx, sr, ps, func(p *stepRun) error {
			if matched != "" && strings.EqualFold(matched, ci.key) {
				p.say(fmt.Sprintf("Cache hit occurred on the primary key %s, not saving cache.", ci.key))
				return nil
			}
			return p.saveCache(pctx, store, paths, ci)
		})
	})
	return nil
}

// restoreCache looks the keys up and extracts the entry found. It returns
// the matched key ("" on a miss).
func (sr *stepRun) restoreCache(ctx context.Context, store Caches, paths *cachePaths, ci *cacheInputs, restoreOnly bool) (string, error) {
	jr := sr.jr
	sc := jr.cacheScope()
	if restoreOnly {
		sr.outputs["cache-primary-key"] = ci.key
	}
	keys := append([]string{ci.key}, ci.restoreKeys...)
	e, err := store.Lookup(ctx, cache.Query{Repo: sc.Repo, Ref: sc.Ref, DefaultRef: sc.DefaultRef, Keys: keys, Version: ci.version})
	if errs.KindOf(err) == errs.NotFound {
		if ci.failOnMiss {
			return "", errs.E("cache", errs.NotFound, "Failed to restore cache entry. Exiting as fail-on-cache-miss is set. Input key: %s", ci.key)
		}
		sr.say("Cache not found for input keys: " + strings.Join(keys, ", "))
		return "", nil
	}
	if err != nil {
		return "", err
	}
	sr.outputs["cache-hit"] = strconv.FormatBool(strings.EqualFold(e.Key, ci.key))
	if restoreOnly {
		sr.outputs["cache-matched-key"] = e.Key
	}
	if ci.lookupOnly {
		sr.say("Cache found and can be restored from key: " + e.Key)
		return e.Key, nil
	}
	rc, err := store.Open(ctx, e)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	sr.say(fmt.Sprintf("Cache Size: ~%d MB (%d B)", e.Size>>20, e.Size))
	st, err := archive.Extract(ctx, rc, paths.mapper, archive.DefaultLimits)
	if err != nil {
		return "", errs.Wrap("cache restore", errs.KindOf(err), err)
	}
	sr.say(fmt.Sprintf("Cache restored from key: %s (%d entries, %d bytes)", e.Key, st.Entries, st.Bytes))
	return e.Key, nil
}

// saveCache packs the paths and stores them under the primary key.
func (sr *stepRun) saveCache(ctx context.Context, store Caches, paths *cachePaths, ci *cacheInputs) error {
	jr := sr.jr
	found, err := glob.Match(paths.patterns)
	if err != nil {
		return err
	}
	if len(found) == 0 {
		sr.annotate("warning", "Path Validation Error: Path(s) specified in the action for caching do(es) not exist, hence no cache is being saved.")
		return nil
	}
	pr, pw := io.Pipe()
	packCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		pw.CloseWithError(paths.pack(packCtx, pw, found, func(w string) { sr.annotate("warning", w) }))
	}()
	sc := jr.cacheScope()
	e, err := store.Save(ctx, cache.Entry{Repo: sc.Repo, Ref: sc.Ref, Key: ci.key, Version: ci.version}, pr, -1)
	pr.CloseWithError(io.ErrClosedPipe) // stops pack when Save gave up early
	if k := errs.KindOf(err); k == errs.Conflict || k == errs.TooLarge {
		sr.annotate("warning", "Failed to save: "+err.Error())
		return nil
	}
	if err != nil {
		return err
	}
	sr.say(fmt.Sprintf("Cache saved with key: %s (%d bytes)", e.Key, e.Size))
	return nil
}

// cachePaths is a step's path: input on the host: the patterns to match,
// and the anchors that name archive entries.
//
// Archive names start with an anchor, so paths outside the workspace are
// stored as actions/cache does (relative to the workspace), but without
// ".." in names: "ws/REL" is under the workspace, "home/REL" under the
// home directory (~), "upN/REL" N levels above the workspace. On restore a
// name is written only if it falls under the search root (the part before
// the first wildcard) of one of the step's own paths, whose version the
// entry shares: an entry cannot write anywhere else.
type cachePaths struct {
	ws, home string
	patterns []glob.Pattern
	roots    []string // search roots of the include patterns
}

// cachePaths maps the step's path: lines (sandbox view) to the host.
func (jr *jobRun) cachePaths(lines []string) (*cachePaths, error) {
	cp := &cachePaths{ws: filepath.Join(jr.box.dir, "workspace")}
	if jr.onHost() {
		cp.home = jr.e.opts.Cache.Home
	}
	var host []string
	for _, l := range lines {
		neg := ""
		for strings.HasPrefix(l, "!") {
			neg += "!"
			l = strings.TrimSpace(l[1:])
		}
		switch {
		case strings.HasPrefix(l, "#"):
			continue
		case l == "~" || strings.HasPrefix(l, "~/"):
			if cp.home == "" {
				return nil, errs.E("cache", errs.Invalid, "path %q: ~ is supported on the host backend only by the native actions/cache; in a container use an absolute path under the workspace or runner.temp", l)
			}
		case path.IsAbs(l) && !jr.onHost():
			h, ok := jr.hostPath(l)
			if !ok {
				return nil, errs.E("cache", errs.Invalid, "path %q is outside the job's directory: in a container the native actions/cache reaches the workspace and runner.temp", l)
			}
			l = h
		}
		host = append(host, neg+l)
	}
	pats, err := glob.Parse(strings.Join(host, "\n"), cp.ws, cp.home)
	if err != nil {
		return nil, err
	}
	cp.patterns = pats
	for _, p := range pats {
		if !p.Negate {
			cp.roots = append(cp.roots, p.Root())
		}
	}
	return cp, nil
}

// name is the archive name of host path p.
func (cp *cachePaths) name(p string) (string, error) {
	rel := func(base string) (string, bool) {
		r, err := filepath.Rel(base, p)
		if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			return "", false
		}
		return filepath.ToSlash(r), true
	}
	join := func(anchor, r string) string {
		if r == "." {
			return anchor
		}
		return anchor + "/" + r
	}
	if r, ok := rel(cp.ws); ok {
		return join("ws", r), nil
	}
	if cp.home != "" {
		if r, ok := rel(cp.home); ok {
			return join("home", r), nil
		}
	}
	r, err := filepath.Rel(cp.ws, p)
	if err != nil {
		return "", errs.Wrap("cache", errs.Invalid, err)
	}
	up := 0
	segs := strings.Split(filepath.ToSlash(r), "/")
	for up < len(segs) && segs[up] == ".." {
		up++
	}
	return join("up"+strconv.Itoa(up), strings.Join(segs[up:], "/")), nil
}

// pack writes the matched paths as one archive.
func (cp *cachePaths) pack(ctx context.Context, w io.Writer, found []string, warn func(string)) error {
	aw, err := archive.NewWriter(w, archive.WriterOptions{Warn: warn})
	if err != nil {
		return err
	}
	for _, p := range found {
		n, err := cp.name(p)
		if err != nil {
			return err
		}
		if err := aw.Add(ctx, p, n, n); err != nil {
			return err
		}
	}
	return aw.Close()
}

// mapper places an archive name on restore, refusing names outside the
// step's paths.
func (cp *cachePaths) mapper(name string) (string, string, error) {
	anchor, rest, _ := strings.Cut(name, "/")
	var base string
	switch {
	case anchor == "ws":
		base = cp.ws
	case anchor == "home" && cp.home != "":
		base = cp.home
	case strings.HasPrefix(anchor, "up"):
		n, err := strconv.Atoi(anchor[2:])
		if err != nil || n < 1 || n > 64 {
			return "", "", errs.E("cache restore", errs.Invalid, "entry %q: bad anchor", name)
		}
		base = cp.ws
		for range n {
			base = filepath.Dir(base)
		}
	default:
		return "", "", errs.E("cache restore", errs.Invalid, "entry %q: unknown anchor %q", name, anchor)
	}
	dest := filepath.Join(base, filepath.FromSlash(rest))
	for _, r := range cp.roots {
		if !within(r, dest) {
			continue
		}
		parent := filepath.Dir(r)
		rel, err := filepath.Rel(parent, dest)
		if err != nil {
			break
		}
		return parent, filepath.ToSlash(rel), nil
	}
	return "", "", errs.E("cache restore", errs.Invalid, "entry %q (%s) is not under any of the step's paths", name, dest)
}
