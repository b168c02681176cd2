// Package kubernetes runs each job in a Pod of its own on a Kubernetes
// cluster, through client-go (no kubectl).
//
// The pod, in a namespace made on demand:
//   - an init container of the job's image receives the static conveyor
//     binary through one attach stream of the API (no registry and no
//     node path are needed) and puts it on an emptyDir;
//   - the main container runs `conveyor entrypoint`, the step runner, and
//     the backend keeps ONE attach stream to it for the whole job: every
//     step, and the job folder's sync before and after it (a tar through
//     the runner's standard input and output), goes over that stream, with
//     no API call per step;
//   - the job folder is an emptyDir at /__w shared by the pod's containers;
//   - services: are sidecar containers of the pod, reachable on localhost
//     and, through hostAliases, by their names (as on Docker's network;
//     unlike Docker, two services cannot listen on the same port);
//   - hardening: no service-account token, no privilege escalation, the
//     RuntimeDefault seccomp profile, a short grace period.
//
// Teardown deletes the pod and waits until it is gone; ReapOrphans deletes
// the pods of Conveyor processes that died, found by their labels.
package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/docker"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Labels and annotations on everything the backend makes.
const (
	// LabelManaged is "conveyor" on every pod and namespace made here.
	LabelManaged = "app.kubernetes.io/managed-by"
	// LabelJob is the job's ID, made a valid label value.
	LabelJob = "conveyor.dev/job"
	// AnnotationJob is the job's ID as given.
	AnnotationJob = "conveyor.dev/job-id"
	// LabelOrg, LabelRepo, LabelRun and LabelJobID are a server job's
	// organisation, repository (made valid label values), run and job
	// (store IDs); LabelLease its lease's fencing token. The sweeper
	// (SweepJobs) finds pods by them; namespaces carry LabelOrg.
	LabelOrg   = "conveyor.dev/org"
	LabelRepo  = "conveyor.dev/repo"
	LabelRun   = "conveyor.dev/run-id"
	LabelJobID = "conveyor.dev/job-store-id"
	LabelLease = "conveyor.dev/lease"
	LabelOrgID = "conveyor.dev/org-id"
	// AnnotationOrg and AnnotationRepo are the names as given.
	AnnotationOrg  = "conveyor.dev/org-name"
	AnnotationRepo = "conveyor.dev/repo-name"
	// AnnotationOwner names the Conveyor process that made the pod:
	// "host/pid/start" (see docker.LabelOwner).
	AnnotationOwner = "conveyor.dev/owner"
	managedBy       = "conveyor"
)

const (
	// DefaultNamespace is where pods go when Options.Namespace is empty.
	DefaultNamespace = "conveyor"
	// DefaultSandboxDir is where the job folder is in the pod.
	DefaultSandboxDir = "/__w"
	runnerDir         = "/__conveyor"
	runnerPath        = runnerDir + "/conveyor"
	jobContainer      = "job"
	installContainer  = "conveyor-install"
)

// Options configure the kubernetes backend.
type Options struct {
	// Config reaches the cluster (LoadConfig reads a kubeconfig).
	Config *rest.Config
	// Namespace is where job pods go; made when missing. "": conveyor.
	Namespace string
	// NamespacePrefix, when set, puts each server job's pod in its
	// organisation's namespace, PREFIX + the organisation's name (made on
	// demand, labelled with it); jobs without an organisation (conveyor
	// run) still go to Namespace.
	NamespacePrefix string
	// RunnerBinary is the static conveyor binary streamed into each pod;
	// "": this executable.
	RunnerBinary string
	// SandboxDir is the job folder's path in the pod; "": /__w.
	SandboxDir string
	// StartTimeout bounds scheduling, image pulls, the runner's install
	// and the services' readiness; 0: 5 minutes.
	StartTimeout time.Duration
	// PendingTimeout bounds the wait for the pod to be scheduled and its
	// first container to start (0: StartTimeout alone); past it Setup
	// fails with kind Unavailable wrapping backend.ErrNoRoom, so that a
	// pool scheduler moves the job to another cluster.
	PendingTimeout time.Duration
	// NodeSelector is put on every pod; a job's backend.Placement (its
	// runs-on labels' profiles) adds to it, and wins for a label both give.
	NodeSelector map[string]string
	// Tolerations are put on every pod, with the job's Placement's.
	Tolerations []corev1.Toleration
	// RuntimeClassName is the pods' RuntimeClass (gVisor, Kata); a job's
	// backend.JobSpec.Runtime overrides it. "": the cluster's default.
	RuntimeClassName string
	// RunAsUser runs the job container as this user (non-root where the
	// image allows); nil: the image's user.
	RunAsUser *int64
	// ActiveDeadline bounds a pod's life (activeDeadlineSeconds); 0: none.
	// A job's timeout plus DeadlineMargin bounds it when shorter.
	ActiveDeadline time.Duration
	// GracePeriod is the pods' terminationGracePeriodSeconds; 0: 2 s.
	GracePeriod time.Duration
	// PullPolicy of the images; "": IfNotPresent.
	PullPolicy corev1.PullPolicy
	// EgressAllow are CIDRs that jobs of network policy no-private may
	// reach although private: the server's endpoint.
	EgressAllow []string
	// Images gives the configuration of the images of the steps a job
	// announces (JobSpec.ImageSteps): those steps then run in step
	// containers started with the pod, ordered by wait files (see
	// waitfile.go). nil, or a lookup that fails: ephemeral containers.
	Images ImageConfigs
	// Log gets debug notes (why an image step is not prepared); nil: none.
	Log *slog.Logger
}

