package docker

import (
	"context"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
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
func (b *Backend) harden(ctx context.Context, hc *container.HostConfig) {
	hc.Privileged = false
	hc.CapDrop = []string{"ALL"}
	hc.CapAdd = append([]string(nil), JobCapabilities...)
	hc.SecurityOpt = append(hc.SecurityOpt, "no-new-privileges:true")
	if hc.Memory == 0 {
		hc.Memory = b.defaultMemory(ctx)
	}
}
