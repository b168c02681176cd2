package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/backend/docker"
	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/store"
	"github.com/conveyor-ci/conveyor/internal/testenv"
	"github.com/conveyor-ci/conveyor/internal/testimage"
)

// probeFlow's job asks the server's own port through its network's
// gateway (this machine), by timeout as busybox 1.35's wget -T crashes,
// then its own service. The port is the one of GITHUB_SERVER_URL.
const probeFlow = `name: Probe
on: push
jobs:
  probe:
    runs-on: ubuntu-latest
    services:
      web:
        image: %s
        options: --health-cmd 'wget -q -O /dev/null http://localhost/' --health-interval 500ms --health-retries 20
    steps:
      - name: the server's port
        run: |
          port=${GITHUB_SERVER_URL##*:}
          gw=$(ip route | awk '/^default/ {print $3}')
          [ -n "$gw" ] || gw=$(ip -4 addr show eth0 | awk '/inet/ {split($2,a,"/"); split(a[1],o,"."); print o[1]"."o[2]"."o[3]".1"}')
          echo "asking http://$gw:$port/healthz"
          if timeout 5 wget -q -O - "http://$gw:$port/healthz"; then echo; echo "server: reached"; else echo "server: unreachable"; fi
      - name: its own service
        run: timeout 10 wget -q -O - http://web/
`

// dockerServer is a harness whose jobs run on the Docker engine, listening
// on every address of this machine (so that jobs could reach it), with
// probeFlow pushed.
func dockerServer(t *testing.T) *harness {
	testenv.DockerAvailable(t)
	if os.Geteuid() != 0 {
		t.Skip("network policies need root (iptables); run the docker tests as root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	img, err := testimage.Busybox(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	web, err := testimage.Busybox(ctx, cli, `CMD ["httpd", "-f", "-p", "80", "-h", "/var/www"]`)
	if err != nil {
		t.Fatal(err)
	}
	bin, note, err := testimage.Conveyor(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if note != "" {
		t.Log(note)
	}
	db, err := docker.New(docker.Options{Client: cli, RunnerBinary: bin, HealthTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return newHarness(t, harnessOpts{
		listen:   "0.0.0.0:0",
		cfg:      Config{Platforms: map[string]string{"ubuntu-latest": img}, LeaseTTL: 10 * time.Second},
		files:    map[string]string{".github/workflows/probe.yml": fmt.Sprintf(probeFlow, web), "README.md": "hi\n"},
		backends: &Backends{Main: db, Host: host.New(host.Options{})},
	})
}

// probe pushes a commit and returns the finished run's probe log.
func (h *harness) probe(n int, delivery string) string {
	h.t.Helper()
	h.git.commit("probe "+delivery, map[string]string{"README.md": "probe " + delivery + "\n"})
	if code, body := h.hook("push", h.push("main", "README.md"), delivery); code != http.StatusAccepted {
		h.t.Fatalf("push: %d %s", code, body)
	}
	runs := h.waitRuns(n, 5*time.Minute)
	r := runs[0] // newest first
	log := h.jobLog(r.ID, "probe")
	if r.Status != store.StatusSuccess {
		h.t.Fatalf("run %d: %s; log:\n%s", r.ID, r.Status, log)
	}
	return log
}

// A repository's network policy reaches its jobs on a Docker-backed
// server: under open a pushed job reaches the server's own port; once an
// admin sets no-private, the next job cannot, and still reaches its own
// service.
func TestServerNetworkPolicy(t *testing.T) {
	h := dockerServer(t)

	log := h.probe(1, "np-open")
	if !strings.Contains(log, "server: reached") || !strings.Contains(log, `{"status":"ok"}`) {
		t.Errorf("open: the job did not reach the server's port:\n%s", log)
	}
	if !strings.Contains(log, "hello from httpd") {
		t.Errorf("open: the job did not reach its service:\n%s", log)
	}

	policy := "no-private"
	var repo api.Repo
	h.api("PATCH", fmt.Sprintf("/api/repos/%d", h.repo.ID), api.RepoUpdate{NetworkPolicy: &policy}, http.StatusOK, &repo)
	if repo.NetworkPolicy != policy {
		t.Fatalf("repository after PATCH: %+v", repo)
	}
	log = h.probe(2, "np-private")
	t.Logf("no-private job log:\n%s", log)
	if !strings.Contains(log, "server: unreachable") || strings.Contains(log, "server: reached") || strings.Contains(log, `"status"`) {
		t.Errorf("no-private: the job reached the server's port:\n%s", log)
	}
	if !strings.Contains(log, "hello from httpd") {
		t.Errorf("no-private: the job did not reach its own service:\n%s", log)
	}
}
