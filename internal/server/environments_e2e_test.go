package server

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/expr"
	"github.com/conveyor-ci/conveyor/internal/store"
)

const deployFlow = `name: Deploy
on: push
jobs:
  build:
    runs-on: self-hosted
    steps:
      - run: echo built
  deploy:
    needs: build
    runs-on: self-hosted
    environment:
      name: production
      url: https://example.com/${{ github.ref_name }}
    steps:
      - run: echo "deploying with $KEY"
        env:
          KEY: ${{ secrets.DEPLOY_KEY }}
  notify:
    needs: deploy
    runs-on: self-hosted
    steps:
      - run: echo notified
  stage:
    runs-on: self-hosted
    environment: staging
    steps:
      - run: echo staged
  hotfix:
    if: github.ref == 'refs/heads/hotfix'
    runs-on: self-hosted
    environment: production
    steps:
      - run: echo hotfix
`

// member makes a user with role in organisation 1 and returns a token of
// scope write.
func (h *harness) member(name string, role store.OrgRole) string {
	h.t.Helper()
	ctx := context.Background()
	u := &store.User{Name: name}
	if err := h.st.CreateUser(ctx, u); err != nil {
		h.t.Fatal(err)
	}
	if err := h.st.SetMember(ctx, 1, u.ID, role); err != nil {
		h.t.Fatal(err)
	}
	secret := "cvy_test_" + name
	sum := sha256.Sum256([]byte(secret))
	if err := h.st.CreateToken(ctx, &store.Token{OrgID: 1, UserID: u.ID, Name: name, Role: store.RoleWrite, Hash: sum[:]}); err != nil {
		h.t.Fatal(err)
	}
	return secret
}

// pushRun pushes a new commit to branch and returns the run it made.
func (h *harness) pushRun(branch string, n int) *store.Run {
	h.t.Helper()
	h.git.commit(fmt.Sprintf("change %d", n), map[string]string{fmt.Sprintf("f%d.txt", n): "x"})
	if code, body := h.hook("push", h.push(branch), fmt.Sprintf("delivery-%d", n)); code != 202 {
		h.t.Fatalf("push: %d %s", code, body)
	}
	sha, _ := h.git.head()
	var run *store.Run
	waitFor(h.t, 30*time.Second, "the push's run", func() bool {
		runs, _ := h.st.ListRuns(context.Background(), 1, store.RunFilter{Limit: 100})
		for _, r := range runs {
			if r.SHA == sha && r.Ref == "refs/heads/"+branch && r.Trigger == "webhook" {
				run = r
				return true
			}
		}
		return false
	})
	return run
}

func (h *harness) waitJob(runID int64, key, status string) *store.Job {
	h.t.Helper()
	var j *store.Job
	defer func() {
		if h.t.Failed() && j != nil {
			h.t.Logf("job %s: %s %q", key, j.Status, j.Error)
		}
	}()
	waitFor(h.t, 60*time.Second, fmt.Sprintf("job %s of run %d to be %s", key, runID, status), func() bool {
		j = h.jobs(runID)[key]
		return j != nil && j.Status == status
	})
	return j
}

func (h *harness) waitRun(runID int64) *store.Run {
	h.t.Helper()
	var r *store.Run
	waitFor(h.t, 60*time.Second, fmt.Sprintf("run %d to finish", runID), func() bool {
		r, _ = h.st.GetRun(context.Background(), 1, runID)
		return r != nil && store.Terminal(r.Status)
	})
	return r
}

// reviewOf is "may_review review_refused" of a job of a run, as token
// reads the run.
func reviewOf(h *harness, token string, runID int64, key string) string {
	h.t.Helper()
	code, b, _ := h.agentCall("GET", fmt.Sprintf("/api/runs/%d", runID), token, nil)
	var d api.RunDetail
	if code != 200 || json.Unmarshal(b, &d) != nil {
		h.t.Fatalf("GET run %d: %d %s", runID, code, b)
	}
	for _, j := range d.Jobs {
		if j.Key == key && j.Approval != nil {
			return fmt.Sprintf("%t: %s", j.Approval.MayReview, j.Approval.ReviewRefused)
		}
	}
	return "no approval"
}

