package server

import (
	"context"
	"encoding/base64"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/store"
)

const secretsFlow = `name: Secrets
on: [push, pull_request]
jobs:
  plain:
    runs-on: self-hosted
    steps:
      - run: |
          echo "token=${{ secrets.DEPLOY_TOKEN }} org=${{ secrets.ORG_ONLY }} region=${{ vars.REGION }}"
          printf '%s' "${{ secrets.DEPLOY_TOKEN }}" | base64
          if [ -n "${{ secrets.DEPLOY_TOKEN }}" ]; then echo "has-token"; else echo "no-token"; fi
          [ "${{ secrets.DEPLOY_TOKEN }}" = "repo-deploy-value-17" ] && echo "repo-level secret"
          true
  deploy:
    runs-on: self-hosted
    environment: production
    steps:
      - run: |
          echo "token=$T region=${{ vars.REGION }}"
          [ "$T" = "prod-deploy-value-42" ] && echo "environment-level secret wins"
          true
        env:
          T: ${{ secrets.DEPLOY_TOKEN }}
`

// The values set below; none may reach a stored log, in any encoding.
var secretValues = []string{"repo-deploy-value-17", "prod-deploy-value-42", "org-only-value-99"}

// setSecrets stores the organisation's, the repository's and the
// production environment's values through the API (as the admin).
func (h *harness) setSecrets() {
	h.t.Helper()
	repo := "?repo=" + itoa(h.repo.ID)
	h.api("PUT", "/api/secrets/DEPLOY_TOKEN?repo=octo/repo", api.SecretInput{Value: "repo-deploy-value-17"}, 200, nil)
	h.api("PUT", "/api/secrets/deploy_token"+repo+"&env=production", api.SecretInput{Value: "prod-deploy-value-42"}, 200, nil)
	h.api("PUT", "/api/secrets/ORG_ONLY?org=true", api.SecretInput{Value: "org-only-value-99"}, 200, nil)
	h.api("PUT", "/api/vars/REGION"+repo, api.SecretInput{Value: "eu-west"}, 200, nil)
	h.api("PUT", "/api/vars/REGION"+repo+"&env=production", api.SecretInput{Value: "us-east"}, 200, nil)
}

// checkSecretLogs asserts what the push run's jobs saw, and that no
// secret value is in their stored logs.
func (h *harness) checkSecretLogs(run *store.Run) {
	h.t.Helper()
	plain, deploy := h.jobLog(run.ID, "plain"), h.jobLog(run.ID, "deploy")
	for _, want := range []string{"token=*** org=*** region=eu-west", "has-token", "repo-level secret"} {
		if !strings.Contains(plain, want) {
			h.t.Errorf("plain job's log lacks %q:\n%s", want, plain)
		}
	}
	for _, want := range []string{"token=*** region=us-east", "environment-level secret wins"} {
		if !strings.Contains(deploy, want) {
			h.t.Errorf("deploy job's log lacks %q:\n%s", want, deploy)
		}
	}
	for _, v := range secretValues {
		for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v))} {
			if strings.Contains(plain+deploy, form) {
				h.t.Errorf("a stored log holds %q", form)
			}
		}
	}
}