// Backend is the kubernetes backend. It is safe for concurrent use.
type Backend struct {
	cs    kubernetes.Interface
	cfg   *rest.Config
	opts  Options
	owner string
	// applied is what ensureTenancy applied, by object.
	appliedMu sync.Mutex
	applied   map[string]string
	// sidecar says whether the cluster runs native sidecars.
	sidecar sidecarSupport
	// serviceArgs, set by tests only, gives service containers arguments
	// (workflow services have none).
	serviceArgs func(backend.Service) []string
	// classes are the RuntimeClasses seen on the cluster (name → true).
	classes sync.Map
	// installReader, set by tests only, wraps the runner binary streamed
	// into a pod (to cut a stream short).
	installReader func(io.Reader) io.Reader
}

var _ backend.Backend = (*Backend)(nil)

// LoadConfig reads a kubeconfig file ("": the default loading rules:
// $KUBECONFIG, ~/.kube/config) and its context ("": the current one).
func LoadConfig(kubeconfig, kubeContext string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	if err != nil {
		return nil, errs.Wrap("kubernetes: kubeconfig", errs.Invalid, err)
	}
	return cfg, nil
}

// New returns a kubernetes backend. It does not contact the cluster; see
// Ping.
func New(opts Options) (*Backend, error) {
	if opts.Config == nil {
		return nil, errs.E("kubernetes: new", errs.Invalid, "no cluster configuration (kubeconfig)")
	}
	cfg := rest.CopyConfig(opts.Config)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100 // client-go's 5/10 would throttle parallel jobs
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, errs.Wrap("kubernetes: client", errs.Invalid, err)
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	if opts.RunnerBinary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, errs.Wrap("kubernetes: runner binary", errs.Invalid, err)
		}
		opts.RunnerBinary = exe
	}
	if opts.SandboxDir == "" {
		opts.SandboxDir = DefaultSandboxDir
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 5 * time.Minute
	}
	if opts.GracePeriod == 0 {
		opts.GracePeriod = 2 * time.Second
	}
	if opts.PullPolicy == "" {
		opts.PullPolicy = corev1.PullIfNotPresent
	}
	return &Backend{cs: cs, cfg: cfg, opts: opts, owner: docker.Owner(), applied: map[string]string{}}, nil
}

// Name implements backend.Backend.
func (b *Backend) Name() string { return "kubernetes" }

// Namespace is where the backend puts pods.
func (b *Backend) Namespace() string { return b.opts.Namespace }

// Clientset is the backend's API client.
func (b *Backend) Clientset() kubernetes.Interface { return b.cs }

// Ping checks that the cluster answers.
func (b *Backend) Ping(ctx context.Context) error {
	if _, err := b.cs.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Raw(); err != nil {
		return errs.Wrap("kubernetes: ping", kindOf(err), err)
	}
	return nil
}

// NamespaceOf is the namespace of a job's pod: its organisation's with a
// NamespacePrefix, else Options.Namespace.
func (b *Backend) NamespaceOf(t backend.Tenant) string {
	if b.opts.NamespacePrefix == "" || t.Org == "" {
		return b.opts.Namespace
	}
	return dnsName(b.opts.NamespacePrefix+t.Org, 63)
}