// decide posts an approval or rejection as token and returns the status
// and the answered job.
func (h *harness) decide(token string, runID int64, job, verb, comment string) (int, api.Job, string) {
	h.t.Helper()
	code, b, _ := h.agentCall("POST", fmt.Sprintf("/api/runs/%d/jobs/%s/%s", runID, job, verb), token, api.ApprovalInput{Comment: comment})
	var out api.Job
	if code == 200 {
		if err := json.Unmarshal(b, &out); err != nil {
			h.t.Fatal(err)
		}
	}
	return code, out, string(b)
}

// TestEnvironmentApprovals runs a real workflow whose deploy job targets
// a protected production environment on a real server: the job waits
// (never leased) until a reviewer approves through the API, then runs
// with the environment's secret; a rejection fails it and skips its
// dependents; the run's author may not approve it; a branch the policy
// refuses fails the job before it runs; cancel ends a waiting job; a
// re-run waits for a new review; a wait timer holds a job until it ends.
func TestEnvironmentApprovals(t *testing.T) {
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/deploy.yml": deployFlow}})
	bob := h.member("bob", store.OrgDeveloper)        // a listed reviewer
	carol := h.member("carol", store.OrgDeveloper)    // not a reviewer
	octocat := h.member("octocat", store.OrgAdmin)    // pushes (the webhook's sender), an admin
	maint := h.member("maureen", store.OrgMaintainer) // may not change protected environments
	repo := fmt.Sprintf("/api/repos/%d/environments/", h.repo.ID)
	prot := api.EnvironmentInput{Reviewers: []api.Reviewer{{User: "bob"}}, Branches: []string{"main", "release/*"}, PreventSelfReview: true}
	if code, b, _ := h.agentCall("PUT", repo+"production", maint, prot); code != 403 {
		t.Fatalf("a maintainer protects production: %d %s", code, b)
	}
	var env api.Environment
	h.api("PUT", repo+"production", prot, 200, &env)
	if !env.Protected || env.Reviewers[0].User != "bob" || !env.PreventSelfReview {
		t.Fatalf("environment stored as %+v", env)
	}
	h.api("PUT", "/api/secrets/DEPLOY_KEY?repo=octo/repo&env=production", api.SecretInput{Value: "prod-key-value-31"}, 200, nil)

	// 1. Waits for a review; the author and a non-reviewer are refused; bob approves.
	run := h.pushRun("main", 1)
	d := h.waitJob(run.ID, "deploy", store.StatusAwaitingApproval)
	h.waitJob(run.ID, "stage", store.StatusSuccess) // staging was made on first use, unprotected
	var detail api.RunDetail
	h.api("GET", fmt.Sprintf("/api/runs/%d", run.ID), nil, 200, &detail)
	for _, j := range detail.Jobs {
		if j.Key != "deploy" {
			continue
		}
		if j.Status != store.StatusAwaitingApproval || j.Environment == nil || j.Environment.Name != "production" ||
			j.Environment.URL != "https://example.com/main" || j.Approval == nil || len(j.Approval.Reviewers) != 1 {
			t.Fatalf("deploy job answered as %+v", j)
		}
	}
	var envs api.EnvironmentList
	h.api("GET", fmt.Sprintf("/api/repos/%d/environments", h.repo.ID), nil, 200, &envs)
	if len(envs.Items) != 2 || envs.Items[1].Name != "staging" || envs.Items[1].Protected {
		t.Fatalf("environments: %+v", envs.Items)
	}
	// build and stage were leased and ran meanwhile; deploy never was.
	if j := h.jobs(run.ID)["deploy"]; j.Status != store.StatusAwaitingApproval || j.Attempt != 0 {
		t.Fatalf("deploy was leased while awaiting approval: %s attempt %d", j.Status, j.Attempt)
	}
	if code, _, b := h.decide(octocat, run.ID, "deploy", "approve", "mine"); code != 403 || !strings.Contains(b, "own runs") {
		t.Fatalf("self review: %d %s", code, b)
	}
	if code, _, b := h.decide(carol, run.ID, "deploy", "approve", ""); code != 403 || !strings.Contains(b, "not a reviewer") {
		t.Fatalf("a non-reviewer approves: %d %s", code, b)
	}
	// The run's answer tells each caller what the approve route would.
	for who, want := range map[string]string{octocat: "false: .*own runs", carol: "false: .*not a reviewer", bob: "true: $"} {
		if got := reviewOf(h, who, run.ID, "deploy"); !regexp.MustCompile("^" + want).MatchString(got) {
			t.Errorf("may_review and review_refused of deploy: %q, want %q", got, want)
		}
	}
	code, j, b := h.decide(bob, run.ID, itoa(d.ID), "approve", "ship it")
	if code != 200 || len(j.Approval.Decisions) != 1 || j.Approval.Decisions[0].User != "bob" || j.Approval.Decisions[0].Comment != "ship it" {
		t.Fatalf("approve: %d %s", code, b)
	}
	if r := h.waitRun(run.ID); r.Status != store.StatusSuccess {
		t.Fatalf("approved run: %s %s", r.Status, r.Error)
	}
	if log := h.jobLog(run.ID, "deploy"); !strings.Contains(log, "deploying with ***") || strings.Contains(log, "prod-key-value-31") {
		t.Fatalf("deploy log:\n%s", log)
	}
	if code, _, _ := h.decide(bob, run.ID, "deploy", "approve", ""); code != 409 {
		t.Fatalf("approving a finished job: %d", code)
	}

	// 2. Rejected: the job fails with the reason, its dependent is skipped.
	run = h.pushRun("main", 2)
	h.waitJob(run.ID, "deploy", store.StatusAwaitingApproval)
	if code, _, b := h.decide(bob, run.ID, "deploy", "reject", "not on a Friday"); code != 200 {
		t.Fatalf("reject: %d %s", code, b)
	}
	if r := h.waitRun(run.ID); r.Status != store.StatusFailure {
		t.Fatalf("rejected run: %s", r.Status)
	}
	js := h.jobs(run.ID)
	if js["deploy"].Status != store.StatusFailure || js["deploy"].Error != "rejected by bob: not on a Friday" || js["notify"].Status != store.StatusSkipped {
		t.Fatalf("after reject: deploy %s %q, notify %s", js["deploy"].Status, js["deploy"].Error, js["notify"].Status)
	}
	// A re-run of the failed jobs waits for a new review.
	var rerun api.Run
	h.api("POST", fmt.Sprintf("/api/runs/%d/rerun", run.ID), api.RerunInput{Failed: true}, 201, &rerun)
	h.waitJob(rerun.ID, "deploy", store.StatusAwaitingApproval)
	if code, _, b := h.decide(bob, rerun.ID, "deploy", "approve", ""); code != 200 {
		t.Fatalf("approve the re-run: %d %s", code, b)
	}
	if r := h.waitRun(rerun.ID); r.Status != store.StatusSuccess {
		t.Fatalf("re-run: %s", r.Status)
	}

	// 3. Cancel ends a job awaiting approval.
	run = h.pushRun("main", 3)
	h.waitJob(run.ID, "deploy", store.StatusAwaitingApproval)
	h.api("POST", fmt.Sprintf("/api/runs/%d/cancel", run.ID), nil, 200, nil)
	if r := h.waitRun(run.ID); r.Status != store.StatusCancelled || h.jobs(run.ID)["deploy"].Status != store.StatusCancelled {
		t.Fatalf("cancelled run: %s, deploy %s", r.Status, h.jobs(run.ID)["deploy"].Status)
	}

	// 4. A branch the policy refuses: deploy fails before it runs.
	run = h.pushRun("feature", 4)
	if r := h.waitRun(run.ID); r.Status != store.StatusFailure {
		t.Fatalf("feature run: %s", r.Status)
	}
	js = h.jobs(run.ID)
	want := `Branch "feature" is not allowed to deploy to production due to environment protection rules`
	// hotfix's if: is false: no review, no branch rule, it skips itself.
	if js["deploy"].Error != want || !js["deploy"].Started.IsZero() || js["build"].Status != store.StatusSuccess ||
		js["notify"].Status != store.StatusSkipped || js["hotfix"].Status != store.StatusSkipped {
		t.Fatalf("feature run: deploy %s %q (started %v), build %s, notify %s", js["deploy"].Status, js["deploy"].Error,
			js["deploy"].Started, js["build"].Status, js["notify"].Status)
	}

	// 5. A wait timer: staging holds its job 5 minutes (the server's clock
	// is moved on by calling its timer pass with a later time).
	h.api("PUT", repo+"staging", api.EnvironmentInput{WaitMinutes: 5}, 200, nil)
	run = h.pushRun("main", 5)
	st := h.waitJob(run.ID, "stage", store.StatusAwaitingApproval)
	if w := st.Deploy.WaitUntil; w.Before(time.Now().Add(4*time.Minute)) || w.After(time.Now().Add(6*time.Minute)) {
		t.Fatalf("wait_until %v, want about 5 minutes from now", w)
	}
	h.srv.openGates(context.Background(), time.Now())
	if j := h.jobs(run.ID)["stage"]; j.Status != store.StatusAwaitingApproval {
		t.Fatalf("stage before its timer: %s", j.Status)
	}
	h.srv.openGates(context.Background(), time.Now().Add(6*time.Minute))
	h.waitJob(run.ID, "stage", store.StatusSuccess)
	h.api("POST", fmt.Sprintf("/api/runs/%d/cancel", run.ID), nil, 200, nil)

	// Every decision is in the audit log.
	var audit api.AuditList
	h.api("GET", "/api/audit", nil, 200, &audit)
	var actions []string
	for _, e := range audit.Entries {
		if strings.HasPrefix(e.Action, "approval.") || strings.HasPrefix(e.Action, "environment.") {
			actions = append(actions, e.Action+" "+e.Actor[:strings.Index(e.Actor, " ")])
		}
	}
	got := strings.Join(actions, ", ")
	for _, w := range []string{"approval.approve bob", "approval.reject bob", "environment.set admin"} {
		if !strings.Contains(got, w) {
			t.Errorf("audit log lacks %q: %s", w, got)
		}
	}
}

