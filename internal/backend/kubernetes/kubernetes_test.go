package kubernetes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/backendtest"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/testenv"
	"github.com/conveyor-ci/conveyor/internal/testimage"
)

var (
	tmpRoot   string
	binary    string
	binaryErr error
)

func TestMain(m *testing.M) {
	klog.SetLogger(logr.Discard()) // client-go's notes on closed attach streams
	code := func() int {
		var err error
		tmpRoot, err = os.MkdirTemp("", "conveyor-k8s-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(tmpRoot)
		return m.Run()
	}()
	os.Exit(code)
}

// testNamespace keeps test pods apart from anything else on the cluster.
const testNamespace = "conveyor-test"

func newBackend(t testing.TB, opts Options) *Backend {
	t.Helper()
	kc := testenv.Kubeconfig(t)
	if binary == "" && binaryErr == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		var note string
		binary, note, binaryErr = testimage.Conveyor(ctx, tmpRoot)
		cancel()
		if note != "" {
			fmt.Fprintln(os.Stderr, "kubernetes tests:", note)
		}
	}
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	cfg, err := LoadConfig(kc, "")
	if err != nil {
		t.Fatal(err)
	}
	opts.Config = cfg
	if opts.Namespace == "" {
		opts.Namespace = testNamespace
	}
	opts.RunnerBinary = binary
	opts.PullPolicy = corev1.PullNever // images are imported, there is no registry
	b, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newJob(t testing.TB) *backend.JobSpec { return backendtest.NewJob(t, testenv.BusyboxImage(t)) }

func setupJob(t testing.TB, b *Backend, job *backend.JobSpec) *Sandbox {
	t.Helper()
	return backendtest.Setup(t, b, job, 3*time.Minute, func(id string) { assertGone(t, b, id) }).(*Sandbox)
}

// assertGone checks that no pod labelled with the job is left.
func assertGone(t testing.TB, b *Backend, jobID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := b.cs.CoreV1().Pods(b.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelJob + "=" + dnsName(jobID, 63)})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 0 {
		t.Errorf("job %s left %d pods", jobID, len(l.Items))
	}
}

func TestConformance(t *testing.T) {
	b := newBackend(t, Options{})
	backendtest.Run(t, func(t *testing.T) backend.Sandbox {
		sb := setupJob(t, b, newJob(t))
		if d := sb.Describe(); !strings.Contains(d, "step runner") || !strings.Contains(d, "attach") {
			t.Errorf("describe: %q", d)
		}
		return sb
	})
}

