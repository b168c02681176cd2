package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/store"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

const uiDeployFlow = `name: Deploy
on: push
jobs:
  deploy:
    runs-on: ubuntu-latest
    environment: production
    steps:
      - run: echo deploying
  notify:
    needs: deploy
    runs-on: ubuntu-latest
    steps:
      - run: echo notified
`

// uiUser adds a member with a password, who may sign in to the UI.
func uiUser(h *harness, name string, role store.OrgRole) {
	h.t.Helper()
	h.api("POST", "/api/users", api.UserInput{Name: name, Role: string(role), Password: uiPassword}, http.StatusCreated, nil)
}

// click clicks the element of sel and waits for the page it loads.
func (b *browser) click(sel string) {
	b.t.Helper()
	if _, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		b.t.Fatalf("clicking %s: %v", sel, err)
	}
}

// jobRow is the text of the row of job key on a run page.
func jobRow(b *browser, key string) string {
	return eval[string](b, fmt.Sprintf(`(document.querySelector('tr[data-job=%q]') || {}).textContent || ""`, key))
}

// TestUIBrowserApprovals: the run's author, a reviewer of an environment
// without self review, sees no buttons but the reason; another reviewer
// signs in, sees the job awaiting approval with its environment, approves
// it with a comment and watches the run succeed; on a second run a
// rejection fails the job ("rejected by ...") and skips its dependent.
func TestUIBrowserApprovals(t *testing.T) {
	testenv.Chromium(t) // before the server starts: a skip is quick
	h := uiHarness(t, map[string]string{".github/workflows/deploy.yml": uiDeployFlow})
	uiUser(h, "rita", store.OrgDeveloper)
	uiUser(h, "octocat", store.OrgDeveloper) // the pushes' sender
	h.api("PUT", fmt.Sprintf("/api/repos/%d/environments/production", h.repo.ID),
		api.EnvironmentInput{Reviewers: []api.Reviewer{{User: "rita"}, {User: "octocat"}}, PreventSelfReview: true}, http.StatusOK, nil)

	run := h.pushRun("main", 1)
	h.waitJob(run.ID, "deploy", store.StatusAwaitingApproval)
	b := newBrowser(t, h.url)
	b.open("/login")
	b.login("octocat", uiPassword)
	uiSelfReview(t, b, run)
	b.click("form[action='/logout'] button")
	b.open("/login")
	b.login("rita", uiPassword)
	b.open(fmt.Sprintf("/runs/%d", run.ID))
	b.waitJS("the approval form", `document.querySelector("tr[data-job=deploy] form.approve")`, 10*time.Second)
	if row := jobRow(b, "deploy"); !strings.Contains(row, "awaiting approval") || !strings.Contains(row, "environment production") ||
		!strings.Contains(row, "Reviewers: rita, octocat") || strings.Contains(row, "You cannot") {
		t.Errorf("the deploy row: %s", row)
	}
	b.screenshot("10-job-awaiting-approval")
	b.do(chromedp.SendKeys(chromedp.CSS("tr[data-job=deploy] input[name=comment]"), "ship <it>"))
	b.click("tr[data-job=deploy] button.approve-job")
	b.waitJS("the approved run to succeed", `document.querySelector("h1 .st-success")`, 90*time.Second)
	if row := jobRow(b, "deploy"); !strings.Contains(row, "rita approved: “ship <it>”") {
		t.Errorf("the deploy row after the approval: %s", row)
	}
	b.noExecution("approved run")
	if r := h.waitRun(run.ID); r.Status != store.StatusSuccess {
		t.Fatalf("approved run: %s %s", r.Status, r.Error)
	}

	run = h.pushRun("main", 2)
	h.waitJob(run.ID, "deploy", store.StatusAwaitingApproval)
	b.open(fmt.Sprintf("/runs/%d", run.ID))
	b.waitJS("the approval form", `document.querySelector("tr[data-job=deploy] form.approve")`, 10*time.Second)
	b.do(chromedp.SendKeys(chromedp.CSS("tr[data-job=deploy] input[name=comment]"), "not today"))
	b.click("tr[data-job=deploy] button.reject-job")
	b.waitJS("the rejected run to fail", `document.querySelector("h1 .st-failure")`, 60*time.Second)
	if row := jobRow(b, "deploy"); !strings.Contains(row, "rejected by rita: not today") {
		t.Errorf("the deploy row after the rejection: %s", row)
	}
	b.waitJS("notify skipped", `document.querySelector("tr[data-job=notify] .st-skipped")`, 10*time.Second)
	b.screenshot("11-job-rejected")
	b.noExecution("rejected run")
	js := h.jobs(run.ID)
	if js["deploy"].Status != store.StatusFailure || js["notify"].Status != store.StatusSkipped {
		t.Errorf("after the rejection: deploy %s, notify %s", js["deploy"].Status, js["notify"].Status)
	}
}

