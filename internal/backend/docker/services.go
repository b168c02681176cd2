package docker

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// startServices starts every service on the job's network, reachable by its
// name, then waits until those with a health check are healthy.
func (s *Sandbox) startServices(ctx context.Context, svcs []backend.Service, opts []*createOptions, log io.Writer) error {
	ids := make([]string, len(svcs))
	for i, svc := range svcs {
		o := opts[i]
		exposed, bindings, err := ports(svc.Ports)
		if err != nil {
			return errs.Wrap("docker: service "+svc.Name, errs.Invalid, err)
		}
		binds, anon := volumes(svc.Volumes)
		cfg := &container.Config{
			Image:        svc.Image,
			Hostname:     o.hostname,
			User:         o.user,
			WorkingDir:   o.workdir,
			Env:          append(envList(svc.Env), o.env...),
			Labels:       s.b.labels(s.job.ID, "conveyor.service", svc.Name),
			ExposedPorts: exposed,
			Volumes:      anon,
			Healthcheck:  o.health,
			Entrypoint:   o.entrypoint,
		}
		if cfg.Hostname == "" {
			cfg.Hostname = svc.Name
		}
		hc := &container.HostConfig{
			NetworkMode:  container.NetworkMode(s.network),
			Binds:        binds,
			PortBindings: bindings,
			Resources:    limits(backend.Resources{}, o),
			ShmSize:      o.shmSize,
		}
		s.b.harden(ctx, hc, s.job.Runtime)
		nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			s.network: {Aliases: append([]string{svc.Name}, o.aliases...)},
		}}
		id, err := s.create(ctx, "docker: create service "+svc.Name, cfg, hc, nc, resourceName(s.job.ID, svc.Name), false, nil, log)
		if err != nil {
			return err
		}
		if err := s.b.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
			return errs.Wrap("docker: start service "+svc.Name, kindOf(err), err)
		}
		fmt.Fprintf(log, "Started service %s (%s)\n", svc.Name, svc.Image)
		ids[i] = id
	}
	wctx, cancel := context.WithTimeout(ctx, s.b.opts.HealthTimeout)
	defer cancel()
	for i, id := range ids {
		if err := s.waitHealthy(wctx, svcs[i].Name, id, log); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
	return nil
}

func (s *Sandbox) waitHealthy(ctx context.Context, name, id string, log io.Writer) error {
	announced := false
	for {
		info, err := s.b.cli.ContainerInspect(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return errs.E("docker: service "+name, errs.Timeout, "not healthy after %v", s.b.opts.HealthTimeout)
			}
			return errs.Wrap("docker: service "+name, kindOf(err), err)
		}
		st := info.State
		if st == nil {
			return errs.E("docker: service "+name, errs.Other, "no state")
		}
		if !st.Running {
			return errs.E("docker: service "+name, errs.Other, "exited with code %d before the job started", st.ExitCode)
		}
		if st.Health == nil {
			return nil // no health check: running is ready
		}
		switch st.Health.Status {
		case container.Healthy:
			fmt.Fprintf(log, "Service %s is healthy\n", name)
			return nil
		case container.Unhealthy:
			var last string
			if n := len(st.Health.Log); n > 0 {
				last = strings.TrimSpace(st.Health.Log[n-1].Output)
			}
			return errs.E("docker: service "+name, errs.Unavailable, "unhealthy: %s", last)
		}
		if !announced {
			fmt.Fprintf(log, "Waiting for service %s to be healthy\n", name)
			announced = true
		}
		select {
		case <-ctx.Done():
			return errs.E("docker: service "+name, errs.Timeout, "not healthy after %v", s.b.opts.HealthTimeout)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
