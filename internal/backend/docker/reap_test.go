package docker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/conveyor-ci/conveyor/internal/backend"
)

func TestOrphaned(t *testing.T) {
	host, _ := os.Hostname()
	self := selfOwner()
	if self == "" {
		t.Fatal("selfOwner is empty on linux")
	}
	start, _ := procStart(os.Getpid())
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	gone := cmd.Process.Pid
	for _, c := range []struct {
		owner string
		want  bool
	}{
		{self, false},
		{fmt.Sprintf("%s/%d/%d", host, gone, 12345), true},          // process gone
		{fmt.Sprintf("%s/%d/%d", host, os.Getpid(), start+1), true}, // pid reused by another process
		{fmt.Sprintf("other-%s/%d/%d", host, gone, 12345), false},   // another host's
		{"", false}, {"garbage", false}, {host + "/x/1", false}, {host + "/0/1", false},
	} {
		if got := orphaned(c.owner); got != c.want {
			t.Errorf("orphaned(%q) = %v, want %v", c.owner, got, c.want)
		}
	}
}

// A job whose Conveyor process died keeps its container and network until
// a Conveyor process of the same host reaps them; live owners' and other
// hosts' jobs are left alone.
func TestReapOrphans(t *testing.T) {
	need(t)
	host, _ := os.Hostname()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	// The dead owner is on a host of this test's own: the other Conveyor
	// processes on the machine (other test packages) must not reap it first.
	host = fmt.Sprintf("%s-reap-test-%d", host, os.Getpid())
	dead := newBackend(t, Options{})
	dead.owner = fmt.Sprintf("%s/%d/%d", host, cmd.Process.Pid, 1)
	other := newBackend(t, Options{})
	other.owner = "some-other-host/1/1"
	live := newBackend(t, Options{})
	start, ok := procStart(os.Getpid())
	if !ok {
		t.Fatal("no start time of this process")
	}
	live.owner = fmt.Sprintf("%s/%d/%d", host, os.Getpid(), start) // this test: alive

	jd, jo, jl := newJob(t), newJob(t), newJob(t)
	jd.Container = &backend.Container{Options: "--network-alias dead"} // an alias needs a per-job network
	setupJob(t, dead, jd)                                              // never torn down by its (dead) owner
	setupJob(t, other, jo)
	setupJob(t, live, jl)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reaper := newBackend(t, Options{})
	reaper.reapHost = host
	n, err := reaper.ReapOrphans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Errorf("ReapOrphans removed %d resources, want at least the dead job's container and network", n)
	}
	assertGone(t, jd.ID)
	for _, id := range []string{jo.ID, jl.ID} {
		f := filters.NewArgs(filters.Arg("label", LabelJob+"="+id))
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 {
			t.Errorf("job %s has %d containers after the reap, want its 1", id, len(cs))
		}
	}
}