// uiSelfReview: the author of run, one of the reviewers of an environment
// that forbids self review, is offered no Approve or Reject (the API
// would refuse them) but told why.
func uiSelfReview(t *testing.T, b *browser, run *store.Run) {
	b.open(fmt.Sprintf("/runs/%d", run.ID))
	b.waitJS("the deploy row", `document.querySelector("tr[data-job=deploy]")`, 10*time.Second)
	if n := eval[int](b, `document.querySelectorAll("tr[data-job=deploy] form.approve, tr[data-job=deploy] button").length`); n != 0 {
		t.Errorf("the run's author is offered %d approval forms or buttons on an environment without self review", n)
	}
	if row := jobRow(b, "deploy"); !strings.Contains(row, "awaiting approval") ||
		!strings.Contains(row, "You cannot approve or reject this job: user octocat triggered this run and environment production does not let reviewers approve their own runs") {
		t.Errorf("the deploy row as the run's author: %s", row)
	}
	b.screenshot("10a-self-review-refused")
	b.noExecution("self review")
}

// TestUIBrowserForkRun: a fork's pull request run awaits a maintainer;
// a developer sees no buttons; the admin approves it in the page and it
// runs; a second one is rejected with a comment and ends cancelled.
func TestUIBrowserForkRun(t *testing.T) {
	testenv.Chromium(t) // before the server starts: a skip is quick
	h := uiHarness(t, map[string]string{".github/workflows/pr.yml": strings.ReplaceAll(prFlow, "self-hosted", "ubuntu-latest")})
	uiUser(h, "dave", store.OrgDeveloper)
	h.forkPR(1)
	run := h.awaitingRun()
	runPath := fmt.Sprintf("/runs/%d", run.ID)
	b := newBrowser(t, h.url)
	b.open(runPath)
	b.login("dave", uiPassword)
	b.waitJS("the approval notice", `document.getElementById("run-approval-title")`, 10*time.Second)
	if eval[bool](b, `!!document.getElementById("approve-run")`) {
		t.Error("a developer is offered to approve a fork's run")
	}
	b.click("form[action='/logout'] button")
	b.open(runPath)
	b.login("admin", uiPassword)
	b.waitJS("the approve button", `document.getElementById("approve-run")`, 10*time.Second)
	b.screenshot("12-fork-run-awaiting-approval")
	b.do(chromedp.SendKeys(chromedp.CSS("#run-comment"), "looked at it"))
	b.click("#approve-run")
	b.waitJS("the approved fork run to succeed", `document.querySelector("h1 .st-success")`, 90*time.Second)
	b.noExecution("approved fork run")

	h.forkPR(2)
	run = h.awaitingRun()
	b.open(fmt.Sprintf("/runs/%d", run.ID))
	b.waitJS("the reject button", `document.getElementById("reject-run")`, 10*time.Second)
	b.do(chromedp.SendKeys(chromedp.CSS("#run-comment"), "crypto miner"))
	b.click("#reject-run")
	b.waitJS("the rejected fork run", `document.querySelector("h1 .st-cancelled")`, 30*time.Second)
	if text := eval[string](b, `document.getElementById("main").textContent`); !strings.Contains(text, "rejected by admin: crypto miner") {
		t.Errorf("the rejected run's page lacks the reason:\n%s", text)
	}
	b.noExecution("rejected fork run")
	if r := h.waitRun(run.ID); r.Status != store.StatusCancelled {
		t.Errorf("rejected fork run: %s", r.Status)
	}
}

// submit fills the form of the first field: text fields by CSS selector,
// and submits it.
func (b *browser) submit(fields map[string]string, first string) {
	b.t.Helper()
	b.do(chromedp.WaitVisible(chromedp.CSS(first)))
	for sel, val := range fields {
		b.do(chromedp.SetValue(chromedp.CSS(sel), val))
	}
	if _, err := chromedp.RunResponse(b.ctx, chromedp.Submit(chromedp.CSS(first))); err != nil {
		b.t.Fatalf("submitting %s: %v", first, err)
	}
}