func TestJobsGetSecretsOnWorkers(t *testing.T) {
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/secrets.yml": secretsFlow}})
	h.setSecrets()
	if code, body := h.hook("push", h.push("main"), "d-push"); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	runs := h.waitRuns(1, 60*time.Second)
	if runs[0].Status != store.StatusSuccess {
		t.Fatalf("run: %s%s", runs[0].Status, describeRuns(runs))
	}
	h.checkSecretLogs(runs[0])

	// A pull request from a fork: no secrets, variables as usual.
	sha, _ := h.git.head()
	base := map[string]any{"full_name": "octo/repo", "clone_url": "file://" + h.git.dir, "default_branch": "main"}
	fork := map[string]any{"full_name": "mallory/repo", "clone_url": "file://" + h.git.dir}
	pr := map[string]any{"action": "opened", "number": 9, "repository": base, "sender": map[string]any{"login": "mallory"},
		"pull_request": map[string]any{"number": 9, "head": map[string]any{"ref": "evil", "sha": sha, "repo": fork},
			"base": map[string]any{"ref": "main", "sha": sha, "repo": base}}}
	if code, body := h.hook("pull_request", pr, "d-pr"); code != http.StatusAccepted {
		t.Fatalf("pull_request: %d %s", code, body)
	}
	h.approveForkRun() // waits for a maintainer's approval by default
	runs = h.waitRuns(2, 60*time.Second)
	l := h.jobLog(runs[0].ID, "plain")
	if runs[0].Event != "pull_request" || !strings.Contains(l, "no-token") || !strings.Contains(l, "region=eu-west") {
		t.Errorf("the fork's run (%s) got secrets or lost variables:\n%s", runs[0].Event, l)
	}
}

