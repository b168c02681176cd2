package docker

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/backendtest"
)

// denied evaluates policyRules' DOCKER-USER rules for a new connection
// from the job's bridge to addr, as iptables would.
func denied(t *testing.T, rules [][]string, addr string) bool {
	t.Helper()
	a := netip.MustParseAddr(addr)
	for _, r := range rules {
		if r[0] != "DOCKER-USER" {
			continue
		}
		args := strings.Join(r, " ")
		if strings.Contains(args, " -o ") {
			continue // traffic within the bridge
		}
		for i, w := range r {
			if w == "-d" && netip.MustParsePrefix(r[i+1]).Contains(a) && strings.HasSuffix(args, "REJECT -m comment --comment conveyor cvtest") {
				return true
			}
		}
	}
	return false
}

func TestPolicyRules(t *testing.T) {
	np := policyRules("cvtest", backend.NetworkNoPrivate)
	for _, a := range []string{"10.1.2.3", "172.17.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1", "127.0.0.1"} {
		if !denied(t, np, a) {
			t.Errorf("no-private lets %s through", a)
		}
	}
	for _, a := range []string{"8.8.8.8", "1.1.1.1", "172.32.0.1", "192.169.0.1", "100.128.0.1", "151.101.1.1"} {
		if denied(t, np, a) {
			t.Errorf("no-private denies public %s", a)
		}
	}
	// Every policy shuts the machine itself out (INPUT), and none adds no
	// address rules (its network is internal).
	for _, p := range []backend.NetworkPolicy{backend.NetworkNoPrivate, backend.NetworkNone} {
		rules := policyRules("cvtest", p)
		if strings.Join(rules[1], " ") != "INPUT -i cvtest -j REJECT -m comment --comment conveyor cvtest" {
			t.Errorf("%s: INPUT rule %v", p, rules[1])
		}
	}
	if n := len(policyRules("cvtest", backend.NetworkNone)); n != 3 {
		t.Errorf("none has %d rules", n)
	}
	if _, err := backend.ParseNetworkPolicy("closed"); err == nil {
		t.Error("unknown policy accepted")
	}
}

// TestNetworkPolicies: under no-private and none a job reaches its own
// services but not this machine's ports nor another job's service; under
// open it reaches this machine. The rules are gone after teardown.
func TestNetworkPolicies(t *testing.T) {
	need(t)
	if os.Geteuid() != 0 {
		t.Skip("network policies need root (iptables); run the docker tests as root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// The "server": a port on every address of this machine.
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "host-ok") }), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	// wget the host through the job network's gateway (this machine); by
	// timeout, as busybox 1.35's wget -T crashes.
	toHost := fmt.Sprintf(`gw=$(ip route | awk '/^default/ {print $3}'); [ -n "$gw" ] || gw=$(ip -4 addr show eth0 | awk '/inet/ {split($2,a,"/"); split(a[1],o,"."); print o[1]"."o[2]"."o[3]".1"}'); timeout 5 wget -q -O - http://$gw:%d/`, port)
	svc := backend.Service{Name: "web", Image: webImage, Options: "--health-cmd 'wget -q -O /dev/null http://localhost/' --health-interval 500ms --health-retries 20"}
	b := newBackend(t, Options{HealthTimeout: time.Minute})

	// Another job, open, with a service: its address is the target.
	other := newJob(t)
	other.Services = []backend.Service{svc}
	osb := setupJob(t, b, other)
	ids, err := cli.ContainerList(ctx, container.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	otherAddr := ""
	for _, c := range ids {
		if c.Labels[LabelJob] == other.ID && c.Labels["conveyor.service"] == "web" {
			otherAddr = c.NetworkSettings.Networks[osb.Network()].IPAddress
		}
	}
	if otherAddr == "" {
		t.Fatal("no address for the other job's service")
	}

	open := setupJob(t, b, newJob(t))
	if out, code := backendtest.Exec(t, open, &backend.Process{Argv: []string{"sh", "-c", toHost}}); code != 0 || out != "host-ok" {
		t.Fatalf("open: the host's port: %q, %d", out, code)
	}

	for _, p := range []backend.NetworkPolicy{backend.NetworkNoPrivate, backend.NetworkNone} {
		job := newJob(t)
		job.Network = p
		job.Services = []backend.Service{svc}
		sb := setupJob(t, b, job)
		if out, code := backendtest.Exec(t, sb, &backend.Process{Argv: []string{"sh", "-c", toHost}}); code == 0 || strings.Contains(out, "host-ok") {
			t.Errorf("%s: reached the host's port: %q, %d", p, out, code)
		}
		if out, code := backendtest.Exec(t, sb, &backend.Process{Argv: []string{"timeout", "5", "wget", "-q", "-O", "-", "http://" + otherAddr + "/"}}); code == 0 {
			t.Errorf("%s: reached another job's service at %s: %q", p, otherAddr, out)
		}
		if out, code := backendtest.Exec(t, sb, &backend.Process{Argv: []string{"timeout", "10", "wget", "-q", "-O", "-", "http://web/"}}); code != 0 || out != "hello from httpd\n" {
			t.Errorf("%s: own service: %q, %d", p, out, code)
		}
		if err := sb.Teardown(ctx); err != nil {
			t.Fatal(err)
		}
		for _, chain := range []string{"INPUT", "DOCKER-USER"} {
			out, err := exec.Command("iptables", "-w", "10", "-S", chain).CombinedOutput()
			if err != nil {
				t.Fatalf("iptables -S %s: %v %s", chain, err, out)
			}
			if strings.Contains(string(out), bridgeName(job.ID)) {
				t.Errorf("%s: rules left in %s after teardown:\n%s", p, chain, out)
			}
		}
	}
}

// TestRuntime: a job names the OCI runtime of its containers; one the
// engine lacks is refused with the ones it has.
func TestRuntime(t *testing.T) {
	need(t)
	b := newBackend(t, Options{})
	job := newJob(t)
	job.Runtime = "runc"
	sb := setupJob(t, b, job)
	info, err := cli.ContainerInspect(context.Background(), sb.ContainerID())
	if err != nil {
		t.Fatal(err)
	}
	if info.HostConfig.Runtime != "runc" {
		t.Errorf("runtime %q", info.HostConfig.Runtime)
	}
	job = newJob(t)
	job.Runtime = "no-such-runsc"
	if _, err := b.Setup(context.Background(), job, nil); err == nil || !strings.Contains(err.Error(), `no runtime "no-such-runsc" (it has `) || !strings.Contains(err.Error(), "runc") {
		t.Errorf("Setup with a missing runtime: %v", err)
	}
}
