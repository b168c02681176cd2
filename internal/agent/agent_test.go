package agent

import (
	"testing"

	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/jobrun"
)

func TestPlatformsFor(t *testing.T) {
	got := platformsFor(map[string]string{"ubuntu-latest": "img", "GPU": "cuda-img"}, []string{"self-hosted", "gpu", "Arm64"})
	want := map[string]string{"ubuntu-latest": "img", "gpu": "cuda-img", "self-hosted": "-self-hosted", "arm64": "-self-hosted"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	h := host.New(host.Options{})
	for name, cfg := range map[string]Config{
		"no server":  {Token: "t", Env: jobrun.Env{Backend: h}},
		"no token":   {Server: "http://x", Env: jobrun.Env{Backend: h}},
		"no backend": {Server: "http://x", Token: "t"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	a, err := New(Config{Server: "http://x/", Token: "t", Env: jobrun.Env{Backend: h}})
	if err != nil || a.cfg.Capacity != 1 || a.cfg.Env.ServerURL != "http://x" {
		t.Errorf("defaults: %+v %v", a.cfg, err)
	}
}
