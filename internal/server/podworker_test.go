package server

import (
	"context"
	"errors"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/conveyor-ci/conveyor/internal/backend/kubernetes"
	"github.com/conveyor-ci/conveyor/internal/imageconfig"
	"github.com/conveyor-ci/conveyor/internal/jobspec"
)

// registryStub gives the configuration of the images it knows.
type registryStub map[string]imageconfig.Config

func (r registryStub) Config(_ context.Context, ref string) (imageconfig.Config, error) {
	if c, ok := r[ref]; ok {
		return c, nil
	}
	return imageconfig.Config{}, errors.New("manifest unknown: " + ref)
}

// A job whose only blocker is docker:// steps takes the worker layout
// exactly when the kubernetes backend's registry lookup gives the
// configuration of every step image; an image with an expression, a
// lookup that fails, or no lookup keep the attach layout.
func TestInPodReasonDockerSteps(t *testing.T) {
	job := func(uses ...string) *jobspec.Job {
		j := &jobspec.Job{Settings: jobspec.Settings{RunsOn: &jobspec.RunsOn{Labels: []string{"ubuntu-latest"}}}, Steps: []jobspec.Step{{Run: jobspec.Text{Text: "echo hi"}}}}
		for _, u := range uses {
			j.Steps = append(j.Steps, jobspec.Step{Uses: jobspec.Text{Text: u}})
		}
		return j
	}
	backend := func(images kubernetes.ImageConfigs) *kubernetes.Backend {
		o := kubernetes.Options{Config: &rest.Config{Host: "http://127.0.0.1:1"}, RunnerBinary: "/bin/true"}
		o.Images = images
		kb, err := kubernetes.New(o)
		if err != nil {
			t.Fatal(err)
		}
		return kb
	}
	known := registryStub{"reg/a:1": {Entrypoint: []string{"/e"}}, "reg/b:1": {Cmd: []string{"c"}}}
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		job    *jobspec.Job
		lookup imageLookup
		want   string // "" or a part of the reason
	}{
		{"no docker step, no lookup", job("actions/checkout@v4"), nil, ""},
		{"known images", job("docker://reg/a:1", "docker://reg/b:1", "docker://reg/a:1"), backend(known), ""},
		{"an unknown image", job("docker://reg/a:1", "docker://reg/nope:1"), backend(known), "cannot be looked up: kubernetes: image config of reg/nope:1"},
		{"no registry lookup configured", job("docker://reg/a:1"), backend(nil), "no registry lookup"},
		{"no lookup", job("docker://reg/a:1"), nil, "a docker:// step"},
		{"an expression", job("docker://reg/${{ matrix.tag }}"), backend(known), "with an expression"},
		{"an empty image", job("docker://"), backend(known), "without an image"},
	} {
		got := inPodReason(ctx, tc.job, tc.lookup)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: reason %q, want %q", tc.name, got, tc.want)
		}
	}
	// Other blockers come first, whatever the lookup says.
	j := job("docker://reg/a:1")
	j.Container = &jobspec.Container{}
	if got := inPodReason(ctx, j, backend(known)); got != "a job container" {
		t.Errorf("job container: %q", got)
	}
}
