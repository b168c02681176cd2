package docker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// PrivateRanges are what NetworkNoPrivate denies beyond the machine's own
// addresses: RFC 1918, link-local (cloud metadata at 169.254.169.254),
// carrier-grade NAT, and loopback and "this network" for good measure.
var PrivateRanges = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "0.0.0.0/8"}

// How a network policy is enforced on a local engine (iptables, the
// mechanism Docker's own networking uses):
//   - the job gets a network of its own whose bridge has a name we choose
//     (bridgeName), so rules can name its interface;
//   - INPUT: nothing from that bridge reaches the machine itself (the
//     server's port, the engine's API, any address of this host), except
//     replies to connections the host opened;
//   - DOCKER-USER (Docker's hook in FORWARD, evaluated before its own
//     rules): traffic within the bridge (the job and its services) passes;
//     for no-private, new connections to PrivateRanges are rejected;
//   - none: the network is also Docker-internal (no route out at all).
// IPv4 only: Docker's networks have no IPv6 unless the engine enables it.

// bridgeName is the Linux interface name of a job's network bridge (15
// bytes at most): unique per job.
func bridgeName(jobID string) string {
	sum := sha256.Sum256([]byte(jobID))
	return "cv" + hex.EncodeToString(sum[:6])
}

// policyRules are the iptables rules (chain first) for a job's bridge, in
// the order they must be evaluated.
func policyRules(bridge string, p backend.NetworkPolicy) [][]string {
	tag := []string{"-m", "comment", "--comment", "conveyor " + bridge}
	rule := func(chain string, args ...string) []string {
		return append(append([]string{chain}, args...), tag...)
	}
	rules := [][]string{
		rule("INPUT", "-i", bridge, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"),
		rule("INPUT", "-i", bridge, "-j", "REJECT"),
		rule("DOCKER-USER", "-i", bridge, "-o", bridge, "-j", "RETURN"),
	}
	if p == backend.NetworkNoPrivate {
		for _, r := range PrivateRanges {
			rules = append(rules, rule("DOCKER-USER", "-i", bridge, "-d", r, "-m", "conntrack", "--ctstate", "NEW,INVALID", "-j", "REJECT"))
		}
	}
	return rules
}

// firewall installs and removes a job's rules. iptables serialises itself
// with its lock (-w); mu keeps the insertions of one job in order.
type firewall struct {
	mu       sync.Mutex
	iptables string // the binary; "" until found
}

// check says why policies cannot be enforced here, or nil.
func (f *firewall) check(remote bool) error {
	const op = "docker: network policy"
	if remote {
		return errs.E(op, errs.Unavailable, "a network policy other than open needs the Docker engine on this machine (its iptables); this engine is remote")
	}
	if os.Geteuid() != 0 {
		return errs.E(op, errs.Unavailable, "a network policy other than open needs Conveyor to run as root (it sets iptables rules beside Docker's)")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.iptables == "" {
		p, err := exec.LookPath("iptables")
		if err != nil {
			return errs.E(op, errs.Unavailable, "a network policy other than open needs iptables on this machine: %v", err)
		}
		f.iptables = p
	}
	return nil
}

// apply inserts the rules at the top of their chains (last first, so that
// they end up in order) and removes what it inserted if one fails.
func (f *firewall) apply(ctx context.Context, bridge string, p backend.NetworkPolicy) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	rules := policyRules(bridge, p)
	for i := len(rules) - 1; i >= 0; i-- {
		if err := f.run(ctx, append([]string{"-I"}, rules[i]...)); err != nil {
			f.removeLocked(ctx, rules[i+1:])
			return errs.Wrap("docker: network policy", errs.Unavailable, err)
		}
	}
	return nil
}

// remove deletes a job's rules; rules already gone are no error.
func (f *firewall) remove(ctx context.Context, bridge string, p backend.NetworkPolicy) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removeLocked(ctx, policyRules(bridge, p))
}

func (f *firewall) removeLocked(ctx context.Context, rules [][]string) {
	for _, r := range rules {
		_ = f.run(ctx, append([]string{"-D"}, r...))
	}
}

func (f *firewall) run(ctx context.Context, args []string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, f.iptables, append([]string{"-w", "10"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("iptables %v: %v: %s", args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}
