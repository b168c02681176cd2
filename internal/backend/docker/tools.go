package docker

import (
	"context"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/mount"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

const (
	// ToolCacheDir is where the tool cache is mounted in job containers:
	// GitHub's hosted runners keep it there, and act's images expect it.
	ToolCacheDir = "/opt/hostedtoolcache"
	// DefaultToolCacheVolume is the volume the commands use as tool cache.
	DefaultToolCacheVolume = "conveyor-toolcache"
	// nodeDir holds Conveyor's node in job containers (Options.Node), and
	// in lib/ the C library it was built for with its loader, so that it
	// runs in any image: bind-mounted read-only, or copied on a remote
	// engine.
	nodeDir  = "/__conveyor/node"
	nodePath = nodeDir + "/bin/node"
	nodeLib  = nodeDir + "/lib"
)

// nodeFiles are Conveyor's node and, for a dynamically linked one, the
// loader and libraries it needs from this machine (see runnerLoader): by
// their path in the container, to their host file.
func (b *Backend) nodeFiles() map[string]string {
	if b.opts.Node == "" {
		return nil
	}
	files := map[string]string{nodePath: b.opts.Node}
	if b.nodeLoader != nil {
		for dst, src := range b.nodeLoader.filesIn(nodeLib) {
			files[dst] = src
		}
	}
	return files
}

// toolMounts are the job container's mounts for the tool cache and, on a
// local engine, Conveyor's node. A tool cache path the container's own
// volumes already mount is left to them.
func (s *Sandbox) toolMounts(binds []string) []mount.Mount {
	var ms []mount.Mount
	if tc := s.b.opts.ToolCache; tc != "" && !mountsAt(binds, ToolCacheDir) {
		m := mount.Mount{Type: mount.TypeVolume, Source: tc, Target: ToolCacheDir}
		if filepath.IsAbs(tc) {
			m.Type = mount.TypeBind
		}
		ms = append(ms, m)
	}
	if !s.b.remote {
		files := s.b.nodeFiles()
		dsts := make([]string, 0, len(files))
		for dst := range files {
			dsts = append(dsts, dst)
		}
		sort.Strings(dsts)
		for _, dst := range dsts {
			ms = append(ms, mount.Mount{Type: mount.TypeBind, Source: files[dst], Target: dst, ReadOnly: true})
		}
	}
	return ms
}

// mountsAt reports whether a docker-style volume spec mounts at dir.
func mountsAt(binds []string, dir string) bool {
	for _, b := range binds {
		parts := strings.Split(b, ":")
		if len(parts) >= 2 && path.Clean(parts[1]) == dir {
			return true
		}
	}
	return false
}

// toolCacheDir is RUNNER_TOOL_CACHE in the job container ("": none).
func (s *Sandbox) toolCacheDir() string {
	if s.b.opts.ToolCache == "" {
		return ""
	}
	return ToolCacheDir
}

// Nodes implements backend.NodeProvider: the image's node; Conveyor's,
// which needs a C library like the one it was built for in the image
// (glibc); and Conveyor's through its own loader and C library, which
// runs in any image of this architecture (Alpine, busybox). Conveyor's
// node is copied in on the first call on a remote engine.
func (s *Sandbox) Nodes(ctx context.Context) ([]backend.Node, error) {
	own := []backend.Node{{Argv: []string{"node"}}}
	if s.b.opts.Node == "" {
		return own, nil
	}
	if s.b.remote {
		s.nodeMu.Lock()
		defer s.nodeMu.Unlock()
		if !s.nodeCopied {
			if err := s.b.copyFiles(ctx, s.containerID, s.b.nodeFiles()); err != nil {
				return own, errs.Wrap("docker: copy node in", kindOf(err), err)
			}
			s.nodeCopied = true
		}
	}
	// The plain one may not run in the image: its version is asked.
	nodes := append(own, backend.Node{Argv: []string{nodePath}})
	if s.b.nodeLoader != nil {
		nodes = append(nodes, backend.Node{Argv: []string{path.Join(nodeLib, "ld.so"), "--library-path", nodeLib, nodePath}, Version: s.b.opts.NodeVersion})
	}
	return nodes, nil
}
