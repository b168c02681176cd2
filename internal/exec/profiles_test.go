package exec

import (
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/fake"
	"github.com/conveyor-ci/conveyor/internal/profiles"
)

// specs records the JobSpec of every sandbox a fake backend sets up, by
// job name.
type specs struct {
	mu sync.Mutex
	by map[string]backend.JobSpec
}

func recordSpecs(fb *fake.Backend) *specs {
	s := &specs{by: map[string]backend.JobSpec{}}
	fb.SetupErr = func(job *backend.JobSpec) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.by[job.Name] = *job
		return nil
	}
	return s
}

func (s *specs) get(name string) (backend.JobSpec, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.by[name]
	return j, ok
}

const labelConfig = `
machines:
  large: {cpus: 4, memory: 8g}
labels:
  gpu:
    runtime: nvidia
    machine: large
    node-selector: {accelerator: t4}
    tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
  untrusted: {runtime: runsc}
  zone-a: {node-selector: {zone: a}}
`

// A job's runs-on labels (expressions evaluated, matrix included) select
// their profiles; the merge reaches the backend with the job's timeout.
func TestLabelProfilesReachTheBackend(t *testing.T) {
	cfg, err := profiles.Parse([]byte(labelConfig), "labels.yml")
	if err != nil {
		t.Fatal(err)
	}
	fb := fake.New(nil)
	got := recordSpecs(fb)
	src := `
on: push
jobs:
  gpu:
    runs-on: ['${{ matrix.kind }}', zone-a]
    timeout-minutes: 7
    strategy: {matrix: {kind: [GPU]}}
    steps: [{run: "true"}]
  plain:
    runs-on: linux
    steps: [{run: "true"}]
  capped:
    runs-on: untrusted
    timeout-minutes: 90
    steps: [{run: "true"}]
`
	res, rec := run(t, nil, src, Options{Backend: fb, Profiles: cfg, MaxTimeout: time.Hour,
		Resources: backend.Resources{CPUs: 1, MemoryBytes: 1 << 30, PidsLimit: 100},
		Platforms: map[string]string{"gpu": "img", "linux": "img", "untrusted": "img"}})
	for _, j := range res.Jobs {
		if j.Result != Success {
			t.Fatalf("results: %s", resultsString(res))
		}
	}
	gpu, ok := got.get("gpu (GPU)")
	if !ok {
		t.Fatalf("no sandbox for gpu (GPU): %v", got.by)
	}
	// The machine replaces the run's --cpus and --memory; --pids stays.
	if gpu.Runtime != "nvidia" || gpu.Resources != (backend.Resources{CPUs: 4, MemoryBytes: 8 << 30, PidsLimit: 100}) || gpu.Timeout != 7*time.Minute {
		t.Errorf("gpu spec: runtime %q resources %+v timeout %v", gpu.Runtime, gpu.Resources, gpu.Timeout)
	}
	want := backend.Placement{NodeSelector: map[string]string{"accelerator": "t4", "zone": "a"},
		Tolerations: []backend.Toleration{{Key: "nvidia.com/gpu", Operator: "Exists", Effect: "NoSchedule"}}}
	if !reflect.DeepEqual(gpu.Placement, want) {
		t.Errorf("gpu placement %+v", gpu.Placement)
	}
	said := rec.index(func(ev Event2) bool {
		return ev.Type == Notice && ev.Job == "gpu (GPU)" && ev.Text == "label profile: runtime nvidia (label gpu), machine large (label gpu), node selector accelerator=t4,zone=a, tolerations nvidia.com/gpu"
	})
	if said < 0 {
		t.Errorf("the job's log does not say which profile applies:\n%s", rec.dump())
	}
	plain, _ := got.get("plain")
	if plain.Runtime != "" || plain.Resources.CPUs != 1 || plain.Placement.NodeSelector != nil || plain.Timeout != time.Hour {
		t.Errorf("plain spec (no profile; 360 minutes capped to the hour): %+v", plain)
	}
	if capped, _ := got.get("capped"); capped.Runtime != "runsc" || capped.Timeout != time.Hour {
		t.Errorf("capped spec: runtime %q timeout %v", capped.Runtime, capped.Timeout)
	}
}

// The runtime asked for every job (the repository's setting, --runtime)
// and a label's: equal or one unset is fine; different fails the job
// before its sandbox, naming both; so do labels that disagree.
func TestLabelRuntimeAgainstRepositoryRuntime(t *testing.T) {
	cfg, err := profiles.Parse([]byte(labelConfig), "labels.yml")
	if err != nil {
		t.Fatal(err)
	}
	src := `
on: push
jobs:
  untrusted:
    runs-on: untrusted
    steps: [{run: "true"}]
  plain:
    runs-on: linux
    steps: [{run: "true"}]
  both:
    runs-on: [untrusted, gpu]
    steps: [{run: "true"}]
`
	plats := map[string]string{"gpu": "img", "linux": "img", "untrusted": "img"}
	for _, tc := range []struct {
		repo                  string
		untrusted, plain, err string
	}{
		{"", "runsc", "", ""},
		{"runsc", "runsc", "runsc", ""},
		{"kata-runtime", "", "kata-runtime", `the job's runtime "kata-runtime" (the repository's setting, or --runtime) and runtime "runsc" of its runs-on label "untrusted" differ`},
	} {
		fb := fake.New(nil)
		got := recordSpecs(fb)
		res, _ := run(t, nil, src, Options{Backend: fb, Profiles: cfg, Runtime: tc.repo, Platforms: plats})
		u, set := got.get("untrusted")
		if tc.err != "" {
			if set || resultOf(res, "untrusted") != Failure || !strings.Contains(jobResult(res, "untrusted").Error, tc.err) {
				t.Errorf("repo %q: untrusted set up %v, %s", tc.repo, set, resultsString(res))
			}
		} else if u.Runtime != tc.untrusted {
			t.Errorf("repo %q: untrusted runtime %q", tc.repo, u.Runtime)
		}
		if p, _ := got.get("plain"); p.Runtime != tc.plain || resultOf(res, "plain") != Success {
			t.Errorf("repo %q: plain runtime %q, %s", tc.repo, p.Runtime, resultsString(res))
		}
		if _, set := got.get("both"); set || resultOf(res, "both") != Failure ||
			!strings.Contains(jobResult(res, "both").Error, `runs-on labels "untrusted" and "gpu" ask for different runtimes ("runsc", "nvidia")`) {
			t.Errorf("repo %q: both: %s", tc.repo, resultsString(res))
		}
	}
}