// ensureNamespace makes namespace name when it is missing, labelled with
// the organisation org ("": none).
func (b *Backend) ensureNamespace(ctx context.Context, name, org string) error {
	const op = "kubernetes: namespace"
	_, err := b.cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return errs.Wrap(op+" "+name, kindOf(err), err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelManaged: managedBy}}}
	if org != "" {
		ns.Labels[LabelOrg] = labelValue(org)
		ns.Annotations = map[string]string{AnnotationOrg: org}
	}
	if _, err := b.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return errs.Wrap(op+" "+name, kindOf(err), err)
	}
	return nil
}

// labelValue makes s a valid label value (63 characters at most).
func labelValue(s string) string { return dnsName(s, 63) }

// Setup implements backend.Backend: the pod, the runner's install, the
// services' readiness, then one attach stream to the step runner. On error
// it deletes the pod.
func (b *Backend) Setup(ctx context.Context, job *backend.JobSpec, log io.Writer) (backend.Sandbox, error) {
	if log == nil {
		log = io.Discard
	}
	spec, err := b.podSpec(job)
	if err != nil {
		return nil, err
	}
	if err := b.preparePod(ctx, spec, job); err != nil {
		return nil, err
	}
	ws := b.planWaiters(ctx, job)
	s, err := b.setupPod(ctx, job, spec, ws, log)
	if err != nil && len(ws) > 0 && ctx.Err() == nil && waiterFailed(err, ws) {
		// A step container's image cannot run here (a node that cannot
		// pull what the registry served): the pod again without them,
		// the image steps in ephemeral containers.
		fmt.Fprintf(log, "A step container did not start (%v); making the pod again without step containers\n", err)
		s, err = b.setupPod(ctx, job, spec, nil, log)
	}
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return s, nil
}

