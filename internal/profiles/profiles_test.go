package profiles

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

const sample = `# label profiles
machines:
  small: {cpus: 1, memory: 512m}
  large:
    cpus: 4
    memory: 8Gi
x-gpu-taint: &gpu-taint
  key: nvidia.com/gpu
  operator: Exists
  effect: NoSchedule
labels:
  GPU:
    runtime: nvidia
    machine: large
    node-selector:
      accelerator: nvidia-t4
      kubernetes.io/arch: amd64
    tolerations:
      - *gpu-taint
      - {key: dedicated, value: ci, effect: NoExecute, tolerationSeconds: 60}
  untrusted:
    runtime: runsc
  arm:
    node-selector: {kubernetes.io/arch: arm64}
  small-box: {machine: small}
  plain:
`

func TestParse(t *testing.T) {
	c, err := Parse([]byte(sample), "labels.yml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Machine{"small": {CPUs: 1, MemoryBytes: 512 << 20}, "large": {CPUs: 4, MemoryBytes: 8 << 30}}
	if !reflect.DeepEqual(c.Machines, want) {
		t.Errorf("machines %+v", c.Machines)
	}
	sixty := int64(60)
	gpu := Profile{Runtime: "nvidia", Machine: "large",
		NodeSelector: map[string]string{"accelerator": "nvidia-t4", "kubernetes.io/arch": "amd64"},
		Tolerations: []backend.Toleration{{Key: "nvidia.com/gpu", Operator: "Exists", Effect: "NoSchedule"},
			{Key: "dedicated", Operator: "Equal", Value: "ci", Effect: "NoExecute", Seconds: &sixty}}}
	if got := c.Labels["gpu"]; !reflect.DeepEqual(got, gpu) {
		t.Errorf("gpu (given as GPU) %+v", got)
	}
	if got := c.Labels["untrusted"]; got.Runtime != "runsc" || got.Machine != "" {
		t.Errorf("untrusted %+v", got)
	}
	if _, ok := c.Labels["plain"]; !ok || len(c.Labels) != 5 {
		t.Errorf("labels %v", c.Labels)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, src := range []string{"", "# nothing\n", "---\n", "machines:\nlabels:\n"} {
		c, err := Parse([]byte(src), "l.yml")
		if err != nil || len(c.Labels) != 0 {
			t.Errorf("%q: %v %v", src, c, err)
		}
		if ch, err := c.Select([]string{"x"}); err != nil || !reflect.DeepEqual(ch, Choice{}) {
			t.Errorf("%q: select %+v %v", src, ch, err)
		}
	}
}

// Every mistake is reported at its file:line:col with what was expected.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"labels:\n  gpu:\n    machine: huge\n", `l.yml:3:14: unknown machine "huge" (the file names none)`},
		{"machines:\n  a: {cpus: 1}\nlabels:\n  gpu: {machine: b}\n", `l.yml:4:18: unknown machine "b" (the file names a)`},
		{"labels:\n  gpu:\n    runtim: runsc\n", `l.yml:3:5: unknown key "runtim" of label gpu (runtime, machine, node-selector, tolerations)`},
		{"label:\n  gpu: {}\n", `l.yml:1:1: unknown key "label" (machines, labels`},
		{"machines:\n  big: {cpus: -1}\n", `l.yml:2:15: cpus "-1": want a positive number`},
		{"machines:\n  big: {cpus: lots}\n", `l.yml:2:15: cpus "lots"`},
		{"machines:\n  big: {memory: 8 parsecs}\n", `l.yml:2:17: memory "8 parsecs": want a size`},
		{"machines:\n  big: {}\n", `l.yml:2:3: machine big sets neither cpus nor memory`},
		{"machines:\n  big: {gpus: 1}\n", `l.yml:2:9: unknown key "gpus" of machine big (cpus, memory)`},
		{"labels:\n  gpu: {runtime: 'run sc'}\n", `l.yml:2:18: runtime "run sc": a runtime's name`},
		{"labels:\n  gpu: {runtime: [a]}\n", `l.yml:2:18: runtime: want a single value`},
		{"labels:\n  gpu:\n  GPU:\n", `l.yml:3:3: label "GPU" is given twice`},
		{"labels:\n  gpu: {}\n  gpu: {}\n", `l.yml:3:3: mapping key "gpu" already defined`},
		{"labels:\n  'a b': {}\n", `l.yml:2:3: "a b" is not a label's name`},
		{"labels:\n  gpu: {node-selector: {'bad key!': x}}\n", `l.yml:2:25: node label "bad key!"`},
		{"labels:\n  gpu: {node-selector: {a: 'no spaces'}}\n", `l.yml:2:28: value "no spaces" of node label a`},
		{"labels:\n  gpu: {node-selector: [a]}\n", `l.yml:2:24: node-selector: want a mapping`},
		{"labels:\n  gpu: {tolerations: {key: a}}\n", `l.yml:2:22: tolerations: want a list`},
		{"labels:\n  gpu:\n    tolerations:\n      - {key: a, operator: Maybe}\n", `l.yml:4:28: toleration operator "Maybe": want Equal or Exists`},
		{"labels:\n  gpu:\n    tolerations:\n      - {key: a, effect: Sometimes}\n", `l.yml:4:26: toleration effect "Sometimes"`},
		{"labels:\n  gpu:\n    tolerations:\n      - {key: a, operator: Exists, value: b}\n", `l.yml:4:9: a toleration with operator Exists takes no value`},
		{"labels:\n  gpu:\n    tolerations:\n      - {value: b}\n", `a toleration without a key needs operator Exists`},
		{"labels:\n  gpu:\n    tolerations:\n      - {key: a, tolerationSeconds: 5}\n", `l.yml:4:37: tolerationSeconds applies to effect NoExecute only`},
		{"labels:\n  gpu:\n    tolerations:\n      - {key: a, effect: NoExecute, tolerationSeconds: soon}\n", `tolerationSeconds "soon"`},
		{"labels:\n  gpu:\n    tolerations:\n      - {key: a, colour: red}\n", `l.yml:4:18: unknown key "colour" of a toleration`},
		{"labels:\n  gpu: {runtime: runsc\n", `l.yml:`},
		{"labels: [gpu]\n", `l.yml:1:9: labels: want a mapping`},
		{"- a\n", `l.yml:1:1: the label config: want a mapping`},
		{"x: &a {runtime: runsc}\nlabels:\n  gpu:\n    <<: *a\n", `unknown key "x"`},
		{"x-a: &a {runtime: runsc}\nlabels:\n  gpu:\n    <<: *a\n", `l.yml:4:5: merge keys (<<) are not supported`},
		{"labels:\n  gpu: {machine: *nowhere}\n", `l.yml:2:`},
		{"labels: {}\n---\nlabels: {}\n", `l.yml:3:7: one document only`},
	} {
		_, err := Parse([]byte(tc.src), "l.yml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got  %v\n want %s", tc.src, err, tc.want)
			continue
		}
		if !errs.Is(err, errs.Invalid) {
			t.Errorf("%q: kind %v", tc.src, errs.KindOf(err))
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "labels.yml")
	os.WriteFile(f, []byte(sample), 0o600)
	if c, err := Load(f); err != nil || c.Labels["untrusted"].Runtime != "runsc" {
		t.Fatalf("%v %v", c, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yml")); err == nil || !errs.Is(err, errs.Invalid) {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big.yml")
	os.WriteFile(big, []byte("# "+strings.Repeat("x", MaxFileSize)+"\n"), 0o600)
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "over 1048576 bytes") {
		t.Errorf("big file: %v", err)
	}
}

