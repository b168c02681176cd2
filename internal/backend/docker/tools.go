package docker

import (
	"archive/tar"
	"context"
	"debug/elf"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/container"
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

// nodeRuntime is Conveyor's node with what it needs from this machine:
// files by their path in the container.
type nodeRuntime struct {
	files  map[string]string // container path → host path
	loader string            // container path of the dynamic loader; "": static, or not all found
}

// findNodeRuntime finds the dynamic loader and the shared libraries (all
// of them, transitively) that the node program at bin needs on this
// machine. Without all of them, only the program is given.
func findNodeRuntime(bin string) nodeRuntime {
	rt := nodeRuntime{files: map[string]string{nodePath: bin}}
	f, err := elf.Open(bin)
	if err != nil {
		return rt
	}
	defer f.Close()
	interp := elfInterp(f)
	if interp == "" {
		return rt
	}
	libs := map[string]string{}
	if !neededLibs(f, libs) {
		return rt
	}
	real, err := filepath.EvalSymlinks(interp)
	if err != nil {
		return rt
	}
	rt.loader = nodeLib + "/" + path.Base(interp)
	rt.files[rt.loader] = real
	for name, p := range libs {
		rt.files[nodeLib+"/"+name] = p
	}
	return rt
}

// elfInterp is the PT_INTERP of an executable ("": static).
func elfInterp(f *elf.File) string {
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				return ""
			}
			return strings.TrimRight(string(b), "\x00")
		}
	}
	return ""
}

// libDirs are where this machine's shared libraries are looked for.
func libDirs() []string {
	triplet := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[runtime.GOARCH]
	dirs := []string{"/lib64", "/usr/lib64", "/lib", "/usr/lib"}
	if triplet != "" {
		dirs = append([]string{"/lib/" + triplet, "/usr/lib/" + triplet}, dirs...)
	}
	return dirs
}

// neededLibs adds f's DT_NEEDED libraries and theirs to libs (name →
// host path, links resolved); false when one is not found.
func neededLibs(f *elf.File, libs map[string]string) bool {
	names, err := f.ImportedLibraries()
	if err != nil {
		return false
	}
	for _, n := range names {
		if _, ok := libs[n]; ok || strings.Contains(n, "/") {
			continue
		}
		found := false
		for _, d := range libDirs() {
			p, err := filepath.EvalSymlinks(filepath.Join(d, n))
			if err != nil {
				continue
			}
			lf, err := elf.Open(p)
			if err != nil || lf.Class != f.Class || lf.Machine != f.Machine {
				if lf != nil {
					lf.Close()
				}
				continue
			}
			libs[n] = p
			ok := neededLibs(lf, libs)
			lf.Close()
			if !ok {
				return false
			}
			found = true
			break
		}
		if !found {
			return false
		}
	}
	return true
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
		for _, dst := range s.b.node.sorted() {
			ms = append(ms, mount.Mount{Type: mount.TypeBind, Source: s.b.node.files[dst], Target: dst, ReadOnly: true})
		}
	}
	return ms
}

func (rt nodeRuntime) sorted() []string {
	l := make([]string, 0, len(rt.files))
	for k := range rt.files {
		l = append(l, k)
	}
	sort.Strings(l)
	return l
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
	if len(s.b.node.files) == 0 {
		return own, nil
	}
	if s.b.remote {
		s.nodeMu.Lock()
		defer s.nodeMu.Unlock()
		if !s.nodeCopied {
			if err := s.b.copyFiles(ctx, s.containerID, s.b.node.files); err != nil {
				return own, errs.Wrap("docker: copy node in", kindOf(err), err)
			}
			s.nodeCopied = true
		}
	}
	// The plain one may not run in the image: its version is asked.
	nodes := append(own, backend.Node{Argv: []string{nodePath}})
	if l := s.b.node.loader; l != "" {
		nodes = append(nodes, backend.Node{Argv: []string{l, "--library-path", nodeLib, nodePath}, Version: s.b.opts.NodeVersion})
	}
	return nodes, nil
}

// copyFiles puts host files (by their absolute path in the container) in
// container id, created or running: one tar through the API, with their
// folders.
func (b *Backend) copyFiles(ctx context.Context, id string, files map[string]string) error {
	dsts := make([]string, 0, len(files))
	for d := range files {
		dsts = append(dsts, d)
	}
	sort.Strings(dsts)
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		dirs := map[string]bool{}
		err := func() error {
			for _, dst := range dsts {
				rel := strings.TrimPrefix(dst, "/")
				var parents []string
				for d := path.Dir(rel); d != "." && !dirs[d]; d = path.Dir(d) {
					dirs[d] = true
					parents = append([]string{d}, parents...)
				}
				for _, d := range parents {
					if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}); err != nil {
						return err
					}
				}
				if err := tarFile(tw, files[dst], rel); err != nil {
					return err
				}
			}
			return tw.Close()
		}()
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	return b.cli.CopyToContainer(ctx, id, "/", pr, container.CopyToContainerOptions{})
}

// tarFile writes the host file src as name, read-only and executable.
func tarFile(tw *tar.Writer, src, name string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o555, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
		return err
	}
	_, err = io.CopyN(tw, f, fi.Size())
	return err
}
