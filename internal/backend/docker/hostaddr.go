package docker

import (
	"context"
	"net"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/docker/docker/api/types/network"
)

// HostAddress is the address at which job containers reach this host: the
// gateway of the engine's default bridge (docker0), which every
// container's route to the host goes through, on the default bridge and on
// the per-job networks alike. A service for containers (the cache) listens
// there, not on every interface. With a remote engine the bridge is on
// another machine: errs.Unavailable.
func (b *Backend) HostAddress(ctx context.Context) (string, error) {
	const op = "docker: host address"
	if b.remote {
		return "", errs.E(op, errs.Unavailable, "the Docker engine is remote: its containers cannot reach this host's bridge")
	}
	nw, err := b.cli.NetworkInspect(ctx, "bridge", network.InspectOptions{})
	if err != nil {
		return "", errs.Wrap(op, kindOf(err), err)
	}
	for _, c := range nw.IPAM.Config {
		if ip := net.ParseIP(c.Gateway); ip != nil && ip.To4() != nil {
			return c.Gateway, nil
		}
	}
	// Newer engines leave Gateway empty: the bridge interface holds it.
	name := nw.Options["com.docker.network.bridge.name"]
	if name == "" {
		name = "docker0"
	}
	if ifc, err := net.InterfaceByName(name); err == nil {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				return ipn.IP.String(), nil
			}
		}
	}
	return "", errs.E(op, errs.NotFound, "the default bridge has no IPv4 gateway")
}