func TestSelect(t *testing.T) {
	c, err := Parse([]byte(sample+`  gpu-small: {machine: small}
  other-gpu: {runtime: kata-runtime}
  amd: {node-selector: {kubernetes.io/arch: amd64, zone: a}}
`), "l.yml")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.Select([]string{"self-hosted", "GPU", "amd", "gpu"})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Runtime != "nvidia" || ch.RuntimeLabel != "gpu" || ch.Machine != "large" || ch.MachineLabel != "gpu" ||
		ch.Resources != (backend.Resources{CPUs: 4, MemoryBytes: 8 << 30}) {
		t.Errorf("choice %+v", ch)
	}
	// Later labels fill what earlier ones left empty; agreeing values
	// (kubernetes.io/arch: amd64 twice) are no conflict.
	wantSel := map[string]string{"accelerator": "nvidia-t4", "kubernetes.io/arch": "amd64", "zone": "a"}
	if !reflect.DeepEqual(ch.Placement.NodeSelector, wantSel) || len(ch.Placement.Tolerations) != 2 {
		t.Errorf("placement %+v", ch.Placement)
	}
	if d := ch.Describe(); d != "label profile: runtime nvidia (label gpu), machine large (label gpu), node selector accelerator=nvidia-t4,kubernetes.io/arch=amd64,zone=a, tolerations nvidia.com/gpu,dedicated" {
		t.Errorf("describe %q", d)
	}
	ch, err = c.Select([]string{"untrusted", "small-box"})
	if err != nil || ch.Runtime != "runsc" || ch.Resources.CPUs != 1 || ch.Placement.NodeSelector != nil {
		t.Errorf("untrusted+small-box %+v %v", ch, err)
	}
	if ch, err := c.Select([]string{"ubuntu-latest"}); err != nil || !reflect.DeepEqual(ch, Choice{}) || ch.Describe() != "" {
		t.Errorf("no profile: %+v %v", ch, err)
	}
	for _, tc := range []struct {
		labels []string
		want   string
	}{
		{[]string{"gpu", "untrusted"}, `runs-on labels "gpu" and "untrusted" ask for different runtimes ("nvidia", "runsc")`},
		{[]string{"untrusted", "other-gpu"}, `runs-on labels "untrusted" and "other-gpu" ask for different runtimes ("runsc", "kata-runtime")`},
		{[]string{"gpu", "gpu-small"}, `runs-on labels "gpu" and "gpu-small" ask for different machine types ("large", "small")`},
		{[]string{"gpu", "arm"}, `runs-on labels "gpu" and "arm" ask for different values of node label kubernetes.io/arch ("amd64", "arm64")`},
	} {
		_, err := c.Select(tc.labels)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errs.Is(err, errs.Invalid) {
			t.Errorf("%v:\n got  %v\n want %s", tc.labels, err, tc.want)
		}
	}
	var none *Config
	if ch, err := none.Select([]string{"gpu"}); err != nil || !reflect.DeepEqual(ch, Choice{}) {
		t.Errorf("nil config: %+v %v", ch, err)
	}
}

