package exec

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/docker"
	"github.com/conveyor-ci/conveyor/internal/profiles"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// inspecting is the docker backend with each job container's HostConfig
// read from the engine right after its set-up.
type inspecting struct {
	*docker.Backend
	cli client.APIClient
	mu  sync.Mutex
	hc  map[string]*container.HostConfig // by job name
}

func (b *inspecting) Setup(ctx context.Context, job *backend.JobSpec, log io.Writer) (backend.Sandbox, error) {
	sb, err := b.Backend.Setup(ctx, job, log)
	if err != nil {
		return nil, err
	}
	info, ierr := b.cli.ContainerInspect(ctx, sb.(*docker.Sandbox).ContainerID())
	b.mu.Lock()
	defer b.mu.Unlock()
	if ierr == nil {
		b.hc[job.Name] = info.HostConfig
	}
	return sb, nil
}

func (b *inspecting) get(name string) *container.HostConfig {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hc[name]
}

// On a real engine: a runs-on label's runtime and machine type are the
// job container's (HostConfig.Runtime, NanoCPUs, Memory), and the step
// sees the memory limit; a label whose runtime the engine lacks fails
// its job before any step, naming the runtimes the engine has.
func TestLabelProfilesDocker(t *testing.T) {
	image := testenv.BusyboxImage(t)
	testenv.DockerAvailable(t)
	bin := buildRunner(t)
	d, err := docker.New(docker.Options{RunnerBinary: bin})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	b := &inspecting{Backend: d, cli: cli, hc: map[string]*container.HostConfig{}}
	cfg, err := profiles.Parse([]byte(`
machines:
  small: {cpus: 0.5, memory: 96m}
labels:
  sandboxed: {runtime: runc, machine: small}
  exotic: {runtime: conveyor-no-such-runtime}
`), "labels.yml")
	if err != nil {
		t.Fatal(err)
	}
	src := `
on: push
jobs:
  sandboxed:
    runs-on: sandboxed
    steps:
      - run: echo "memory.max=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
  exotic:
    runs-on: exotic
    steps:
      - run: echo must-not-run
`
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, rec := run(t, ctx, src, Options{Backend: b, Profiles: cfg, Platforms: map[string]string{"sandboxed": image, "exotic": image}})
	if resultOf(res, "sandboxed") != Success {
		t.Fatalf("results: %s\n%s", resultsString(res), rec.dump())
	}
	hc := b.get("sandboxed")
	if hc == nil || hc.Runtime != "runc" || hc.NanoCPUs != 5e8 || hc.Memory != 96<<20 {
		t.Fatalf("host config of the sandboxed job: %+v", hc)
	}
	if !rec.hasOutput("sandboxed", "memory.max=100663296") {
		t.Errorf("the step does not see the machine's memory limit:\n%s", rec.dump())
	}
	ex := jobResult(res, "exotic")
	if ex == nil || ex.Result != Failure || !strings.Contains(ex.Error, `no runtime "conveyor-no-such-runtime" (it has `) || !strings.Contains(ex.Error, "runc") {
		t.Errorf("exotic: %+v", ex)
	}
	if rec.hasOutput("exotic", "must-not-run") || b.get("exotic") != nil {
		t.Error("the exotic job ran a step")
	}
}
