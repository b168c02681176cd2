package docker

import (
	"debug/elf"
	"fmt"
	"path"
	"path/filepath"

	"github.com/docker/docker/api/types/mount"
)

// runnerLibDir holds, in a job container, the dynamic loader and libraries
// a dynamically linked runner binary needs.
const runnerLibDir = "/__conveyor/lib"

// runnerLoader is how a dynamically linked conveyor runs in any job
// container. A conveyor built with cgo (the default of go build and go
// install where a C compiler exists: net and os/user use it) needs the
// host's dynamic loader and libc; an image without them (alpine, busybox,
// distroless) or with an older glibc cannot exec it, and the steps fell
// back to docker exec at many times the cost. The host's own loader and
// libraries are mounted next to the binary and the loader runs it
// (ld.so --library-path DIR BINARY), which needs nothing from the image.
type runnerLoader struct {
	interp string            // the loader, host path (PT_INTERP)
	libs   map[string]string // the libraries it loads: DT_NEEDED name to host path
}

// findRunnerLoader reads the runner binary: nil for a static binary; an
// error when it is dynamic and its loader or a library is not found.
func findRunnerLoader(bin string) (*runnerLoader, error) {
	f, err := elf.Open(bin)
	if err != nil {
		return nil, nil // not ELF (tests use fakes): nothing to add
	}
	defer f.Close()
	interp := ""
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return nil, fmt.Errorf("reading the loader of %s: %v", bin, err)
			}
			interp = string(trimNUL(b))
		}
	}
	if interp == "" {
		return nil, nil
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return nil, fmt.Errorf("reading the libraries of %s: %v", bin, err)
	}
	l := &runnerLoader{libs: map[string]string{}}
	if l.interp, err = filepath.EvalSymlinks(interp); err != nil {
		return nil, fmt.Errorf("%s is dynamically linked and its loader %s is missing", bin, interp)
	}
	dirs := []string{filepath.Dir(interp), "/lib/" + gnuTriplet(f), "/usr/lib/" + gnuTriplet(f), "/lib64", "/usr/lib64", "/lib", "/usr/lib"}
	for _, lib := range needed {
		found := ""
		for _, d := range dirs {
			if p, err := filepath.EvalSymlinks(filepath.Join(d, lib)); err == nil {
				found = p
				break
			}
		}
		if found == "" {
			return nil, fmt.Errorf("%s needs %s, which is not in %v", bin, lib, dirs)
		}
		l.libs[lib] = found
	}
	return l, nil
}

func trimNUL(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// gnuTriplet is Debian's multiarch folder name for the binary's machine.
func gnuTriplet(f *elf.File) string {
	switch f.Machine {
	case elf.EM_X86_64:
		return "x86_64-linux-gnu"
	case elf.EM_AARCH64:
		return "aarch64-linux-gnu"
	case elf.EM_386:
		return "i386-linux-gnu"
	case elf.EM_ARM:
		return "arm-linux-gnueabihf"
	}
	return ""
}

// files maps each container path (in runnerLibDir) to its host file.
func (l *runnerLoader) files() map[string]string { return l.filesIn(runnerLibDir) }

// filesIn maps each container path (in dir) to its host file.
func (l *runnerLoader) filesIn(dir string) map[string]string {
	out := map[string]string{path.Join(dir, "ld.so"): l.interp}
	for name, host := range l.libs {
		out[path.Join(dir, name)] = host
	}
	return out
}

// argv is the job container's entrypoint for the runner.
func (l *runnerLoader) argv() []string {
	if l == nil {
		return []string{runnerPath, "entrypoint"}
	}
	return []string{path.Join(runnerLibDir, "ld.so"), "--library-path", runnerLibDir, runnerPath, "entrypoint"}
}

// mounts bind-mounts the loader and the libraries, read-only.
func (l *runnerLoader) mounts() []mount.Mount {
	if l == nil {
		return nil
	}
	var ms []mount.Mount
	for dst, src := range l.files() {
		ms = append(ms, mount.Mount{Type: mount.TypeBind, Source: src, Target: dst, ReadOnly: true})
	}
	return ms
}