// The repository's runtime (or --runtime) and a label's: one set wins,
// equal agree, different is an error naming both.
func TestJobRuntime(t *testing.T) {
	label := Choice{Runtime: "runsc", RuntimeLabel: "untrusted"}
	for _, tc := range []struct {
		every string
		ch    Choice
		want  string
	}{
		{"", Choice{}, ""},
		{"kata-runtime", Choice{}, "kata-runtime"},
		{"", label, "runsc"},
		{"runsc", label, "runsc"},
	} {
		if got, err := JobRuntime(tc.every, tc.ch); err != nil || got != tc.want {
			t.Errorf("%q %+v: %q %v", tc.every, tc.ch, got, err)
		}
	}
	_, err := JobRuntime("kata-runtime", label)
	if err == nil || !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), `the job's runtime "kata-runtime" (the repository's setting, or --runtime) and runtime "runsc" of its runs-on label "untrusted" differ`) {
		t.Errorf("conflict: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("labels:\n  gpu: {machine: *nowhere}\n"))
	f.Add([]byte("x-a: &a {runtime: runsc}\nlabels:\n  gpu: *a\n  b: {<<: *a}\n"))
	f.Add([]byte("x: &a [*a]\n"))
	f.Add([]byte("labels:\n  ? gpu\n  : {tolerations: [{key: a, effect: NoExecute, tolerationSeconds: 1}]}\n"))
	f.Add([]byte("machines: {m: {cpus: 1e400, memory: 0}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "f.yml")
		if err != nil {
			if !errs.Is(err, errs.Invalid) || !strings.HasPrefix(err.Error(), "f.yml") {
				t.Fatalf("error without kind or file: %v", err)
			}
			return
		}
		for l, p := range c.Labels {
			if l != strings.ToLower(l) {
				t.Fatalf("label %q not in lower case", l)
			}
			if _, ok := c.Machines[p.Machine]; p.Machine != "" && !ok {
				t.Fatalf("label %q names unknown machine %q", l, p.Machine)
			}
			var labels []string
			for k := range c.Labels {
				labels = append(labels, k)
			}
			c.Select(labels) // must not panic
		}
	})
}

// The example of docs/kubernetes.md parses and means what the page says.
func TestDocExample(t *testing.T) {
	b, err := os.ReadFile("../../docs/kubernetes.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := strings.Cut(string(b), "## Label profiles")
	_, after, _ = strings.Cut(after, "```yaml\n")
	src, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatal("no YAML example under ## Label profiles")
	}
	c, err := Parse([]byte(src), "kubernetes.md")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.Select([]string{"GPU", "cheap"})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Runtime != "nvidia" || ch.Resources != (backend.Resources{CPUs: 8, MemoryBytes: 32 << 30}) ||
		len(ch.Placement.Tolerations) != 2 || ch.Placement.Tolerations[1].Key != "spot" || *ch.Placement.Tolerations[1].Seconds != 300 {
		t.Errorf("choice %+v", ch)
	}
	if _, err := c.Select([]string{"gpu", "untrusted"}); err == nil {
		t.Error("gpu and untrusted agree on a runtime")
	}
}
