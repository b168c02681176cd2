package docker

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// LabelOwner names, on everything the backend creates, the Conveyor
// process that made it: "host/pid/start", start being the process's start
// time in clock ticks since boot (/proc/PID/stat), so that a reused pid is
// not taken for the owner.
const LabelOwner = "conveyor.owner"

// selfOwner is this process's owner label ("" when it cannot be told).
func selfOwner() string {
	host, err := os.Hostname()
	if err != nil {
		return ""
	}
	start, ok := procStart(os.Getpid())
	if !ok {
		return ""
	}
	return fmt.Sprintf("%s/%d/%d", host, os.Getpid(), start)
}

// procStart reads a process's start time (field 22 of /proc/PID/stat).
func procStart(pid int) (uint64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may hold spaces and parentheses: fields
	// are counted after its last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 { // state is field 3, starttime field 22
		return 0, false
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	return v, err == nil
}

// orphaned reports whether an owner label names a process of this host
// that is gone. Owners on other hosts (a shared engine) are never orphaned
// from here.
func orphaned(owner string) bool {
	host, err := os.Hostname()
	if err != nil {
		return false
	}
	return orphanedOn(host, owner)
}

// orphanedOn is orphaned as seen from host.
func orphanedOn(host, owner string) bool {
	parts := strings.Split(owner, "/")
	if len(parts) != 3 || parts[0] != host {
		return false
	}
	pid, err1 := strconv.Atoi(parts[1])
	start, err2 := strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return false
	}
	got, alive := procStart(pid)
	return !alive || got != start
}

// orphaned is orphaned, or orphanedOn the host a test gave b (reapHost),
// whose owners no other Conveyor process on the machine takes for its own.
func (b *Backend) orphaned(owner string) bool {
	if b.reapHost != "" {
		return orphanedOn(b.reapHost, owner)
	}
	return orphaned(owner)
}

// labels are the labels of a resource made for job.
func (b *Backend) labels(jobID string, kv ...string) map[string]string {
	m := map[string]string{LabelJob: jobID}
	if b.owner != "" {
		m[LabelOwner] = b.owner
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// ReapOrphans removes the containers and networks that a Conveyor process
// of this host made and could not remove because it died (kill -9, power
// loss): their owner process is gone. Others' resources are left alone. It
// returns how many containers and networks it removed.
func (b *Backend) ReapOrphans(ctx context.Context) (int, error) {
	const op = "docker: reap orphans"
	f := filters.NewArgs(filters.Arg("label", LabelOwner))
	ctrs, err := b.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return 0, errs.Wrap(op, kindOf(err), err)
	}
	n := 0
	var firstErr error
	for _, c := range ctrs {
		if !b.orphaned(c.Labels[LabelOwner]) {
			continue
		}
		err := b.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		switch {
		case err == nil:
			n++
		case firstErr == nil:
			firstErr = errs.Wrap(op, kindOf(err), err)
		}
	}
	nets, err := b.cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return n, errs.Wrap(op, kindOf(err), err)
	}
	for _, nw := range nets {
		if !b.orphaned(nw.Labels[LabelOwner]) {
			continue
		}
		err := b.cli.NetworkRemove(ctx, nw.ID)
		switch {
		case err == nil:
			n++
		case firstErr == nil:
			firstErr = errs.Wrap(op, kindOf(err), err)
		}
	}
	return n, firstErr
}