// Steps see the job folder's files, their env, and what one step writes
// the next sees and the host gets back (GITHUB_OUTPUT and the like).
func TestJobFolderAndEnv(t *testing.T) {
	b := newBackend(t, Options{})
	job := newJob(t)
	job.Container = &backend.Container{Env: map[string]string{"FROM_JOB": "job-env"}}
	sb := setupJob(t, b, job)
	dirs := sb.Dirs()
	if err := os.MkdirAll(filepath.Join(dirs.Host, "w"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirs.Host, "w", "script.sh"), []byte("echo \"$GREETING from $(pwd) $FROM_JOB\"\necho out=42 >>\"$1\"\nexit 7\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, code := backendtest.Exec(t, sb, &backend.Process{
		Argv: []string{"sh", dirs.Sandbox + "/w/script.sh", dirs.Sandbox + "/w/output"},
		Env:  map[string]string{"GREETING": "hello"},
		Dir:  dirs.Sandbox + "/w",
	})
	if code != 7 || out != "hello from "+dirs.Sandbox+"/w job-env\n" {
		t.Fatalf("code %d, output %q", code, out)
	}
	got, err := os.ReadFile(filepath.Join(dirs.Host, "w", "output"))
	if err != nil || string(got) != "out=42\n" {
		t.Fatalf("output file on the host: %q %v", got, err)
	}
	// A change on the host reaches the next step.
	if err := os.WriteFile(filepath.Join(dirs.Host, "w", "output"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = backendtest.Exec(t, sb, &backend.Process{Argv: []string{"cat", dirs.Sandbox + "/w/output"}})
	if code != 0 || out != "changed\n" {
		t.Fatalf("second step: %d %q", code, out)
	}
	// The hardening: no service-account token, no privilege escalation.
	out, _ = backendtest.Exec(t, sb, &backend.Process{Argv: []string{"sh", "-c", "ls /var/run/secrets/kubernetes.io 2>&1; grep NoNewPrivs /proc/self/status"}})
	if !strings.Contains(out, "No such file") || !strings.Contains(out, "NoNewPrivs:\t1") {
		t.Errorf("hardening: %q", out)
	}
}

// Services are sidecars, reachable by their names; one with a health
// check is ready before the first step.
func TestServices(t *testing.T) {
	b := newBackend(t, Options{})
	job := newJob(t)
	bb := testenv.BusyboxImage(t)
	// Workflow services have no command: the test gives the sidecars
	// theirs (an HTTP server, a TCP server that starts late, so that the
	// readiness probe must hold the job back) through the test seam.
	job.Services = []backend.Service{{
		Name:    "web",
		Image:   bb,
		Options: `--entrypoint sh --health-cmd "wget -q -O- http://127.0.0.1:8080/ok" --health-interval 1s`,
		Env:     map[string]string{"CMD": "mkdir -p /srv && echo hi >/srv/ok && exec httpd -f -p 8080 -h /srv"},
	}, {
		Name:    "db",
		Image:   bb,
		Options: `--entrypoint sh --health-cmd "nc -w 1 127.0.0.1 5432 </dev/null" --health-interval 1s`,
		Env:     map[string]string{"CMD": "sleep 2; exec nc -ll -p 5432 -e echo pong"},
	}}
	b.serviceArgs = func(svc backend.Service) []string { return []string{"-c", svc.Env["CMD"]} }
	pod, err := b.podSpec(job)
	if err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.Containers) != 3 || pod.Spec.HostAliases[0].Hostnames[1] != "db" || pod.Spec.Containers[2].ReadinessProbe == nil {
		t.Fatalf("pod: %+v", pod.Spec)
	}
	sb := setupJob(t, b, job)
	out, code := backendtest.Exec(t, sb, &backend.Process{Argv: []string{"sh", "-c", "wget -q -O- http://web:8080/ok && echo | nc db 5432"}})
	if code != 0 || out != "hi\npong\n" {
		t.Fatalf("services: %d %q", code, out)
	}
}

// Cancelling a step kills it promptly, and the next step runs.
func TestCancelThenRun(t *testing.T) {
	b := newBackend(t, Options{})
	sb := setupJob(t, b, newJob(t))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(time.Second, cancel)
	start := time.Now()
	_, err := sb.Exec(ctx, &backend.Process{Argv: []string{"sh", "-c", "sleep 300"}}, nil)
	if err == nil || time.Since(start) > 30*time.Second {
		t.Fatalf("cancelled step: err %v after %v", err, time.Since(start))
	}
	out, code := backendtest.Exec(t, sb, &backend.Process{Argv: []string{"sh", "-c", "ps | grep -c '[s]leep 300' || true"}})
	if code != 0 || strings.TrimSpace(out) != "0" {
		t.Errorf("after cancel: %d %q", code, out)
	}
}

// Setup errors are clear and leave nothing behind.
func TestSetupErrors(t *testing.T) {
	b := newBackend(t, Options{})
	for name, mod := range map[string]func(*backend.JobSpec){
		"missing image": func(j *backend.JobSpec) { j.Image = "conveyor-test/no-such-image:1" },
		"bad option":    func(j *backend.JobSpec) { j.Container = &backend.Container{Options: "--privileged"} },
		"network":       func(j *backend.JobSpec) { j.Network = "closed" },
		"volumes":       func(j *backend.JobSpec) { j.Container = &backend.Container{Volumes: []string{"/a:/b"}} },
	} {
		t.Run(name, func(t *testing.T) {
			job := newJob(t)
			mod(job)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			sb, err := b.Setup(ctx, job, nil)
			if err == nil {
				_ = sb.Teardown(ctx)
				t.Fatal("setup succeeded")
			}
			if sb != nil {
				t.Errorf("a failed Setup returned a sandbox: %#v", sb)
			}
			if errs.KindOf(err) == errs.Other && name != "missing image" {
				t.Errorf("error without a kind: %v", err)
			}
			t.Log(err)
			assertGone(t, b, job.ID)
		})
	}
}

// A pod whose owner process is gone is reaped; one of a live owner is not.
func TestReapOrphans(t *testing.T) {
	b := newBackend(t, Options{})
	live := setupJob(t, b, newJob(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	host, _ := os.Hostname()
	dead := &Backend{cs: b.cs, cfg: b.cfg, opts: b.opts, owner: host + "/999999999/1"}
	job := newJob(t)
	spec, err := dead.podSpec(job)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.cs.CoreV1().Pods(b.opts.Namespace).Create(ctx, spec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	n, err := b.ReapOrphans(ctx)
	if err != nil || n < 1 {
		t.Fatalf("reaped %d, %v", n, err)
	}
	if _, err := b.cs.CoreV1().Pods(b.opts.Namespace).Get(ctx, live.Pod(), metav1.GetOptions{}); err != nil {
		t.Errorf("live pod: %v", err)
	}
	for {
		_, err := b.cs.CoreV1().Pods(b.opts.Namespace).Get(ctx, spec.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("orphan pod still there")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestPodSpec(t *testing.T) {
	b := &Backend{opts: Options{Namespace: "ns", SandboxDir: DefaultSandboxDir, GracePeriod: 2 * time.Second,
		PullPolicy: corev1.PullIfNotPresent, RuntimeClassName: "gvisor", NodeSelector: map[string]string{"pool": "ci"},
		ActiveDeadline: time.Hour}, owner: "h/1/2"}
	job := &backend.JobSpec{ID: "Run 7/Job_A:1", Name: "a", JobDir: "/tmp/x", Image: "img",
		Resources: backend.Resources{CPUs: 2, MemoryBytes: 1 << 30},
		Container: &backend.Container{Options: "--cpus 1 --user 1000:1001"}}
	p, err := b.podSpec(job)
	if err != nil {
		t.Fatal(err)
	}
	s := p.Spec
	c := s.Containers[0]
	switch {
	case len(p.Name) > 63 || strings.ContainsAny(p.Name, " /_:A"):
		t.Errorf("name %q", p.Name)
	case p.Annotations[AnnotationJob] != job.ID || p.Labels[LabelManaged] != "conveyor":
		t.Errorf("meta %+v", p.ObjectMeta)
	case *s.AutomountServiceAccountToken || *s.ActiveDeadlineSeconds != 3600 || *s.RuntimeClassName != "gvisor" || s.NodeSelector["pool"] != "ci":
		t.Errorf("spec %+v", s)
	case c.Resources.Limits.Cpu().String() != "1" || c.Resources.Limits.Memory().String() != "1Gi":
		t.Errorf("limits %v", c.Resources.Limits)
	case *c.SecurityContext.AllowPrivilegeEscalation || *c.SecurityContext.RunAsUser != 1000 || *c.SecurityContext.RunAsGroup != 1001:
		t.Errorf("security %+v", c.SecurityContext)
	case c.Command[0] != runnerPath || !c.Stdin || !c.StdinOnce:
		t.Errorf("job container %+v", c)
	}
	job.Container.Options = "--hostname a.b"
	if _, err := b.podSpec(job); !errs.Is(err, errs.Invalid) {
		t.Errorf("dotted host name: %v", err)
	}
	job.Container.Options = ""
	job.Runtime = "kata"
	if p, _ := b.podSpec(job); *p.Spec.RuntimeClassName != "kata" {
		t.Errorf("runtime class %q", *p.Spec.RuntimeClassName)
	}
	if n := dnsName(strings.Repeat("x", 100), 63); len(n) != 63 {
		t.Errorf("dnsName length %d", len(n))
	}
}
