package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/conveyor-ci/conveyor/internal/backend/docker"
	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/backend/kubernetes"
	"github.com/conveyor-ci/conveyor/internal/pool"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// poolDeps are what the pools of --pools are opened with.
type poolDeps struct {
	engine    string // --docker-engine
	runner    []string
	tools     toolOptions
	platforms map[string]string // the server's runs-on mapping
	store     store.Store       // for the kubernetes pools' sweepers
	stderr    io.Writer
	log       *slog.Logger
}

// openPools opens the backend pools of a --pools file. A kubernetes
// pool whose cluster does not answer yet is not an error: its probe
// keeps it drained until it does (a docker pool needs its engine at
// start). closeAll stops the sweepers and reapers.
func openPools(ctx context.Context, file string, d poolDeps) (_ *pool.Scheduler, _ func(), err error) {
	specs, err := pool.Load(file)
	if err != nil {
		return nil, nil, err
	}
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	var pools []*pool.Pool
	for _, sp := range specs {
		p, stop, err := openPool(ctx, sp, d)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: pool %s: %v", file, sp.Name, err)
		}
		closers = append(closers, stop)
		pools = append(pools, p)
	}
	sched, err := pool.New(pools, d.log)
	if err != nil {
		return nil, nil, err
	}
	return sched, closeAll, nil
}

// openPool opens one pool's backends and probe.
func openPool(ctx context.Context, sp pool.Spec, d poolDeps) (*pool.Pool, func(), error) {
	p := &pool.Pool{Spec: sp}
	switch sp.Kind {
	case pool.Kubernetes:
		kb, err := openKubePool(sp)
		if err != nil {
			return nil, nil, err
		}
		p.Backends = pool.Backends{Main: kb, Host: host.New(host.Options{})}
		p.Probe = kb.Probe
		reaped := make(chan struct{})
		go func() { // as kubeFlags.open: pods of dead Conveyor processes of this host
			defer close(reaped)
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if n, err := kb.ReapOrphans(rctx); n > 0 || err != nil {
				d.log.Info("deleted job pods left by Conveyor processes that died or by ended jobs", "pool", sp.Name, "pods", n, "err", err)
			}
		}()
		stop := sweepJobPods(ctx, kb, d.store, time.Minute, d.log.With("pool", sp.Name))
		return p, func() { stop(); <-reaped }, nil
	case pool.Docker, pool.Host:
		bk, err := openBackendsWith(ctx, string(sp.Kind), d.engine, d.stderr, d.runner, d.tools)
		if err != nil {
			return nil, nil, err
		}
		p.Backends = pool.Backends{Main: bk.main, Host: bk.host, Containers: bk.containers}
		if db, ok := bk.main.(*docker.Backend); ok {
			p.Probe = db.Ping
		}
		if sp.Kind == pool.Host {
			p.Platforms = hostPlatforms(d.platforms)
		}
		return p, bk.close, nil
	}
	return nil, nil, fmt.Errorf("unknown kind %q", sp.Kind)
}

// openKubePool makes a kubernetes pool's backend; it does not contact
// the cluster (the pool's probe does).
func openKubePool(sp pool.Spec) (*kubernetes.Backend, error) {
	klog.SetLogger(logr.Discard()) // as kubeFlags.open: client-go's notes on closed streams
	cfg, err := kubernetes.LoadConfig(sp.Kubeconfig, sp.Context)
	if err != nil {
		return nil, err
	}
	return kubernetes.New(kubernetes.Options{Config: cfg, Namespace: sp.Namespace, NamespacePrefix: sp.NamespacePrefix,
		NodeSelector: sp.NodeSelector, PendingTimeout: sp.PendingDeadline, PullPolicy: corev1.PullIfNotPresent, Images: imageConfigs(), Log: slog.Default()})
}

// openServerPools opens --pools ("": none, nil). Without an explicit
// --workers, the replica runs as many jobs at once as its pools hold.
func openServerPools(ctx context.Context, fs *flag.FlagSet, file string, workers *int, d poolDeps) (*pool.Scheduler, func(), error) {
	if file == "" {
		return nil, func() {}, nil
	}
	sched, closeAll, err := openPools(ctx, file, d)
	if err != nil {
		return nil, nil, err
	}
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "workers" })
	if !set {
		*workers = sched.Capacity()
	}
	return sched, closeAll, nil
}