const gitopsFlow = `name: GitOps
on: push
jobs:
  test:
    runs-on: self-hosted
    steps:
      - run: echo tested
  ship:
    needs: test
    runs-on: self-hosted
    environment: ${{ vars.CONVEYOR_ENVIRONMENT }}
    steps:
      - run: echo "shipping to ${{ vars.CONVEYOR_ENVIRONMENT }} with $KEY"
        env:
          KEY: ${{ secrets.SHIP_KEY }}
`

// TestBranchEnvironments maps branches to environments (GitOps): main
// deploys to production (protected: it waits for a review), release/* to
// staging, other branches to an environment of their own, made on first
// use and deleted with the branch.
func TestBranchEnvironments(t *testing.T) {
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/gitops.yml": gitopsFlow}})
	m := store.EnvMapping{Rules: []store.EnvRule{{Branch: "main", Environment: "production"}, {Branch: "release/*", Environment: "staging"}},
		Other: "preview-{branch}"}
	var repo api.Repo
	h.api("PATCH", fmt.Sprintf("/api/repos/%d", h.repo.ID), api.RepoUpdate{EnvMap: &m}, 200, &repo)
	if repo.EnvMap == nil || len(repo.EnvMap.Rules) != 2 || repo.EnvMap.Other != "preview-{branch}" {
		t.Fatalf("repo answered %+v", repo)
	}
	bad := store.EnvMapping{Rules: []store.EnvRule{{Branch: "main", Environment: "a,b"}}}
	h.api("PATCH", fmt.Sprintf("/api/repos/%d", h.repo.ID), api.RepoUpdate{EnvMap: &bad}, 400, nil)
	envs := fmt.Sprintf("/api/repos/%d/environments/", h.repo.ID)
	h.api("PUT", envs+"production", api.EnvironmentInput{Reviewers: []api.Reviewer{{Role: "admin"}}}, 200, nil)
	h.api("PUT", "/api/secrets/SHIP_KEY?repo=octo/repo&env=staging", api.SecretInput{Value: "staging-key-77"}, 200, nil)

	run := h.pushRun("release/2.0", 1)
	if r := h.waitRun(run.ID); r.Status != store.StatusSuccess {
		t.Fatalf("release run: %s %s", r.Status, r.Error)
	}
	if log := h.jobLog(run.ID, "ship"); !strings.Contains(log, "shipping to staging with ***") {
		t.Fatalf("ship log on release/2.0:\n%s", log)
	}

	run = h.pushRun("feature/x", 2)
	if r := h.waitRun(run.ID); r.Status != store.StatusSuccess {
		t.Fatalf("feature run: %s %s", r.Status, r.Error)
	}
	if j := h.jobs(run.ID)["ship"]; j.Deploy == nil || j.Deploy.Environment != "preview-feature/x" {
		t.Fatalf("ship on feature/x deployed to %+v", j.Deploy)
	}
	var env api.Environment
	h.api("GET", envs+"preview-feature%2Fx", nil, 200, &env)
	if env.Branch != "feature/x" || env.Protected {
		t.Fatalf("per-branch environment: %+v", env)
	}

	run = h.pushRun("main", 3)
	h.waitJob(run.ID, "ship", store.StatusAwaitingApproval)
	h.api("POST", fmt.Sprintf("/api/runs/%d/jobs/ship/approve", run.ID), api.ApprovalInput{}, 200, nil)
	if r := h.waitRun(run.ID); r.Status != store.StatusSuccess {
		t.Fatalf("main run: %s", r.Status)
	}

	// Deleting the branch deletes its environment; the others stay.
	del := h.push("feature/x")
	del["deleted"], del["created"], del["after"] = true, false, "0000000000000000000000000000000000000000"
	if code, body := h.hook("push", del, "delivery-delete"); code != 202 {
		t.Fatalf("delete push: %d %s", code, body)
	}
	waitFor(t, 30*time.Second, "the branch's environment to go", func() bool {
		_, err := h.st.GetEnvironment(context.Background(), 1, h.repo.ID, "preview-feature/x")
		return err != nil
	})
	for _, name := range []string{"production", "staging"} {
		if _, err := h.st.GetEnvironment(context.Background(), 1, h.repo.ID, name); err != nil {
			t.Errorf("environment %s: %v", name, err)
		}
	}
}

