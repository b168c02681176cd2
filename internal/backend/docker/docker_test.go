package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/backendtest"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/testimage"
)

var (
	cli      client.APIClient
	bbImage  string // busybox
	webImage string // busybox running httpd in the foreground
	binary   string // static conveyor binary
	noDocker string // why the engine is unusable; "" when it is fine
	tmpRoot  string
)

func TestMain(m *testing.M) {
	code := func() int {
		var err error
		tmpRoot, err = os.MkdirTemp("", "conveyor-docker-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(tmpRoot)
		noDocker = prepare()
		return m.Run()
	}()
	os.Exit(code)
}

func prepare() string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err.Error()
	}
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	if _, err := c.Ping(pctx); err != nil {
		return "no Docker engine: " + err.Error()
	}
	cli = c
	if bbImage, err = testimage.Busybox(ctx, cli); err != nil {
		return err.Error()
	}
	if webImage, err = testimage.Busybox(ctx, cli, `CMD ["httpd", "-f", "-p", "80", "-h", "/var/www"]`); err != nil {
		return err.Error()
	}
	path, note, err := testimage.Conveyor(ctx, tmpRoot)
	if err != nil {
		return err.Error()
	}
	if note != "" {
		fmt.Fprintln(os.Stderr, "docker tests:", note)
	}
	binary = path
	return ""
}

// need skips (or, in CI, fails) a test when no engine answers.
func need(t testing.TB) {
	t.Helper()
	if noDocker == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("docker tests need an engine in CI: %s", noDocker)
	}
	t.Skip("skipping docker test:", noDocker)
}