// setupPod makes the job's pod from spec with the step containers ws
// (none: the runner's install is a native sidecar where the cluster has
// them; with some, an init container, so that their command, the
// installed binary, is there when they start).
func (b *Backend) setupPod(ctx context.Context, job *backend.JobSpec, spec *corev1.Pod, ws []*waiter, log io.Writer) (*Sandbox, error) {
	spec = spec.DeepCopy()
	b.addWaiters(spec, ws)
	if len(ws) == 0 && b.sidecars(ctx) {
		asSidecar(spec)
	}
	if len(ws) > 0 {
		fmt.Fprintf(log, "Step containers: %d (images %s)\n", len(ws), waiterImages(ws))
	}
	var s *Sandbox
	err := withFreshPods(ctx, log, func() (err error) {
		s, err = b.makePod(ctx, job, spec, log)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.waiters = ws
	return s, nil
}

func waiterImages(ws []*waiter) string {
	var names []string
	for _, w := range ws {
		names = append(names, w.image)
	}
	return strings.Join(names, ", ")
}

// preparePod checks, before any pod of spec is made, its RuntimeClass and
// the runner binary (and tells the install container its size), and makes
// the pod's namespace and the tenant's policies.
func (b *Backend) preparePod(ctx context.Context, spec *corev1.Pod, job *backend.JobSpec) error {
	if rc := spec.Spec.RuntimeClassName; rc != nil {
		if err := b.checkRuntimeClass(ctx, *rc); err != nil {
			return err
		}
	}
	fi, err := os.Stat(b.opts.RunnerBinary)
	if err != nil || !fi.Mode().IsRegular() {
		return errs.E("kubernetes: runner binary", errs.Invalid, "no runner binary at %s", b.opts.RunnerBinary)
	}
	setRunnerSize(spec, fi.Size())
	if err := b.ensureNamespace(ctx, spec.Namespace, job.Tenant.Org); err != nil {
		return err
	}
	return b.ensureTenancy(ctx, spec.Namespace, job)
}

// withFreshPods runs onePod (a pod's whole life, the pod gone when it
// returns) again while the pod's install stream drops, up to installTries
// pods, saying so in log.
func withFreshPods(ctx context.Context, log io.Writer, onePod func() error) error {
	for try := 1; ; try++ {
		err := onePod()
		if !errors.Is(err, errInstallDropped) || try == installTries || ctx.Err() != nil {
			return err
		}
		fmt.Fprintf(log, "The runner's install stream dropped (%v); making the pod again (try %d of %d)\n", err, try+1, installTries)
	}
}

// makePod creates the job's pod and starts it; a pod that does not start
// is deleted (and gone) before it returns.
func (b *Backend) makePod(ctx context.Context, job *backend.JobSpec, spec *corev1.Pod, log io.Writer) (_ *Sandbox, err error) {
	s := &Sandbox{b: b, job: job, ns: spec.Namespace, name: spec.Name}
	defer func() {
		if err != nil {
			_ = s.Teardown(context.WithoutCancel(ctx))
		}
	}()
	if err := b.createPod(ctx, spec.DeepCopy()); err != nil {
		return nil, err
	}
	s.created = true
	if err := s.start(ctx, log); err != nil {
		return nil, err
	}
	return s, nil
}

// checkRuntimeClass refuses, before anything is made, a RuntimeClass the
// cluster lacks, naming those it has (the API would refuse the pod with a
// Forbidden). Without the right to read RuntimeClasses, the pod's creation
// decides.
func (b *Backend) checkRuntimeClass(ctx context.Context, name string) error {
	if _, ok := b.classes.Load(name); ok {
		return nil
	}
	api := b.cs.NodeV1().RuntimeClasses()
	_, err := api.Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		b.classes.Store(name, true)
	}
	if !apierrors.IsNotFound(err) {
		return nil
	}
	have := "none"
	if l, err := api.List(ctx, metav1.ListOptions{}); err == nil && len(l.Items) > 0 {
		var names []string
		for _, rc := range l.Items {
			names = append(names, rc.Name+" (handler "+rc.Handler+")")
		}
		slices.Sort(names)
		have = strings.Join(names, ", ")
	}
	return errs.E("kubernetes: runtime class", errs.Invalid,
		"the cluster has no RuntimeClass %q (it has %s); create one for a handler of the nodes' container runtime (gVisor: runsc, Kata: kata), or choose another", name, have)
}

// createPod creates the pod; in a namespace just made, it waits (15 s at
// most) for the default service account the admission insists on, and
// while the organisation's ResourceQuota is full (pods of ended jobs still
// going), up to StartTimeout.
func (b *Backend) createPod(ctx context.Context, spec *corev1.Pod) error {
	start := time.Now()
	for {
		_, err := b.cs.CoreV1().Pods(spec.Namespace).Create(ctx, spec, metav1.CreateOptions{})
		if err == nil {
			return nil
		}
		msg := err.Error()
		wait := apierrors.IsForbidden(err) && (strings.Contains(msg, "serviceaccount") && time.Since(start) < 15*time.Second ||
			strings.Contains(msg, "exceeded quota") && time.Since(start) < b.opts.StartTimeout)
		if !wait {
			return errs.Wrap("kubernetes: create pod", kindOf(err), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

var unsafeName = regexp.MustCompile(`[^a-z0-9-]+`)

// dnsName makes s a DNS-1123 label of at most max characters; when s had
// to be changed or cut, a hash of it keeps names apart.
func dnsName(s string, max int) string {
	n := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if n == s && len(n) <= max && n != "" {
		return n
	}
	sum := sha256.Sum256([]byte(s))
	h := hex.EncodeToString(sum[:4])
	if keep := max - len(h) - 1; len(n) > keep {
		n = strings.TrimRight(n[:keep], "-")
	}
	if n == "" {
		return h
	}
	return n + "-" + h
}

// podName is the pod of a job.
func podName(jobID string) string { return dnsName("conveyor-"+jobID, 63) }

// kindOf maps API errors onto error kinds.
func kindOf(err error) errs.Kind {
	switch {
	case apierrors.IsNotFound(err):
		return errs.NotFound
	case apierrors.IsAlreadyExists(err), apierrors.IsConflict(err):
		return errs.Conflict
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return errs.Invalid
	case apierrors.IsForbidden(err):
		return errs.Forbidden
	case apierrors.IsUnauthorized(err):
		return errs.Unauthorized
	case apierrors.IsTimeout(err), apierrors.IsServerTimeout(err):
		return errs.Timeout
	}
	if errs.KindOf(err) != errs.Other {
		return errs.KindOf(err)
	}
	return errs.Unavailable
}
