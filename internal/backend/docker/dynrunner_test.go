package docker

import (
	"context"
	"debug/elf"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/backendtest"
)

// dynamicConveyor builds conveyor as a plain go build does where a C
// compiler exists: with cgo, dynamically linked.
func dynamicConveyor(t *testing.T) string {
	t.Helper()
	cc, err := osexec.Command("go", "env", "CC").Output()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := osexec.LookPath(strings.TrimSpace(string(cc))); err != nil {
		t.Skip("no C compiler: go build makes a static conveyor here")
	}
	bin := filepath.Join(t.TempDir(), "conveyor")
	build := osexec.Command("go", "build", "-o", bin, "github.com/conveyor-ci/conveyor/cmd/conveyor")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return bin
		}
	}
	t.Fatalf("%s is static with CGO_ENABLED=1", bin)
	return ""
}

// A dynamically linked conveyor (plain go install) runs as the step
// runner in a busybox image, which has no glibc: the host's loader and
// libraries go with it, mounted (local engine) or copied (remote).
func TestDynamicRunnerInImageWithoutLibc(t *testing.T) {
	need(t)
	bin := dynamicConveyor(t)
	l, err := findRunnerLoader(bin)
	if err != nil || l == nil || l.libs["libc.so.6"] == "" {
		t.Fatalf("findRunnerLoader = %+v, %v", l, err)
	}
	if l, err := findRunnerLoader(binary); l != nil || err != nil {
		t.Fatalf("the static runner has a loader: %+v %v", l, err)
	}
	for _, eng := range []Engine{EngineLocal, EngineRemote} {
		t.Run(string(eng), func(t *testing.T) {
			b := newBackend(t, Options{RunnerBinary: bin, Engine: eng, HelloTimeout: 20 * time.Second})
			if note := b.RunnerNote(); note != "" {
				t.Fatalf("RunnerNote: %s", note)
			}
			backendtest.Run(t, func(t *testing.T) backend.Sandbox {
				sb := setupJob(t, b, newJob(t))
				// (the fallback's description names the step runner too)
				if d := sb.Describe(); !strings.Contains(d, "step runner") || strings.Contains(d, "docker exec") {
					t.Fatalf("not using the step runner: %s", sb.Describe())
				}
				return sb
			})
		})
	}
	// The runner really runs a step in busybox.
	b := newBackend(t, Options{RunnerBinary: bin})
	sb := setupJob(t, b, newJob(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out backendtest.SyncBuffer
	code, err := sb.Exec(ctx, &backend.Process{Argv: []string{"sh", "-c", "echo from-busybox"}}, &out)
	if err != nil || code != 0 || !strings.Contains(out.String(), "from-busybox") {
		t.Fatalf("run: %d %v %q", code, err, out.String())
	}
}

// A dynamic binary whose loader is missing gets the plain note.
func TestRunnerNoteForMissingLoader(t *testing.T) {
	b := &Backend{loaderErr: os.ErrNotExist}
	if n := b.RunnerNote(); !strings.Contains(n, "CGO_ENABLED=0 go install github.com/conveyor-ci/conveyor/cmd/conveyor@latest") {
		t.Errorf("note: %q", n)
	}
	if n := (&Backend{}).RunnerNote(); n != "" {
		t.Errorf("note without error: %q", n)
	}
}