func newBackend(t testing.TB, opts Options) *Backend {
	t.Helper()
	opts.Client = cli
	if opts.RunnerBinary == "" {
		opts.RunnerBinary = binary
	}
	b, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newJob(t testing.TB) *backend.JobSpec { return backendtest.NewJob(t, bbImage) }

func setupJob(t testing.TB, b *Backend, job *backend.JobSpec) *Sandbox {
	t.Helper()
	return backendtest.Setup(t, b, job, 2*time.Minute, func(id string) { assertGone(t, id) }).(*Sandbox)
}

// assertGone checks that nothing labelled with the job is left.
func assertGone(t testing.TB, jobID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", LabelJob+"="+jobID))
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 || len(ns) != 0 {
		t.Errorf("job %s left %d containers and %d networks", jobID, len(cs), len(ns))
	}
}

func TestConformance(t *testing.T) {
	need(t)
	b := newBackend(t, Options{})
	backendtest.Run(t, func(t *testing.T) backend.Sandbox {
		sb := setupJob(t, b, newJob(t))
		if !strings.Contains(sb.Describe(), "step runner") {
			t.Fatalf("not using the step runner: %s", sb.Describe())
		}
		return sb
	})
}

func TestConformanceExecFallback(t *testing.T) {
	need(t)
	notExe := filepath.Join(t.TempDir(), "conveyor")
	if err := os.WriteFile(notExe, []byte("not a program"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, Options{RunnerBinary: notExe, HelloTimeout: 3 * time.Second})
	backendtest.Run(t, func(t *testing.T) backend.Sandbox {
		sb := setupJob(t, b, newJob(t))
		if !strings.Contains(sb.Describe(), "docker exec") {
			t.Fatalf("not using docker exec: %s", sb.Describe())
		}
		return sb
	})
}

func TestResourcesAndOptions(t *testing.T) {
	need(t)
	b := newBackend(t, Options{})
	job := newJob(t)
	job.Resources = backend.Resources{CPUs: 1.5, MemoryBytes: 256 << 20, PidsLimit: 100}
	job.Container = &backend.Container{
		Env:     map[string]string{"FROM_ENV": "e1"},
		Options: `--cpus 0.5 --hostname myhost -e "GREETING=hello world" --workdir /tmp`,
	}
	sb := setupJob(t, b, job)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := cli.ContainerInspect(ctx, sb.ContainerID())
	if err != nil {
		t.Fatal(err)
	}
	hc := info.HostConfig
	if hc.NanoCPUs != 5e8 || hc.Memory != 256<<20 || hc.PidsLimit == nil || *hc.PidsLimit != 100 || hc.Privileged {
		t.Errorf("limits: cpus %d, memory %d, pids %v, privileged %v", hc.NanoCPUs, hc.Memory, hc.PidsLimit, hc.Privileged)
	}
	if info.Config.Labels[LabelJob] != job.ID {
		t.Errorf("labels %v", info.Config.Labels)
	}
	out, _ := backendtest.Exec(t, sb, &backend.Process{Argv: []string{"sh", "-c", `echo "$(hostname) $GREETING $FROM_ENV $(pwd)"`}})
	if out != "myhost hello world e1 /tmp\n" {
		t.Errorf("got %q", out)
	}
}

func TestDefaultPidsLimit(t *testing.T) {
	need(t)
	sb := setupJob(t, newBackend(t, Options{}), newJob(t))
	info, err := cli.ContainerInspect(context.Background(), sb.ContainerID())
	if err != nil {
		t.Fatal(err)
	}
	if p := info.HostConfig.PidsLimit; p == nil || *p != DefaultPidsLimit {
		t.Errorf("pids limit %v", p)
	}
}

func TestServices(t *testing.T) {
	need(t)
	b := newBackend(t, Options{HealthTimeout: time.Minute})
	job := newJob(t)
	job.Services = []backend.Service{
		{Name: "web", Image: webImage, Options: "--health-cmd 'wget -q -O /dev/null http://localhost/' --health-interval 500ms --health-retries 20"},
		{Name: "echo", Image: bbImage, Env: map[string]string{"REPLY": "pong"}, Options: "--entrypoint sh --network-alias echo2 -e X=1 --health-cmd true --health-interval 500ms"},
	}
	// The echo service has no command, so sh exits at once: a service that
	// dies must fail the setup clearly... (It has a health check: one
	// without is ready the moment it runs, so whether its exit is seen
	// depended on the race between its sh and the inspect.)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := b.Setup(ctx, job, io.Discard); err == nil || !strings.Contains(err.Error(), "echo") {
		t.Fatalf("dead service: err = %v", err)
	}
	assertGone(t, job.ID)
	// ... and a healthy one is reachable by name.
	job = newJob(t)
	job.Services = job.Services[:0]
	job.Services = append(job.Services, backend.Service{Name: "web", Image: webImage, Options: "--health-cmd 'wget -q -O /dev/null http://localhost/' --health-interval 500ms --health-retries 20"})
	sb := setupJob(t, b, job)
	out, code := backendtest.Exec(t, sb, &backend.Process{Argv: []string{"wget", "-q", "-O", "-", "http://web/"}})
	if code != 0 || out != "hello from httpd\n" {
		t.Errorf("service by name: %q, %d", out, code)
	}
}

func TestSetupErrors(t *testing.T) {
	need(t)
	b := newBackend(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	job := newJob(t)
	job.Image = "conveyor-no-such-image:never"
	_, err := b.Setup(ctx, job, io.Discard)
	if !errs.Is(err, errs.NotFound) || !strings.Contains(err.Error(), "conveyor-no-such-image") {
		t.Errorf("missing image: %v", err)
	}
	assertGone(t, job.ID)
	job = newJob(t)
	job.Container = &backend.Container{Options: "--privileged"}
	if _, err := b.Setup(ctx, job, io.Discard); !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "privileged") {
		t.Errorf("privileged: %v", err)
	}
	job.Container = &backend.Container{Options: "--cap-add SYS_ADMIN"}
	if _, err := b.Setup(ctx, job, io.Discard); !errs.Is(err, errs.Invalid) {
		t.Errorf("unknown option: %v", err)
	}
	assertGone(t, job.ID)
}

func TestTeardownAfterCancelledStep(t *testing.T) {
	need(t)
	b := newBackend(t, Options{})
	job := newJob(t)
	sb := setupJob(t, b, job)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := sb.Exec(ctx, &backend.Process{Argv: []string{"sh", "-c", "trap '' TERM; sleep 100 & sleep 100"}}, io.Discard)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
	tctx, tcancel := context.WithTimeout(context.Background(), time.Minute)
	defer tcancel()
	if err := sb.Teardown(tctx); err != nil {
		t.Fatal(err)
	}
	if err := sb.Teardown(tctx); err != nil {
		t.Fatal(err)
	}
	assertGone(t, job.ID)
	if _, err := sb.Exec(tctx, &backend.Process{Argv: []string{"true"}}, io.Discard); err == nil {
		t.Error("Exec after teardown: no error")
	}
}

func TestLargeStream(t *testing.T) {
	need(t)
	if testing.Short() {
		t.Skip("1 GiB stream")
	}
	sb := setupJob(t, newBackend(t, Options{}), newJob(t))
	var n countWriter
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	code, err := sb.Exec(ctx, &backend.Process{Argv: []string{"head", "-c", "1073741824", "/dev/zero"}}, &n)
	if err != nil || code != 0 || n != 1<<30 {
		t.Fatalf("got %d bytes, code %d, %v", n, code, err)
	}
	t.Logf("1 GiB through the step runner in %v", time.Since(start))
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

func TestContainerRunner(t *testing.T) {
	need(t)
	b := newBackend(t, Options{})
	job := newJob(t)
	sb := setupJob(t, b, job)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out backendtest.SyncBuffer
	code, err := sb.RunContainer(ctx, &backend.ContainerStep{
		Image: bbImage, Entrypoint: []string{"sh", "-c"},
		Args: []string{"echo from-action > out.txt; echo $A; exit 3"},
		Env:  map[string]string{"A": "a-value"}, Dir: sb.Dirs().Sandbox,
	}, &out)
	if err != nil || code != 3 || out.String() != "a-value\n" {
		t.Errorf("RunContainer: %q %d %v", out.String(), code, err)
	}
	if b, err := os.ReadFile(filepath.Join(job.JobDir, "out.txt")); err != nil || string(b) != "from-action\n" {
		t.Errorf("job dir not shared: %q %v", b, err)
	}
	// Cancel kills it promptly.
	cctx, ccancel := context.WithTimeout(ctx, time.Second)
	defer ccancel()
	start := time.Now()
	if _, err := sb.RunContainer(cctx, &backend.ContainerStep{Image: bbImage, Args: []string{"sleep", "100"}}, io.Discard); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled RunContainer: %v", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("cancel took %v", d)
	}
	// Build an image from a Dockerfile and run it.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "build.Dockerfile"), []byte("FROM "+bbImage+"\nCOPY data.txt /data.txt\nRUN echo built >> /data.txt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data.txt"), []byte("copied\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tag := "conveyor-test-built:" + job.ID
	var blog backendtest.SyncBuffer
	if err := sb.BuildImage(ctx, dir, "build.Dockerfile", tag, &blog); err != nil {
		t.Fatalf("build: %v\n%s", err, blog.String())
	}
	defer func() { _, _ = cli.ImageRemove(context.Background(), tag, imageRemoveOptions()) }()
	out = backendtest.SyncBuffer{}
	if code, err := sb.RunContainer(ctx, &backend.ContainerStep{Image: tag, Args: []string{"cat", "/data.txt"}}, &out); err != nil || code != 0 || out.String() != "copied\nbuilt\n" {
		t.Errorf("built image: %q %d %v", out.String(), code, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.Dockerfile"), []byte("FROM "+bbImage+"\nRUN exit 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := sb.BuildImage(ctx, dir, "bad.Dockerfile", tag+"-bad", io.Discard); err == nil {
		t.Error("failing build: no error")
	}
}

// BenchmarkDockerStep is the cost of one step through the step runner.
func BenchmarkDockerStep(b *testing.B) {
	need(b)
	sb := setupJob(b, newBackend(b, Options{}), newJob(b))
	ctx := context.Background()
	p := &backend.Process{Argv: []string{"true"}}
	for b.Loop() {
		if code, err := sb.Exec(ctx, p, io.Discard); err != nil || code != 0 {
			b.Fatal(code, err)
		}
	}
}

// BenchmarkDockerExecTrue is the floor: `true` through the raw exec API.
func BenchmarkDockerExecTrue(b *testing.B) {
	need(b)
	sb := setupJob(b, newBackend(b, Options{}), newJob(b))
	ctx := context.Background()
	for b.Loop() {
		e, err := cli.ContainerExecCreate(ctx, sb.ContainerID(), container.ExecOptions{Cmd: []string{"true"}, AttachStdout: true, AttachStderr: true})
		if err != nil {
			b.Fatal(err)
		}
		att, err := cli.ContainerExecAttach(ctx, e.ID, container.ExecAttachOptions{})
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, att.Reader)
		att.Close()
		info, err := cli.ContainerExecInspect(ctx, e.ID)
		if err != nil || info.ExitCode != 0 {
			b.Fatal(info.ExitCode, err)
		}
	}
}

func imageRemoveOptions() image.RemoveOptions {
	return image.RemoveOptions{Force: true, PruneChildren: true}
}

// A job without services gets no network of its own: its container is on
// the engine's default bridge and reaches the network from there (here a
// web server on the same bridge, by address). With services, or a network
// alias, it is on a per-job network.
func TestNetworkWithoutServices(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	web, err := cli.ContainerCreate(ctx, &container.Config{Image: webImage, Labels: map[string]string{"conveyor.test": "1"}}, &container.HostConfig{}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cli.ContainerRemove(context.Background(), web.ID, container.RemoveOptions{Force: true})
	})
	if err := cli.ContainerStart(ctx, web.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	wi, err := cli.ContainerInspect(ctx, web.ID)
	if err != nil {
		t.Fatal(err)
	}
	addr := wi.NetworkSettings.Networks["bridge"].IPAddress
	if addr == "" {
		t.Fatalf("web server has no bridge address: %+v", wi.NetworkSettings.Networks)
	}

	b := newBackend(t, Options{})
	job := newJob(t)
	sb := setupJob(t, b, job)
	if sb.Network() != "" {
		t.Errorf("job without services got network %q", sb.Network())
	}
	f := filters.NewArgs(filters.Arg("label", LabelJob+"="+job.ID))
	if ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f}); err != nil || len(ns) != 0 {
		t.Errorf("networks of a job without services: %d, %v", len(ns), err)
	}
	out, code := backendtest.Exec(t, sb, &backend.Process{Argv: []string{"wget", "-q", "-O", "-", "http://" + addr + "/"}})
	if code != 0 || out != "hello from httpd\n" {
		t.Errorf("default bridge: %q, %d", out, code)
	}

	job = newJob(t)
	job.Container = &backend.Container{Options: "--network-alias builder"}
	sb = setupJob(t, b, job)
	if sb.Network() == "" {
		t.Fatal("a network alias got no per-job network")
	}
	out, code = backendtest.Exec(t, sb, &backend.Process{Argv: []string{"sh", "-c", "nslookup builder >/dev/null && nslookup job >/dev/null && echo ok"}})
	if code != 0 || out != "ok\n" {
		t.Errorf("aliases on the per-job network: %q, %d", out, code)
	}
}