// TestUIBrowserEnvironments: an admin protects an environment through
// the repository settings page (reviewers, timer, branches, self review),
// edits it, sets the sandbox and the branch mapping, deletes another
// environment, and the API reads back what the page set.
func TestUIBrowserEnvironments(t *testing.T) {
	testenv.Chromium(t) // before the server starts: a skip is quick
	h := uiHarness(t, map[string]string{".github/workflows/deploy.yml": uiDeployFlow})
	uiUser(h, "rita", store.OrgDeveloper)
	settings := fmt.Sprintf("/repos/%d/settings", h.repo.ID)
	b := newBrowser(t, h.url)
	b.open(settings)
	b.login("admin", uiPassword)
	b.submit(map[string]string{"#e-name": "production", "#e-reviewers": "rita, role:maintainer", "#e-wait": "5",
		"#e-branches": "main, release/*"}, "#e-name")
	var env api.Environment
	h.api("GET", fmt.Sprintf("/api/repos/%d/environments/production", h.repo.ID), nil, http.StatusOK, &env)
	if fmt.Sprint(env.Reviewers) != "[{rita } { maintainer}]" || env.WaitMinutes != 5 || fmt.Sprint(env.Branches) != "[main release/*]" ||
		!env.Protected || env.PreventSelfReview {
		t.Fatalf("environment set through the page: %+v", env)
	}
	// Edit: the form comes filled in; prevent self review and drop the timer.
	b.open(settings + "?env=production#env-form")
	if got := eval[string](b, `document.getElementById("e-reviewers").value`); got != "rita, role:maintainer" {
		t.Errorf("the edit form's reviewers: %q", got)
	}
	b.do(chromedp.Click(chromedp.CSS("#e-self")))
	b.submit(map[string]string{"#e-wait": ""}, "#e-name")
	h.api("GET", fmt.Sprintf("/api/repos/%d/environments/production", h.repo.ID), nil, http.StatusOK, &env)
	if !env.PreventSelfReview || env.WaitMinutes != 0 || len(env.Reviewers) != 2 {
		t.Errorf("environment after the edit: %+v", env)
	}
	uiSandboxForms(t, b, h)
	b.submit(map[string]string{"#e-name": "staging"}, "#e-name")
	b.do(chromedp.WaitVisible(chromedp.CSS("tr[data-env=staging]")))
	b.screenshot("13-environments")
	b.noExecution("environments")
	b.click(`button[aria-label="Delete environment staging"]`)
	var envs api.EnvironmentList
	h.api("GET", fmt.Sprintf("/api/repos/%d/environments", h.repo.ID), nil, http.StatusOK, &envs)
	if len(envs.Items) != 1 || envs.Items[0].Name != "production" {
		t.Errorf("environments after deleting staging: %+v", envs.Items)
	}
}

// uiSandboxForms sets the network policy, runtime, fork approval and
// branch mapping through the settings page.
func uiSandboxForms(t *testing.T, b *browser, h *harness) {
	b.do(chromedp.Click(chromedp.CSS("#x-skipfork")))
	b.submit(map[string]string{"#x-policy": "no-private", "#x-runtime": "runc"}, "#x-runtime")
	b.submit(map[string]string{"#m-rules": "main = production\nrelease/* = staging", "#m-other": "preview"}, "#m-other")
	var repo api.Repo
	h.api("GET", fmt.Sprintf("/api/repos/%d", h.repo.ID), nil, http.StatusOK, &repo)
	if repo.NetworkPolicy != "no-private" || repo.Runtime != "runc" || !repo.SkipForkApproval || repo.EnvMap == nil ||
		fmt.Sprint(*repo.EnvMap) != "{[{main production} {release/* staging}] preview}" {
		t.Errorf("repository after the sandbox forms: %+v %+v", repo, repo.EnvMap)
	}
	if text := eval[string](b, `document.getElementById("main").textContent`); !strings.Contains(text, "run without approval") ||
		!strings.Contains(text, "other branches → preview") {
		t.Errorf("the settings page after the sandbox forms:\n%s", text)
	}
}
