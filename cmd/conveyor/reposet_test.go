package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestRepoSetAndTestDeliveriesFlag(t *testing.T) {
	e := newCLIEnv(t)
	e.want(t, 0, "repo", "add", "https://gitea.example/acme/app", "--forge", "gitea", "--run-test-deliveries")
	id := e.repoID(t, "acme/app")
	if r, _ := e.f.GetRepo(t.Context(), 1, id); r == nil || !r.RunTestDeliveries {
		t.Fatalf("repo add --run-test-deliveries: %+v", r)
	}
	out := e.want(t, 0, "repo", "set", "acme/app", "--run-test-deliveries=false")
	if want := fmt.Sprintf("repository %d: acme/app: run_test_deliveries=false", id); !strings.Contains(out, want) {
		t.Errorf("repo set: %q lacks %q", out, want)
	}
	if r, _ := e.f.GetRepo(t.Context(), 1, id); r.RunTestDeliveries {
		t.Errorf("repo set did not turn it off: %+v", r)
	}
	out = e.want(t, 0, "repo", "set", fmt.Sprint(id), "--run-test-deliveries")
	if !strings.Contains(out, "run_test_deliveries=true") {
		t.Errorf("repo set by id: %q", out)
	}
	if got := e.want(t, 2, "repo", "set", "acme/app"); !strings.Contains(got, "nothing to change") {
		t.Errorf("repo set without a setting: %q", got)
	}
	if got := e.want(t, 1, "repo", "set", "nope/none", "--run-test-deliveries"); !strings.Contains(got, "nope/none") {
		t.Errorf("repo set of an unknown repository: %q", got)
	}
}

func TestRepoSetEnvMapAndForkApproval(t *testing.T) {
	e := newCLIEnv(t)
	e.want(t, 0, "repo", "add", "https://github.com/acme/app", "--forge", "github")
	id := e.repoID(t, "acme/app")
	out := e.want(t, 0, "repo", "set", "acme/app", "--env-map", "main=production", "--env-map", "release/*=staging",
		"--env-other", "preview-{branch}", "--skip-fork-approval")
	if !strings.Contains(out, "skip_fork_approval=true env_map=main=production,release/*=staging,*=preview-{branch}") {
		t.Errorf("repo set: %q", out)
	}
	r, _ := e.f.GetRepo(t.Context(), 1, id)
	if len(r.EnvMap.Rules) != 2 || r.EnvMap.Rules[1].Branch != "release/*" || r.EnvMap.Other != "preview-{branch}" || !r.SkipForkApproval {
		t.Fatalf("stored: %+v", r)
	}
	if out := e.want(t, 2, "repo", "set", "acme/app", "--env-map", "main"); !strings.Contains(out, "BRANCH=ENVIRONMENT") {
		t.Errorf("bad --env-map: %q", out)
	}
	e.want(t, 2, "repo", "set", "acme/app", "--no-env-map", "--env-other", "x")
	if out := e.want(t, 0, "repo", "set", "acme/app", "--no-env-map", "--skip-fork-approval=false"); !strings.Contains(out, "skip_fork_approval=false env_map=none") {
		t.Errorf("repo set --no-env-map: %q", out)
	}
	out = e.want(t, 0, "repo", "set", "acme/app", "--network-policy", "no-private", "--runtime", "runsc")
	if !strings.Contains(out, "network_policy=no-private runtime=runsc") {
		t.Errorf("repo set --network-policy --runtime: %q", out)
	}
	if r, _ := e.f.GetRepo(t.Context(), 1, id); r.NetworkPolicy != "no-private" || r.Runtime != "runsc" {
		t.Errorf("stored sandbox: %+v", r)
	}
	if out := e.want(t, 0, "repo", "set", "acme/app", "--runtime="); !strings.Contains(out, "network_policy=no-private runtime=default") {
		t.Errorf("repo set --runtime=: %q", out)
	}
}