// EngineRemote on the local engine: the runner binary is copied into the
// container (nothing of this machine is mounted) and the job folder is
// copied in before each step and back after it.
func TestRemoteEngineCopies(t *testing.T) {
	need(t)
	b := newBackend(t, Options{Engine: EngineRemote})
	if !b.Remote() {
		t.Fatal("EngineRemote: not remote")
	}
	backendtest.Run(t, func(t *testing.T) backend.Sandbox {
		sb := setupJob(t, b, newJob(t))
		if !strings.Contains(sb.Describe(), "step runner") || !strings.Contains(sb.Describe(), "copied") {
			t.Fatalf("not the copied step runner: %s", sb.Describe())
		}
		return sb
	})

	job := newJob(t)
	sb := setupJob(t, b, job)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	info, err := cli.ContainerInspect(ctx, sb.ContainerID())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range info.Mounts {
		if m.Type == "bind" {
			t.Errorf("remote engine: bind mount %s -> %s", m.Source, m.Destination)
		}
	}
	host := func(rel string) string { return filepath.Join(job.JobDir, filepath.FromSlash(rel)) }
	write := func(rel, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(host(rel)), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(host(rel), []byte(body), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	// A step reads what the host wrote and writes files the host reads.
	write("temp/step.sh", "set -e\ncat /__w/workspace/in.txt\necho out=1 >> /__w/files/output\nmkdir -p /__w/workspace/dist && echo built > /__w/workspace/dist/a.txt\nln -s a.txt /__w/workspace/dist/link\n")
	write("workspace/in.txt", "from-host\n")
	write("files/output", "")
	out, code := backendtest.Exec(t, sb, &backend.Process{Argv: []string{"sh", "/__w/temp/step.sh"}, Dir: "/__w/workspace"})
	if code != 0 || out != "from-host\n" {
		t.Fatalf("step: %q, %d", out, code)
	}
	for rel, want := range map[string]string{"files/output": "out=1\n", "workspace/dist/a.txt": "built\n", "workspace/dist/link": "built\n"} {
		if b, err := os.ReadFile(host(rel)); err != nil || string(b) != want {
			t.Errorf("%s on the host: %q, %v", rel, b, err)
		}
	}
	// The host changes a file (same size, within the same second) and
	// writes a new one: the next step sees both.
	write("workspace/in.txt", "from-HOST\n")
	write("temp/step2.sh", "cat /__w/workspace/in.txt /__w/files/output\n")
	out, code = backendtest.Exec(t, sb, &backend.Process{Argv: []string{"sh", "/__w/temp/step2.sh"}})
	if code != 0 || out != "from-HOST\nout=1\n" {
		t.Errorf("second step: %q, %d", out, code)
	}
	// A container step shares the job container's copy of the folder.
	var rout backendtest.SyncBuffer
	code, err = sb.RunContainer(ctx, &backend.ContainerStep{
		Image: bbImage, Entrypoint: []string{"sh", "-c"},
		Args: []string{"cat /__w/workspace/in.txt; echo from-action > /__w/workspace/action.txt"},
	}, &rout)
	if err != nil || code != 0 || rout.String() != "from-HOST\n" {
		t.Errorf("RunContainer: %q %d %v", rout.String(), code, err)
	}
	if b, err := os.ReadFile(host("workspace/action.txt")); err != nil || string(b) != "from-action\n" {
		t.Errorf("container step's file on the host: %q, %v", b, err)
	}
	// A host job's container step cannot mount the host's folder.
	if _, err := b.RunContainerMounted(ctx, &backend.ContainerStep{Image: bbImage}, t.TempDir(), "/w", io.Discard); !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "remote") {
		t.Errorf("RunContainerMounted on a remote engine: %v", err)
	}
}

func TestEngine(t *testing.T) {
	for host, local := range map[string]bool{
		"unix:///var/run/docker.sock": true, "npipe:////./pipe/docker_engine": true,
		"tcp://127.0.0.1:2375": false, "ssh://me@build": false, "https://engine:2376": false,
	} {
		if localDaemon(host) != local {
			t.Errorf("localDaemon(%q) = %v", host, !local)
		}
	}
	for in, want := range map[string]Engine{"": EngineAuto, "auto": EngineAuto, "local": EngineLocal, "remote": EngineRemote} {
		if got, err := ParseEngine(in); err != nil || got != want {
			t.Errorf("ParseEngine(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseEngine("ssh"); !errs.Is(err, errs.Invalid) {
		t.Errorf("ParseEngine(ssh): %v", err)
	}
	need(t)
	if b := newBackend(t, Options{}); b.Remote() != !localDaemon(cli.DaemonHost()) {
		t.Errorf("auto: remote %v for %s", b.Remote(), cli.DaemonHost())
	}
	if b := newBackend(t, Options{Engine: EngineLocal}); b.Remote() {
		t.Error("EngineLocal: remote")
	}
}

// TestHardening: a job container keeps JobCapabilities only, cannot gain
// privileges through setuid binaries, and has a memory limit by default;
// the kernel's view inside the container agrees with the inspect.
func TestHardening(t *testing.T) {
	need(t)
	sb := setupJob(t, newBackend(t, Options{}), newJob(t))
	info, err := cli.ContainerInspect(context.Background(), sb.ContainerID())
	if err != nil {
		t.Fatal(err)
	}
	hc := info.HostConfig
	if hc.Privileged || len(hc.CapDrop) != 1 || hc.CapDrop[0] != "ALL" || len(hc.CapAdd) != len(JobCapabilities) {
		t.Errorf("privileged %v, cap drop %v, cap add %v", hc.Privileged, hc.CapDrop, hc.CapAdd)
	}
	if !slices.Contains(hc.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("security options %v", hc.SecurityOpt)
	}
	if hc.Memory <= 0 || hc.Memory > MaxDefaultMemory {
		t.Errorf("default memory limit %d", hc.Memory)
	}
	out, _ := backendtest.Exec(t, sb, &backend.Process{Argv: []string{"sh", "-c", "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status"}})
	// CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4, KILL 5, SETGID 6,
	// SETUID 7, NET_BIND_SERVICE 10: 0b10011111011 = 0x4fb.
	if !strings.Contains(out, "CapEff:\t00000000000004fb") || !strings.Contains(out, "NoNewPrivs:\t1") {
		t.Errorf("inside the container:\n%s", out)
	}
}
