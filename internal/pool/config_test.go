package pool

import (
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

const goodPools = `pools:
  - name: main
    kind: kubernetes
    kubeconfig: /etc/conveyor/main.kubeconfig
    context: prod
    namespace-prefix: ci-
    capacity: 20
    labels: [ubuntu-latest, Linux]
    probe-interval: 10s
    pending-deadline: 90s
  - name: spare
    kind: kubernetes
    namespace: ci
    node-selector: {pool: spot}
    capacity: 50
    burst: true
  - name: local
    kind: docker
    capacity: 2
`

func TestParse(t *testing.T) {
	specs, err := Parse([]byte(goodPools), "pools.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 3 {
		t.Fatalf("%d pools", len(specs))
	}
	m, s, l := specs[0], specs[1], specs[2]
	if m.Name != "main" || m.Kind != Kubernetes || m.Kubeconfig != "/etc/conveyor/main.kubeconfig" || m.Context != "prod" ||
		m.NamespacePrefix != "ci-" || m.Capacity != 20 || m.ProbeInterval != 10*time.Second || m.PendingDeadline != 90*time.Second ||
		strings.Join(m.Labels, ",") != "ubuntu-latest,linux" || m.Burst {
		t.Errorf("main: %+v", m)
	}
	if !s.Burst || s.Namespace != "ci" || s.NodeSelector["pool"] != "spot" || s.ProbeInterval != DefaultProbeInterval || s.PendingDeadline != DefaultPendingDeadline {
		t.Errorf("spare: %+v", s)
	}
	if l.Kind != Docker || l.PendingDeadline != 0 || len(l.Labels) != 0 {
		t.Errorf("local: %+v", l)
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"syntax", "pools:\n  - name: a\n   kind: [\n", "p.yml:3:"},
		{"unknown field", "pools:\n  - name: a\n    kind: host\n    capacity: 1\n    colour: red\n", "p.yml:5:5: "},
		{"wrong type", "pools:\n  - name: a\n    kind: host\n    capacity: lots\n", "p.yml:4:15: "},
		{"bad duration", "pools:\n  - name: a\n    kind: host\n    capacity: 1\n    probe-interval: soon\n", "p.yml:5:21: "},
		{"no pools", "other: 1\n", "p.yml:1:1: unknown field"},
		{"empty", "pools: []\n", "p.yml:1:1: no pools"},
		{"no name", "pools:\n  - kind: host\n    capacity: 1\n", "p.yml:2:5: a pool needs a name"},
		{"bad name", "pools:\n  - name: Big_One\n    kind: host\n    capacity: 1\n", "p.yml:2:11: pool name \"Big_One\""},
		{"bad kind", "pools:\n  - name: a\n    kind: nomad\n    capacity: 1\n", "p.yml:3:11: pool a: kind \"nomad\""},
		{"no capacity", "pools:\n  - name: a\n    kind: docker\n", "p.yml:2:5: pool a: capacity must be at least 1"},
		{"zero capacity", "pools:\n  - name: a\n    kind: docker\n    capacity: 0\n", "p.yml:4:15: pool a: capacity"},
		{"twice", "pools:\n  - {name: a, kind: host, capacity: 1}\n  - {name: a, kind: host, capacity: 1}\n", "p.yml:3:12: pool \"a\" is named twice"},
		{"kube only", "pools:\n  - name: a\n    kind: docker\n    capacity: 1\n    namespace: x\n", "p.yml:5:16: pool a: namespace is only for kind kubernetes"},
		{"both namespaces", "pools:\n  - name: a\n    kind: kubernetes\n    capacity: 1\n    namespace: x\n    namespace-prefix: y\n", "p.yml:6:23: "},
		{"expression label", "pools:\n  - name: a\n    kind: host\n    capacity: 1\n    labels: ['${{ x }}']\n", "p.yml:5:13: pool a: label"},
		{"bad worker", "pools:\n  - name: a\n    kind: kubernetes\n    capacity: 1\n    worker: exec\n", "p.yml:5:13: pool a: worker \"exec\""},
		{"worker of docker", "pools:\n  - name: a\n    kind: docker\n    capacity: 1\n    worker: pod\n", "p.yml:5:13: pool a: worker is only for kind kubernetes"},
		{"negative interval", "pools:\n  - name: a\n    kind: host\n    capacity: 1\n    probe-interval: -1s\n", "p.yml:5:21: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.in), "p.yml")
			if err == nil || !strings.Contains(err.Error(), c.want) || !errs.Is(err, errs.Invalid) {
				t.Errorf("got %v, want %q (kind invalid)", err, c.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(goodPools))
	f.Add([]byte("pools:\n  - {name: a, kind: host, capacity: 1}\n"))
	f.Add([]byte("pools: [{name: a, kind: kubernetes, capacity: 3, labels: [x], burst: true, pending-deadline: 1m}]"))
	f.Add([]byte("pools: [{name: a, kind: kubernetes, capacity: 3, worker: pod}]"))
	f.Add([]byte("pools:\n  - name: a\n   kind: [\n"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := Parse(data, "f.yml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "pools: f.yml:") || !errs.Is(err, errs.Invalid) {
				t.Fatalf("error without position or kind: %v", err)
			}
			return
		}
		for _, s := range specs {
			if s.Name == "" || s.Capacity < 1 || s.ProbeInterval <= 0 {
				t.Fatalf("accepted a bad pool: %+v", s)
			}
		}
	})
}
