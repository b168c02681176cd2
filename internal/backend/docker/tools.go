package docker

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

const (
	// ToolCacheDir is where the tool cache is mounted in job containers:
	// GitHub's hosted runners keep it there, and act's images expect it.
	ToolCacheDir = "/opt/hostedtoolcache"
	// DefaultToolCacheVolume is the volume the commands use as tool cache.
	DefaultToolCacheVolume = "conveyor-toolcache"
	// nodePath is where Conveyor's node is put in job containers (its
	// Options.Node: bind-mounted read-only, or copied on a remote engine).
	nodePath = "/__conveyor/node/bin/node"
)

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
	if s.b.opts.Node != "" && !s.b.remote {
		ms = append(ms, mount.Mount{Type: mount.TypeBind, Source: s.b.opts.Node, Target: nodePath, ReadOnly: true})
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

// Nodes implements backend.NodeProvider: the image's node, then Conveyor's
// (copied in on the first call on a remote engine).
func (s *Sandbox) Nodes(ctx context.Context) ([]string, error) {
	if s.b.opts.Node == "" {
		return []string{"node"}, nil
	}
	if s.b.remote {
		s.nodeMu.Lock()
		defer s.nodeMu.Unlock()
		if !s.nodeCopied {
			if err := s.b.copyFile(ctx, s.containerID, s.b.opts.Node, nodePath); err != nil {
				return []string{"node"}, errs.Wrap("docker: copy node in", kindOf(err), err)
			}
			s.nodeCopied = true
		}
	}
	return []string{"node", nodePath}, nil
}

// copyFile puts the host file src at dst (an absolute path) in container
// id, created or running: one tar through the API, with dst's folders.
func (b *Backend) copyFile(ctx context.Context, id, src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		var err error
		rel := strings.TrimPrefix(dst, "/")
		var dirs []string
		for d := path.Dir(rel); d != "."; d = path.Dir(d) {
			dirs = append([]string{d}, dirs...)
		}
		for _, d := range dirs {
			if err == nil {
				err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: fi.ModTime()})
			}
		}
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0o555, Size: fi.Size(), ModTime: fi.ModTime()})
		}
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	return b.cli.CopyToContainer(ctx, id, "/", pr, container.CopyToContainerOptions{})
}
