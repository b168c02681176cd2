package main

import (
	"context"
	"flag"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend/docker"
)

// toolFlags are --node and --tool-cache, shared by run, server and agent.
type toolFlags struct{ node, toolCache string }

func (t *toolFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.node, "node", os.Getenv("CONVEYOR_NODE"),
		"node program for JavaScript actions (runs.using: nodeNN) on the host, also given to job containers whose image has no suitable node (env CONVEYOR_NODE; default: node on PATH)")
	fs.StringVar(&t.toolCache, "tool-cache", os.Getenv("CONVEYOR_TOOL_CACHE"),
		"RUNNER_TOOL_CACHE of host jobs, kept across runs (env CONVEYOR_TOOL_CACHE; default ~/.cache/conveyor/toolcache for run, DATA/toolcache for server and agent); job containers use the Docker volume "+docker.DefaultToolCacheVolume+" at "+docker.ToolCacheDir)
}

// options resolves the flags: defaultCache when no --tool-cache, node
// from PATH when no --node.
func (t *toolFlags) options(defaultCache string) toolOptions {
	o := toolOptions{node: resolveNode(t.node), toolCache: t.toolCache, volume: docker.DefaultToolCacheVolume}
	if o.toolCache == "" {
		o.toolCache = defaultCache
	}
	if abs, err := filepath.Abs(o.toolCache); err == nil && o.toolCache != "" {
		o.toolCache = abs
	}
	return o
}

// runToolCache is conveyor run's default tool cache.
func runToolCache() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "conveyor-toolcache")
	}
	return filepath.Join(dir, "conveyor", "toolcache")
}

// toolOptions configure the backends' Node.js and tool cache.
type toolOptions struct {
	node        string // the node program (absolute path) or "" (none found)
	nodeVersion string // what it says to --version; "": unknown
	toolCache   string // host jobs' RUNNER_TOOL_CACHE
	volume      string // job containers' tool cache volume
}

// askNodeVersion asks the node its version (`node --version` answers in
// milliseconds); "" when it does not answer within a few seconds: jobs
// then ask themselves, and say why it fails.
func (o toolOptions) askNodeVersion(ctx context.Context) string {
	if o.node == "" || !filepath.IsAbs(o.node) {
		return ""
	}
	vctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := osexec.CommandContext(vctx, o.node, "--version").Output()
	v := strings.TrimSpace(string(out))
	if err != nil || !strings.HasPrefix(v, "v") || strings.ContainsAny(v, " \n") {
		return ""
	}
	return v
}

// containerNode is the node given to job containers: a regular file only
// (a bind mount of a missing one would fail every job, not only those
// with JavaScript actions).
func (o toolOptions) containerNode() string {
	if fi, err := os.Stat(o.node); err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	return o.node
}

// resolveNode makes --node an absolute path with no symbolic link (so a
// bind mount gets the program itself); a bare name is looked up in PATH,
// "" means node. A program that is missing stays as given: jobs that need
// it say so before their first step.
func resolveNode(n string) string {
	if n == "" || !strings.ContainsRune(n, os.PathSeparator) {
		name := n
		if name == "" {
			name = "node"
		}
		p, err := osexec.LookPath(name)
		if err != nil {
			return n
		}
		n = p
	}
	if abs, err := filepath.Abs(n); err == nil {
		n = abs
	}
	if real, err := filepath.EvalSymlinks(n); err == nil {
		n = real
	}
	return n
}
