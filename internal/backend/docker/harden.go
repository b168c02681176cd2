package docker

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// JobCapabilities are the only capabilities a job's containers (the job
// container, services, container steps) keep; Docker's default set is
// dropped whole first. Kept: what root needs to install packages and own
// files (CHOWN, DAC_OVERRIDE, FOWNER, FSETID), to switch users as database
// images do on start (SETUID, SETGID), to signal its processes (KILL) and to
// serve on ports below 1024 (NET_BIND_SERVICE). Dropped from Docker's
// default: NET_RAW (raw packets: ARP/DNS spoofing on the bridge), MKNOD,
// SETFCAP, SETPCAP, SYS_CHROOT, AUDIT_WRITE.
var JobCapabilities = []string{"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "NET_BIND_SERVICE"}

// MaxDefaultMemory caps the memory limit a container gets when neither the
// operator (--memory) nor the workflow (options: --memory) sets one.
const MaxDefaultMemory = 16 << 30

// engineFacts are asked of the engine once per backend.
type engineFacts struct {
	once     sync.Once
	runtimes map[string]bool
	err      error
}

// checkRuntime refuses a runtime the engine does not have, naming those it
// has.
func (b *Backend) checkRuntime(ctx context.Context, runtime string) error {
	if runtime == "" {
		return nil
	}
	b.facts.once.Do(func() {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		info, err := b.cli.Info(ctx)
		if err != nil {
			b.facts.err = errs.Wrap("docker: runtimes", kindOf(err), err)
			return
		}
		b.facts.runtimes = map[string]bool{}
		for name := range info.Runtimes {
			b.facts.runtimes[name] = true
		}
	})
	if b.facts.err != nil {
		return b.facts.err
	}
	if !b.facts.runtimes[runtime] {
		have := make([]string, 0, len(b.facts.runtimes))
		for n := range b.facts.runtimes {
			have = append(have, n)
		}
		sort.Strings(have)
		return errs.E("docker: runtime", errs.Invalid, "the Docker engine has no runtime %q (it has %s); install it and register it in the engine's daemon.json, or choose another", runtime, strings.Join(have, ", "))
	}
	return nil
}

// memoryDefault is the engine's memory * 3/4, at most MaxDefaultMemory:
// one runaway job may not take the machine's last memory from the others
// and the engine. Asked once per backend; 0 (no limit) if the engine does
// not say.
type memoryDefault struct {
	once sync.Once
	n    int64
}

func (b *Backend) defaultMemory(ctx context.Context) int64 {
	b.memDefault.once.Do(func() {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		info, err := b.cli.Info(ctx)
		if err != nil || info.MemTotal <= 0 {
			return
		}
		b.memDefault.n = min(info.MemTotal/4*3, MaxDefaultMemory)
	})
	return b.memDefault.n
}

// harden applies the sandbox rules every container of a job gets: never
// privileged, JobCapabilities only, no-new-privileges (setuid binaries do
// not raise privileges), and a memory limit by default (pids have theirs
// in limits).
func (b *Backend) harden(ctx context.Context, hc *container.HostConfig, runtime string) {
	hc.Privileged = false
	hc.Runtime = runtime
	hc.CapDrop = []string{"ALL"}
	hc.CapAdd = append([]string(nil), JobCapabilities...)
	hc.SecurityOpt = append(hc.SecurityOpt, "no-new-privileges:true")
	if hc.Memory == 0 {
		hc.Memory = b.defaultMemory(ctx)
	}
}
