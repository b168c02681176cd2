package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/authn"
	"k8s.io/klog/v2"

	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/backend/kubernetes"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/imageconfig"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// kubeFlags select and configure the kubernetes backend (--backend kubernetes).
type kubeFlags struct {
	kubeconfig, context, namespace, runtimeClass string
	namespacePrefix                              string
	nodeSelector, egressAllow                    listFlag
	deadline                                     time.Duration
}

func (k *kubeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.kubeconfig, "kubeconfig", "", "kubernetes backend: the cluster's kubeconfig (default $KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&k.context, "kube-context", "", "kubernetes backend: the kubeconfig context (default: its current one)")
	fs.StringVar(&k.namespace, "namespace", kubernetes.DefaultNamespace, "kubernetes backend: the namespace of job pods (made when missing)")
	fs.StringVar(&k.namespacePrefix, "namespace-prefix", "", "kubernetes backend (server, agent): put each organisation's job pods in namespace PREFIX+ORG, made on demand (default: all in --namespace)")
	fs.StringVar(&k.runtimeClass, "runtime-class", "", "kubernetes backend: RuntimeClass of job pods, e.g. gvisor (--runtime overrides it)")
	fs.Var(&k.nodeSelector, "node-selector", "kubernetes backend: LABEL=VALUE every job pod's node must carry (repeatable)")
	fs.Var(&k.egressAllow, "egress-allow", "kubernetes backend: CIDR that jobs of network policy no-private may reach although private, e.g. the server's address/32 (repeatable)")
	fs.DurationVar(&k.deadline, "pod-deadline", 0, "kubernetes backend: activeDeadlineSeconds of job pods, e.g. 6h (0: none)")
}

// imageConfigs reads the configuration of step images from their
// registries for the kubernetes backend's step containers: anonymously,
// or with the credentials of the docker config of the user running
// Conveyor ($DOCKER_CONFIG, ~/.docker/config.json and its credential
// helpers).
func imageConfigs() *imageconfig.Resolver {
	return imageconfig.New(imageconfig.Options{Keychain: authn.DefaultKeychain})
}

// open connects the kubernetes backend, with the host backend beside it
// for self-hosted jobs.
func (k *kubeFlags) open(ctx context.Context, stderr io.Writer) (*backends, error) {
	// client-go logs through klog, e.g. each attach stream closed at a
	// job's teardown; the backend reports what matters as errors.
	klog.SetLogger(logr.Discard())
	sel := map[string]string{}
	for _, kv := range k.nodeSelector {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--node-selector %q: want LABEL=VALUE", kv)
		}
		sel[name] = val
	}
	for _, c := range k.egressAllow {
		if _, _, err := net.ParseCIDR(c); err != nil {
			return nil, fmt.Errorf("--egress-allow %q: want a CIDR, e.g. 10.0.0.5/32", c)
		}
	}
	cfg, err := kubernetes.LoadConfig(k.kubeconfig, k.context)
	if err != nil {
		return nil, fmt.Errorf("kubernetes backend: %v", err)
	}
	kb, err := kubernetes.New(kubernetes.Options{Config: cfg, Namespace: k.namespace, NamespacePrefix: k.namespacePrefix, RuntimeClassName: k.runtimeClass,
		NodeSelector: sel, ActiveDeadline: k.deadline, EgressAllow: k.egressAllow, Images: imageConfigs(), Log: slog.Default()})
	if err != nil {
		return nil, fmt.Errorf("kubernetes backend: %v", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = kb.Ping(pctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("kubernetes backend: the cluster does not answer: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if n, err := kb.ReapOrphans(rctx); n > 0 || err != nil {
			fmt.Fprintf(stderr, "conveyor: deleted %d job pods left by Conveyor processes that died or by ended jobs (%v)\n", n, err)
		}
	}()
	h := host.New(host.Options{})
	return &backends{main: kb, host: h, close: func() {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
	}}, nil
}

// openBackends is openBackends with the run's flags: kubernetes, or the
// others.
func (f *runFlags) openBackends(ctx context.Context, stderr io.Writer) (*backends, error) {
	if f.backendName == "kubernetes" {
		return f.kube.open(ctx, stderr)
	}
	return openBackends(ctx, f.backendName, f.dockerEngine, stderr, f.tools.options(runToolCache()))
}

// openJobBackends is openBackendsWith for the server and agents, with the
// kubernetes backend (--backend kubernetes) beside docker and host.
func openJobBackends(ctx context.Context, name, engine string, kube *kubeFlags, stderr io.Writer, runner []string, tools toolOptions) (*backends, error) {
	if name == "kubernetes" {
		return kube.open(ctx, stderr)
	}
	return openBackendsWith(ctx, name, engine, stderr, runner, tools)
}

// sweepJobPods deletes, every interval until ctx ends, the job pods whose
// job the store says is over (see jobOver). The returned func stops it
// and waits for it.
func sweepJobPods(ctx context.Context, kb *kubernetes.Backend, st store.Store, every time.Duration, log *slog.Logger) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			sctx, scancel := context.WithTimeout(ctx, every)
			n, err := kb.SweepJobs(sctx, jobOver(st))
			scancel()
			if n > 0 || (err != nil && ctx.Err() == nil) {
				log.Info("deleted job pods of finished or unknown jobs", "pods", n, "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

// jobOver says a pod's job is over: finished, unknown to the store, not
// running, or leased again since the pod was made (a newer token).
func jobOver(st store.Store) kubernetes.JobDone {
	return func(ctx context.Context, orgID, jobID, lease int64) (bool, error) {
		j, err := st.GetJob(ctx, orgID, jobID)
		if errs.KindOf(err) == errs.NotFound {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return j.Status != store.StatusRunning || j.LeaseToken != lease, nil
	}
}