// awaitingRun waits for a run awaiting approval and returns it.
func (h *harness) awaitingRun() *store.Run {
	h.t.Helper()
	var run *store.Run
	waitFor(h.t, 30*time.Second, "a run awaiting approval", func() bool {
		runs, _ := h.st.ListRuns(context.Background(), 1, store.RunFilter{Status: store.StatusAwaitingApproval, Limit: 1})
		if len(runs) == 1 {
			run = runs[0]
		}
		return run != nil
	})
	return run
}

// approveForkRun approves the run awaiting approval, as the admin.
func (h *harness) approveForkRun() {
	h.t.Helper()
	run := h.awaitingRun()
	h.api("POST", fmt.Sprintf("/api/runs/%d/approve", run.ID), api.ApprovalInput{Comment: "looked at it"}, 200, nil)
}

// forkPR posts a pull request from a fork of the repository.
func (h *harness) forkPR(n int) {
	h.t.Helper()
	sha, _ := h.git.head()
	base := map[string]any{"full_name": "octo/repo", "clone_url": "file://" + h.git.dir, "default_branch": "main"}
	fork := map[string]any{"full_name": "mallory/repo", "clone_url": "file://" + h.git.dir}
	pr := map[string]any{"action": "opened", "number": n, "repository": base, "sender": map[string]any{"login": "mallory"},
		"pull_request": map[string]any{"number": n, "head": map[string]any{"ref": fmt.Sprintf("evil-%d", n), "sha": sha, "repo": fork},
			"base": map[string]any{"ref": "main", "sha": sha, "repo": base}}}
	if code, body := h.hook("pull_request", pr, fmt.Sprintf("pr-%d", n)); code != 202 {
		h.t.Fatalf("pull_request: %d %s", code, body)
	}
}