func TestJobsGetSecretsOnAgents(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: Config{Workers: -1, AgentPoll: time.Second},
		files: map[string]string{".github/workflows/secrets.yml": secretsFlow}})
	ra := h.startAgent("agent-s", 2, time.Minute, "self-hosted")
	h.setSecrets()
	if code, body := h.hook("push", h.push("main"), "d-push"); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	runs := h.waitRuns(1, 60*time.Second)
	if runs[0].Status != store.StatusSuccess {
		t.Fatalf("run: %s%s", runs[0].Status, describeRuns(runs))
	}
	for _, j := range h.jobs(runs[0].ID) {
		if j.LeaseOwner != ra.owner() {
			t.Errorf("job %s ran on %q, not the agent", j.Key, j.LeaseOwner)
		}
	}
	h.checkSecretLogs(runs[0])
	// Nothing the agent keeps on disk holds a secret in plain text.
	err := filepath.WalkDir(ra.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		for _, v := range secretValues {
			if strings.Contains(string(b), v) {
				t.Errorf("%s holds secret %q", p, v)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Roles: developers list names (never values), viewers nothing; a
// maintainer changes repository and environment values but not the
// organisation's; every change is audited.
func TestSecretRoles(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: Config{Workers: -1}, files: map[string]string{".github/workflows/secrets.yml": secretsFlow}})
	fx := &accessFixture{h: h}
	maint := fx.user(t, "maint", 1, store.OrgMaintainer, store.RoleAdmin)
	dev := fx.user(t, "dev", 1, store.OrgDeveloper, store.RoleRead)
	viewer := fx.user(t, "view", 1, store.OrgViewer, store.RoleAdmin)
	call := func(c *accessCaller, method, path string, body any, want int) string {
		t.Helper()
		code, b, _ := h.agentCall(method, path, c.token, body)
		if code != want {
			t.Fatalf("%s %s as %s: %d %s (want %d)", method, path, c.name, code, b, want)
		}
		return string(b)
	}
	repo := "?repo=" + itoa(h.repo.ID)
	call(maint, "PUT", "/api/secrets/API_KEY"+repo, api.SecretInput{Value: "maint-set-value"}, 200)
	call(maint, "PUT", "/api/secrets/API_KEY"+repo+"&env=staging", api.SecretInput{Value: "staging-value"}, 200)
	call(maint, "PUT", "/api/secrets/ORG_KEY?org=true", api.SecretInput{Value: "nope"}, 403)
	call(maint, "PUT", "/api/secrets/EMPTY"+repo, api.SecretInput{Value: ""}, 400)
	call(maint, "PUT", "/api/secrets/GITHUB_TOKEN"+repo, api.SecretInput{Value: "x"}, 400)
	call(maint, "PUT", "/api/secrets/1BAD"+repo, api.SecretInput{Value: "x"}, 400)
	call(maint, "PUT", "/api/secrets/API_KEY", api.SecretInput{Value: "x"}, 400) // no scope
	call(maint, "PUT", "/api/secrets/API_KEY?repo=octo/none", api.SecretInput{Value: "x"}, 404)
	h.api("PUT", "/api/secrets/ORG_KEY?org=true", api.SecretInput{Value: "admin-org-value"}, 200, nil)

	list := call(dev, "GET", "/api/secrets", nil, 200)
	for _, want := range []string{`"API_KEY"`, `"ORG_KEY"`, `"staging"`, `"maint"`} {
		if !strings.Contains(list, want) {
			t.Errorf("list lacks %s: %s", want, list)
		}
	}
	for _, v := range []string{"maint-set-value", "staging-value", "admin-org-value"} {
		if strings.Contains(list, v) {
			t.Errorf("list shows a value: %s", list)
		}
	}
	call(viewer, "GET", "/api/secrets", nil, 403)
	call(dev, "DELETE", "/api/secrets/API_KEY"+repo, nil, 403)
	call(maint, "DELETE", "/api/secrets/API_KEY"+repo+"&env=staging", nil, 204)
	call(maint, "DELETE", "/api/secrets/API_KEY"+repo+"&env=staging", nil, 404)

	entries, err := h.st.ListAudit(context.Background(), 1, store.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if strings.HasPrefix(e.Action, "secret.") {
			got = append(got, e.Action+" "+e.Target+" by "+strings.Fields(e.Actor)[0])
		}
	}
	want := []string{
		"secret.delete secret API_KEY (repo octo/repo, environment staging) by maint",
		"secret.set secret ORG_KEY (organisation) by admin",
		"secret.set secret API_KEY (repo octo/repo, environment staging) by maint",
		"secret.set secret API_KEY (repo octo/repo) by maint",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

const callerFlow = `name: Caller
on: push
jobs:
  inherit:
    uses: ./.github/workflows/called.yml
    secrets: inherit
  explicit:
    uses: ./.github/workflows/called.yml
    secrets:
      DEPLOY_TOKEN: ${{ secrets.ORG_ONLY }}
`

const calledFlow = `name: Called
on:
  workflow_call:
    secrets:
      DEPLOY_TOKEN:
        required: true
jobs:
  show:
    runs-on: self-hosted
    steps:
      - run: |
          echo "called token=${{ secrets.DEPLOY_TOKEN }}"
          [ "${{ secrets.DEPLOY_TOKEN }}" = "repo-deploy-value-17" ] && echo "inherited the repository's"
          [ "${{ secrets.DEPLOY_TOKEN }}" = "org-only-value-99" ] && echo "passed the organisation's"
          true
`

// A reusable workflow gets secrets: inherit and explicit secrets from the
// stored ones, masked.
func TestReusableWorkflowGetsSecrets(t *testing.T) {
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/caller.yml": callerFlow,
		".github/workflows/called.yml": calledFlow}})
	h.setSecrets()
	if code, body := h.hook("push", h.push("main"), "d-push"); code != http.StatusAccepted {
		t.Fatalf("push: %d %s", code, body)
	}
	runs := h.waitRuns(1, 60*time.Second)
	if runs[0].Status != store.StatusSuccess {
		t.Fatalf("run: %s%s", runs[0].Status, describeRuns(runs))
	}
	inherit, explicit := h.jobLog(runs[0].ID, "inherit"), h.jobLog(runs[0].ID, "explicit")
	if !strings.Contains(inherit, "called token=***") || !strings.Contains(inherit, "inherited the repository's") {
		t.Errorf("secrets: inherit:\n%s", inherit)
	}
	if !strings.Contains(explicit, "called token=***") || !strings.Contains(explicit, "passed the organisation's") {
		t.Errorf("explicit secrets:\n%s", explicit)
	}
	for _, v := range secretValues {
		if strings.Contains(inherit+explicit, v) {
			t.Errorf("a stored log holds %q", v)
		}
	}
}
