package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	dockerclient "github.com/docker/docker/client"

	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// TestRunKilledLeavesNothingForLong: `conveyor run` on the docker backend
// is killed with SIGKILL mid-job, so its teardown never runs; the next
// Conveyor process on the host removes the dead one's container and
// network.
func TestRunKilledLeavesNothingForLong(t *testing.T) {
	skipShort(t)
	image := testenv.BusyboxImage(t)
	testenv.DockerAvailable(t)
	cli, err := dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	repo := t.TempDir()
	wf := filepath.Join(repo, ".github", "workflows")
	if err := os.MkdirAll(wf, 0o755); err != nil {
		t.Fatal(err)
	}
	// A network alias gives the job a network of its own (a job without
	// services or aliases has none), so that the reaping of networks is
	// covered too.
	flow := "on: push\njobs:\n  slow:\n    runs-on: ubuntu-latest\n    container: {image: " + image + ", options: --network-alias slow}\n    steps:\n      - run: echo started; sleep 120\n"
	if err := os.WriteFile(filepath.Join(wf, "slow.yml"), []byte(flow), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(wf, "quick.yml"), []byte(strings.ReplaceAll(flow, "sleep 120", "true")), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(workflow string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, binary, "run", "--no-color", "--backend", "docker", "-P", "ubuntu-latest="+image,
			"-W", filepath.Join(wf, workflow))
		cmd.Dir = repo
		return cmd
	}
	slow := run("slow.yml")
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	slow.Stdout, slow.Stderr = out, out
	if err := slow.Start(); err != nil {
		t.Fatal(err)
	}
	owned := func() (ctrs, nets int) {
		// The owner label is host/pid/start: match the killed pid.
		f := filters.NewArgs(filters.Arg("label", "conveyor.owner"))
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		mark := fmt.Sprintf("/%d/", slow.Process.Pid)
		for _, c := range cs {
			if strings.Contains(c.Labels["conveyor.owner"], mark) {
				ctrs++
			}
		}
		ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			if strings.Contains(n.Labels["conveyor.owner"], mark) {
				nets++
			}
		}
		return ctrs, nets
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(out.Name())
		if strings.Contains(string(b), "started") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the step did not start:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c, n := owned(); c != 1 || n != 1 {
		t.Fatalf("running job owns %d containers and %d networks, want 1 and 1", c, n)
	}
	if err := slow.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = slow.Wait()
	if c, n := owned(); c != 1 || n != 1 {
		t.Fatalf("after SIGKILL the dead run owns %d containers and %d networks, want them left (1 and 1)", c, n)
	}
	quick := run("quick.yml")
	if b, err := quick.CombinedOutput(); err != nil {
		t.Fatalf("next conveyor run: %v\n%s", err, b)
	} else if !strings.Contains(string(b), "left by a Conveyor process that died") {
		t.Errorf("next conveyor run did not say it removed the dead one's resources:\n%s", b)
	}
	if c, n := owned(); c != 0 || n != 0 {
		t.Errorf("after the next run the dead run still owns %d containers and %d networks", c, n)
	}
}