const prFlow = `name: PR
on: pull_request
jobs:
  test:
    runs-on: self-hosted
    steps:
      - run: echo tested
  lint:
    needs: test
    runs-on: self-hosted
    steps:
      - run: echo linted
`

// TestForkRunApproval: a fork's pull request run waits, no job leased,
// until a maintainer approves it (a developer may not); a rejection
// cancels it; with skip_fork_approval (set by an admin only) it starts at once.
func TestForkRunApproval(t *testing.T) {
	h := newHarness(t, harnessOpts{files: map[string]string{".github/workflows/pr.yml": prFlow}})
	dev := h.member("dave", store.OrgDeveloper)
	maint := h.member("maureen", store.OrgMaintainer)

	h.forkPR(1)
	run := h.awaitingRun()
	js := h.jobs(run.ID)
	if js["test"].Status != store.StatusQueued || js["test"].Attempt != 0 || js["lint"].Status != store.StatusWaiting {
		t.Fatalf("jobs of a run awaiting approval: test %s (attempt %d), lint %s", js["test"].Status, js["test"].Attempt, js["lint"].Status)
	}
	var detail api.RunDetail
	h.api("GET", fmt.Sprintf("/api/runs/%d", run.ID), nil, 200, &detail)
	if detail.Run.Status != store.StatusAwaitingApproval {
		t.Fatalf("run answered as %s", detail.Run.Status)
	}
	if code, b, _ := h.agentCall("POST", fmt.Sprintf("/api/runs/%d/approve", run.ID), dev, nil); code != 403 {
		t.Fatalf("a developer approves a fork's run: %d %s", code, b)
	}
	if code, b, _ := h.agentCall("POST", fmt.Sprintf("/api/runs/%d/approve", run.ID), maint, api.ApprovalInput{Comment: "ok"}); code != 200 {
		t.Fatalf("a maintainer approves: %d %s", code, b)
	}
	if r := h.waitRun(run.ID); r.Status != store.StatusSuccess {
		t.Fatalf("approved fork run: %s %s", r.Status, r.Error)
	}
	if code, _, _ := h.agentCall("POST", fmt.Sprintf("/api/runs/%d/approve", run.ID), maint, nil); code != 409 {
		t.Fatalf("approving a finished run: %d", code)
	}

	h.forkPR(2)
	run = h.awaitingRun()
	if code, b, _ := h.agentCall("POST", fmt.Sprintf("/api/runs/%d/reject", run.ID), maint, api.ApprovalInput{Comment: "crypto miner"}); code != 200 {
		t.Fatalf("reject: %d %s", code, b)
	}
	if r := h.waitRun(run.ID); r.Status != store.StatusCancelled || r.Error != "rejected by maureen: crypto miner" {
		t.Fatalf("rejected fork run: %s %q", r.Status, r.Error)
	}

	on := true
	if code, b, _ := h.agentCall("PATCH", fmt.Sprintf("/api/repos/%d", h.repo.ID), maint, api.RepoUpdate{SkipForkApproval: &on}); code != 403 {
		t.Fatalf("a maintainer turns the fork approval off: %d %s", code, b)
	}
	h.api("PATCH", fmt.Sprintf("/api/repos/%d", h.repo.ID), api.RepoUpdate{SkipForkApproval: &on}, 200, nil)
	h.forkPR(3)
	runs := h.waitRuns(3, 60*time.Second)
	if runs[0].Status != store.StatusSuccess {
		t.Fatalf("fork run without approval: %s", runs[0].Status)
	}
	var audit api.AuditList
	h.api("GET", "/api/audit", nil, 200, &audit)
	var got []string
	for _, e := range audit.Entries {
		got = append(got, e.Action)
	}
	for _, w := range []string{"approval.run.approve", "approval.run.reject"} {
		if !strings.Contains(strings.Join(got, " "), w) {
			t.Errorf("audit lacks %s: %v", w, got)
		}
	}
}

const sandboxFlow = `name: Sandbox
on: push
jobs:
  probe:
    runs-on: self-hosted
    steps:
      - run: echo probing
`

// TestRepoSandboxSettings: a repository's network policy and runtime
// reach its jobs' sandboxes on the server's workers and on agents (the
// host backend, which cannot apply them, refuses the job with the reason;
// the Docker backend's enforcement is internal/backend/docker's tests).
func TestRepoSandboxSettings(t *testing.T) {
	for _, where := range []string{"worker", "agent"} {
		t.Run(where, func(t *testing.T) {
			cfg := Config{}
			if where == "agent" {
				cfg = Config{Workers: -1, AgentPoll: 200 * time.Millisecond}
			}
			h := newHarness(t, harnessOpts{cfg: cfg, files: map[string]string{".github/workflows/sandbox.yml": sandboxFlow}})
			if where == "agent" {
				h.startAgent("sandboxed", 1, time.Minute, "self-hosted", "linux")
			}
			maint := h.member("maureen", store.OrgMaintainer)
			none, runsc, empty, open := "none", "runsc", "", "open"
			repo := fmt.Sprintf("/api/repos/%d", h.repo.ID)
			if code, b, _ := h.agentCall("PATCH", repo, maint, api.RepoUpdate{NetworkPolicy: &open}); code != 403 {
				t.Fatalf("a maintainer changes the sandbox: %d %s", code, b)
			}
			bogus := "closed"
			h.api("PATCH", repo, api.RepoUpdate{NetworkPolicy: &bogus}, 400, nil)
			for i, c := range []struct {
				set     api.RepoUpdate
				status  string
				errPart string
			}{
				{api.RepoUpdate{NetworkPolicy: &none}, store.StatusFailure, `network policy "none": the host backend cannot confine`},
				{api.RepoUpdate{NetworkPolicy: &open, Runtime: &runsc}, store.StatusFailure, `asks for runtime "runsc"`},
				{api.RepoUpdate{Runtime: &empty}, store.StatusSuccess, ""},
			} {
				h.api("PATCH", repo, c.set, 200, nil)
				run := h.pushRun("main", i+1)
				r := h.waitRun(run.ID)
				j := h.jobs(run.ID)["probe"]
				if r.Status != c.status || !strings.Contains(j.Error+h.jobLog(run.ID, "probe"), c.errPart) {
					t.Errorf("case %d: run %s, job %s %q, want %s with %q", i, r.Status, j.Status, j.Error, c.status, c.errPart)
				}
			}
		})
	}
}

func TestSkipsAnyway(t *testing.T) {
	c := &expr.Context{Values: map[string]any{"github": map[string]any{"ref": "refs/heads/feature", "event_name": "push"},
		"inputs": map[string]any{}, "vars": map[string]any{}}}
	for cond, want := range map[string]bool{
		"":                                       false,
		"github.ref == 'refs/heads/main'":        true,
		"${{ github.ref == 'refs/heads/main' }}": true,
		"github.ref == 'refs/heads/feature'":     false,
		"always() && github.ref == 'refs/heads/main'": false, // a status function: decided at run time
		"needs.build.outputs.x == 'y'":                false,
		"matrix.os == 'linux'":                        false,
		"${{ false }} && x":                           false,
	} {
		if got := skipsAnyway(cond, c); got != want {
			t.Errorf("skipsAnyway(%q) = %v, want %v", cond, got, want)
		}
	}
}
