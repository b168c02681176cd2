package server

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/store"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// The browser tests drive Debian's Chromium headless against a real
// server. Screenshots go to $CONVEYOR_UI_SCREENSHOTS, or the test's temp
// folder.

const uiPassword = "correct horse battery"

// pwnedHook runs before any page script: it records every call of
// pwned() (what the payloads below call) and every CSP violation.
const pwnedHook = `window.__pwned = [];
window.pwned = function (x) { window.__pwned.push("call:" + x); };
document.addEventListener("securitypolicyviolation", function (e) {
  window.__pwned.push("csp:" + e.violatedDirective + " " + e.blockedURI);
});`

type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	shot string
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	exe := testenv.Chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelCtx(); cancelAlloc() })
	shots := os.Getenv("CONVEYOR_UI_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	b := &browser{t: t, ctx: ctx, base: base, shot: shots}
	b.do(chromedp.Navigate("about:blank"))
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: pwnedHook}); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

func (b *browser) open(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base + path))
}

func eval[T any](b *browser, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// waitJS polls a JavaScript condition.
func (b *browser) waitJS(what, js string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool]("!!("+js+")"))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			loc, _ := chromedp.Run(b.ctx, chromedp.Location())
			b.t.Fatalf("timed out after %s waiting for %s (at %s, err %v)", timeout, what, loc, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (b *browser) location() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return strings.TrimPrefix(loc, b.base)
}

// screenshot saves the page as name.png.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	p := filepath.Join(b.shot, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", p)
}

// noExecution checks that no payload ran and no CSP rule was broken.
func (b *browser) noExecution(where string) {
	b.t.Helper()
	got := eval[[]string](b, "window.__pwned")
	if len(got) > 0 {
		b.t.Errorf("%s: script ran or CSP was violated: %q", where, got)
	}
	bad := eval[int](b, `document.querySelectorAll("img, iframe, object, embed, script:not([src]), [onerror], [onload], a[href^='javascript'], #loglines a:not(.no)").length`)
	if bad != 0 {
		html := eval[string](b, "document.body.innerHTML")
		b.t.Errorf("%s: %d injected elements in the page:\n%s", where, bad, html)
	}
}

// login signs in from the login page the browser is on.
func (b *browser) login(user, password string) {
	b.t.Helper()
	b.do(chromedp.WaitVisible(chromedp.CSS("#user")), chromedp.SendKeys(chromedp.CSS("#user"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), password))
	if _, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS("form button[type=submit]"))); err != nil {
		b.t.Fatal(err)
	}
}

// uiHarness is a server with a password for admin and the workflow of
// the UI tests.
func uiHarness(t *testing.T, files map[string]string) *harness {
	t.Helper()
	h := newHarness(t, harnessOpts{files: files})
	h.api("PUT", "/api/password", api.PasswordInput{New: uiPassword}, http.StatusNoContent, nil)
	return h
}

const uiWorkflow = `name: CI
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - name: Count slowly
        run: |
          for i in $(seq 1 600); do [ -f GO ] && break; sleep 0.1; done
          for i in $(seq 1 30); do echo "tick $i"; sleep 0.2; done
  evil:
    runs-on: ubuntu-latest
    steps:
      - name: Print tricks
        run: |
          printf '%s\n' '<script>pwned("log")</script>' '<img src=x onerror=pwned("log-img")>'
          printf '\033[31mred\033[0m \033]8;;javascript:pwned("osc")\033\\click me\033]8;;\033\\ plain \033[2J\033]0;title\007end\n'
          echo "::group::folded section"
          echo "inside the group"
          echo "::endgroup::"
  test:
    needs: [build]
    strategy:
      fail-fast: false
      matrix:
        leg: [a, b]
    runs-on: ubuntu-latest
    steps:
      - name: Leg
        run: test "${{ matrix.leg }}" = a || test -f FLAG
`

// TestUIBrowser: sign in through a commit-status link, watch a live log
// grow, check the job graph, re-run the failed jobs, and check that no
// payload in a log line, a branch name or a commit message runs.
func TestUIBrowser(t *testing.T) {
	testenv.Chromium(t) // before the server starts: a skip is quick
	dir := t.TempDir()
	flag, goFlag := filepath.Join(dir, "flag"), filepath.Join(dir, "go")
	wf := strings.ReplaceAll(strings.ReplaceAll(uiWorkflow, "FLAG", flag), "-f GO", "-f "+goFlag)
	h := uiHarness(t, map[string]string{".github/workflows/ci.yml": wf})
	h.git.commit("<img src=x onerror=pwned(\"msg\")> \x1b]8;;javascript:pwned()\x1b\\commit\x1b]8;;\x1b\\ <script>pwned(\"msg2\")</script>", map[string]string{"a.txt": "a"})
	branch := `<script>pwned("branch")</script>`
	if code, body := h.hook("push", h.push(branch), "d-ui-1"); code != http.StatusAccepted && code != http.StatusOK {
		t.Fatalf("hook: %d %s", code, body)
	}
	var run *store.Run
	waitFor(t, 30*time.Second, "the run", func() bool {
		runs, _ := h.st.ListRuns(context.Background(), 1, store.RunFilter{})
		if len(runs) == 1 {
			run = runs[0]
		}
		return run != nil
	})
	b := newBrowser(t, h.url)

	// A commit status links to /runs/N: the visitor signs in and lands there.
	runPath := fmt.Sprintf("/runs/%d", run.ID)
	b.open(runPath)
	if loc := b.location(); !strings.HasPrefix(loc, "/login?next=") {
		t.Fatalf("unauthenticated run page went to %s, want the login page", loc)
	}
	b.screenshot("01-login")
	b.login("admin", uiPassword)
	if loc := b.location(); loc != runPath {
		t.Fatalf("after login at %s, want %s", loc, runPath)
	}
	b.waitJS("the graph", `document.querySelectorAll("svg a.node").length === 3`, 10*time.Second)

	jobs := h.jobs(run.ID)
	uiLiveLog(t, b, h, run, jobs["build"], goFlag)
	uiEvilLog(t, b, run, jobs["evil"])
	uiListsShowText(t, b, h, branch)
	uiRerunFailed(t, b, h, run, len(jobs), flag)
}

// uiLiveLog watches the log of job grow while it runs.
func uiLiveLog(t *testing.T, b *browser, h *harness, run *store.Run, job *store.Job, goFlag string) {
	// A live log grows while the job runs: the job waits for the go file
	// before it prints its ticks.
	b.open(fmt.Sprintf("/runs/%d/jobs/%d", run.ID, job.ID))
	b.waitJS("the step's first line", `window.conveyorLog && window.conveyorLog.steps.length === 1`, 30*time.Second)
	if ticks := eval[int](b, `window.conveyorLog.lines.filter(l => l.t.startsWith("tick")).length`); ticks != 0 {
		t.Fatalf("%d ticks before the go file", ticks)
	}
	// A search made before the ticks takes them in as they arrive.
	b.do(chromedp.SendKeys(chromedp.CSS("#logsearch"), "TICK"))
	b.waitJS("the search", `document.getElementById("logcount").textContent === "0 matching lines"`, 10*time.Second)
	if err := os.WriteFile(goFlag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	b.waitJS("a first tick", `window.conveyorLog.lines.some(l => l.t === "tick 1")`, 30*time.Second)
	if done := eval[string](b, `document.getElementById("log").dataset.done || ""`); done != "" {
		t.Fatalf("the job ended (%s) at its first tick", done)
	}
	uiLiveSearch(t, b)
	b.waitJS("the end of the log", `document.getElementById("log").dataset.done === "success"`, 60*time.Second)
	if !eval[bool](b, `Array.from(document.querySelectorAll("#steps li a")).some(a => a.textContent === "Count slowly")`) {
		t.Errorf("the steps list lacks the step: %s", eval[string](b, `document.getElementById("steps").textContent`))
	}
	b.waitJS("the search to count every tick", `document.getElementById("logcount").textContent.endsWith(" of 30 matching lines")`, 10*time.Second)
	if scanned, lines := eval[int](b, `window.conveyorLog.scanned`), eval[int](b, `window.conveyorLog.lines.length`); scanned != lines {
		t.Errorf("the live search tested %d lines for a log of %d: it re-scans", scanned, lines)
	}
	b.screenshot("04-job-log")
	b.noExecution("build log")
	h.waitRuns(1, 90*time.Second)

}

// uiLiveSearch: while the log grows, the search's count follows the new
// matching lines, Enter goes to the first and the new ones are marked.
func uiLiveSearch(t *testing.T, b *browser) {
	b.waitJS("the count to follow the ticks", `parseInt(document.getElementById("logcount").textContent, 10) >= 3`, 30*time.Second)
	b.do(chromedp.SendKeys(chromedp.CSS("#logsearch"), kb.Enter))
	b.waitJS("the first match", `document.getElementById("logcount").textContent.startsWith("1 of ")`, 5*time.Second)
	if cur := eval[string](b, `(document.querySelector("#loglines .ln.match.current") || {}).textContent || ""`); !strings.HasSuffix(cur, "tick 1") {
		t.Errorf("the current match is %q, want the line of tick 1", cur)
	}
	n := eval[int](b, `window.conveyorLog.matches.length`)
	b.waitJS("more matches while the job runs", fmt.Sprintf(`window.conveyorLog.matches.length > %d && !document.getElementById("log").dataset.done`, n+2), 30*time.Second)
	b.waitJS("the count of the new matches", fmt.Sprintf(`parseInt(document.getElementById("logcount").textContent.split(" of ")[1], 10) > %d`, n+2), 5*time.Second)
	// Previous from the first match is the newest one, marked.
	b.do(chromedp.Click(chromedp.CSS("#logprev")))
	b.waitJS("the last match, marked", `(() => { const v = window.conveyorLog, el = document.querySelector("#loglines .ln.match.current");
		return el && +el.dataset.i === v.matches[v.cur] && v.cur > 0; })()`, 5*time.Second)
}

// uiEvilLog checks that the tricks in job's log render as text.
func uiEvilLog(t *testing.T, b *browser, run *store.Run, job *store.Job) {
	// Tricks in a log line render as text.
	b.open(fmt.Sprintf("/runs/%d/jobs/%d", run.ID, job.ID))
	b.waitJS("the evil log", `document.getElementById("log").dataset.done`, 30*time.Second)
	text := eval[string](b, `document.getElementById("loglines").textContent`)
	for _, want := range []string{`<script>pwned("log")</script>`, `<img src=x onerror=pwned("log-img")>`, "red click me plain end", "folded section"} {
		if !strings.Contains(text, want) {
			t.Errorf("log text lacks %q:\n%s", want, text)
		}
	}
	b.screenshot("04b-log-ansi-folded")
	if strings.Contains(text, "inside the group") {
		t.Errorf("the group is not folded:\n%s", text)
	}
	if strings.ContainsAny(text, "\x1b\x07") {
		t.Errorf("escape characters reached the page: %q", text)
	}
	if n := eval[int](b, `document.querySelectorAll("#loglines .f1").length`); n != 1 {
		t.Errorf("%d red spans, want 1 (SGR 31)", n)
	}
	b.do(chromedp.Click(chromedp.CSS(".ln.group button")))
	b.waitJS("the group to open", `document.getElementById("loglines").textContent.includes("inside the group")`, 5*time.Second)
	b.noExecution("evil log")

}

// uiListsShowText checks the branch and the commit message on the runs
// list and the repositories.
func uiListsShowText(t *testing.T, b *browser, h *harness, branch string) {
	// Branch and commit message on the runs list and the run page.
	b.open(fmt.Sprintf("/repos/%d", h.repo.ID))
	b.waitJS("the runs list", `document.querySelector("tr.run")`, 10*time.Second)
	row := eval[string](b, `document.querySelector("tr.run").textContent`)
	if !strings.Contains(row, branch) || !strings.Contains(row, `<img src=x onerror=pwned("msg")>`) {
		t.Errorf("runs list row lacks the branch or the message as text: %s", row)
	}
	b.screenshot("03-runs")
	b.noExecution("runs list")
	b.open("/")
	b.screenshot("02-repositories")
	b.noExecution("repositories")

}

// uiRerunFailed re-runs the failed jobs of run (leg b of test) once the
// flag file exists.
func uiRerunFailed(t *testing.T, b *browser, h *harness, run *store.Run, nJobs int, flag string) {
	runPath := fmt.Sprintf("/runs/%d", run.ID)
	// The run failed (leg b); re-run the failed jobs once the flag exists.
	b.open(runPath)
	b.waitJS("the re-run button", `document.getElementById("rerun-failed")`, 10*time.Second)
	b.screenshot("05-run-graph")
	b.noExecution("run page")
	if n := eval[int](b, `document.querySelectorAll("svg a.node").length`); n != nJobs {
		t.Errorf("graph has %d nodes, want one per job (%d)", n, nJobs)
	}
	if n := eval[int](b, `document.querySelectorAll("svg path.edge").length`); n != 1 {
		t.Errorf("graph has %d edges, want 1 (test needs build)", n)
	}
	if legs := eval[string](b, `Array.from(document.querySelectorAll("svg a.node[data-job=test] text.leg")).map(e => e.textContent).join("|")`); !strings.Contains(legs, "failure") || !strings.Contains(legs, "success") {
		t.Errorf("the matrix legs of test are not grouped in its node: %q", legs)
	}
	if err := os.WriteFile(flag, []byte("ok"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS("#rerun-failed"))); err != nil {
		t.Fatal(err)
	}
	loc := b.location()
	if loc == runPath || !strings.HasPrefix(loc, "/runs/") {
		t.Fatalf("re-run failed jobs went to %s, want the new run's page", loc)
	}
	b.waitJS("the re-run to succeed", `document.querySelector("h1 .st-success")`, 90*time.Second)
	runs := h.waitRuns(2, 30*time.Second)
	if runs[0].Status != store.StatusSuccess || runs[0].RerunOf != run.ID {
		t.Errorf("re-run: %s", describeRuns(runs))
	}
	b.noExecution("re-run page")
}

// TestUIBrowserLargeLog measures how long a 100,000-line log takes to
// load and checks that search and permalinks work in it.
func TestUIBrowserLargeLog(t *testing.T) {
	testenv.Chromium(t) // before the server starts: a skip is quick
	h := uiHarness(t, map[string]string{".github/workflows/big.yml": `name: Big
on: push
jobs:
  big:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo "::group::first thousand"
          seq 1 1000 | sed 's/^/grouped /'
          echo "::endgroup::"
          seq 1001 100000 | awk '{ printf "\033[32mline\033[0m %d of the big log\n", $1 }'
`})
	if code, body := h.hook("push", h.push("main"), "d-ui-big"); code != http.StatusAccepted && code != http.StatusOK {
		t.Fatalf("hook: %d %s", code, body)
	}
	runs := h.waitRuns(1, 120*time.Second)
	job := h.jobs(runs[0].ID)["big"]
	b := newBrowser(t, h.url)
	b.open("/login")
	b.login("admin", uiPassword)
	start := time.Now()
	b.open(fmt.Sprintf("/runs/%d/jobs/%d#L99990", runs[0].ID, job.ID))
	b.waitJS("the whole log", `document.getElementById("log").dataset.done`, 120*time.Second)
	wall := time.Since(start)
	lines := eval[int](b, `+document.getElementById("log").dataset.lines`)
	ms := eval[int](b, `+document.getElementById("log").dataset.loadMs`)
	nodes := eval[int](b, `document.querySelectorAll("#loglines .ln").length`)
	t.Logf("100k-line log: %d lines loaded in %d ms in the page (%s wall clock), %d line elements in the DOM", lines, ms, wall.Round(time.Millisecond), nodes)
	if lines < 100000 {
		t.Errorf("%d lines, want more than 100000", lines)
	}
	if nodes > 500 {
		t.Errorf("%d line elements in the DOM: the log is not virtualised", nodes)
	}
	b.waitJS("the permalink line", `document.querySelector("#L99990.target")`, 10*time.Second)
	// 50 jumps across the log, each waited for until it is painted.
	scroll, err := chromedp.Run(b.ctx, chromedp.Evaluate[float64](`(async () => {
		const v = window.conveyorLog.view, t0 = performance.now();
		for (let i = 0; i < 50; i++) {
			v.scrollTop = (i * 41231) % v.scrollHeight;
			await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
		}
		return (performance.now() - t0) / 50;
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	search := eval[float64](b, `(() => { const t0 = performance.now(); window.conveyorLog.search("line 5"); return performance.now() - t0; })()`)
	t.Logf("100k-line log: %.1f ms a frame while jumping through it; a search over every line %.0f ms", scroll, search)
	b.screenshot("06-big-log-permalink")
	b.do(chromedp.SendKeys(chromedp.CSS("#logsearch"), "99999 of"))
	b.waitJS("the search", `document.getElementById("logcount").textContent.startsWith("1 of 1")`, 10*time.Second)
	if !eval[bool](b, `!!document.querySelector(".ln.match.current")`) {
		t.Error("the search match is not shown")
	}
	b.noExecution("big log")
}

// TestUIBrowserSettings: the runs list shows a new run without a reload,
// the repository settings regenerate the webhook secret and set a secret
// and a variable through their forms, the organisation page shows the
// members and the audit log, and the dark theme applies.
func TestUIBrowserSettings(t *testing.T) {
	testenv.Chromium(t) // before the server starts: a skip is quick
	h := uiHarness(t, map[string]string{".github/workflows/ci.yml": "name: Quick\non: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo hi\n"})
	b := newBrowser(t, h.url)
	b.open(fmt.Sprintf("/repos/%d", h.repo.ID))
	b.login("admin", uiPassword)
	b.waitJS("the empty runs list", `document.getElementById("live")`, 10*time.Second)
	if n := eval[int](b, `document.querySelectorAll("tr.run").length`); n != 0 {
		t.Fatalf("%d runs before any push", n)
	}
	if code, body := h.hook("push", h.push("main"), "d-ui-live"); code != http.StatusAccepted && code != http.StatusOK {
		t.Fatalf("hook: %d %s", code, body)
	}
	b.waitJS("the new run in the list, without a reload", `document.querySelectorAll("tr.run").length === 1`, 30*time.Second)
	h.waitRuns(1, 60*time.Second)

	b.open(fmt.Sprintf("/repos/%d/settings", h.repo.ID))
	b.do(chromedp.WaitVisible(chromedp.CSS("#regen-secret")))
	if _, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS("#regen-secret"))); err != nil {
		t.Fatal(err)
	}
	secret := eval[string](b, `(document.getElementById("new-secret") || {}).textContent || ""`)
	if len(secret) != 40 || secret == h.repo.Secret {
		t.Fatalf("new webhook secret %q", secret)
	}
	ping := []byte(`{"zen":"hi"}`)
	if code, _ := h.hookRaw("ping", ping, "p-new", sign(secret, ping)); code != http.StatusOK {
		t.Errorf("ping signed with the secret the page showed: %d", code)
	}
	b.do(chromedp.SendKeys(chromedp.CSS("#s-name"), "deploy_key"), chromedp.SendKeys(chromedp.CSS("#s-value"), "hunter2"))
	if _, err := chromedp.RunResponse(b.ctx, chromedp.Submit(chromedp.CSS("#s-name"))); err != nil {
		t.Fatal(err)
	}
	b.do(chromedp.WaitVisible(chromedp.CSS("#v-name")), chromedp.SendKeys(chromedp.CSS("#v-name"), "REGION"),
		chromedp.SendKeys(chromedp.CSS("#v-value"), "eu-<b>west</b>"))
	if _, err := chromedp.RunResponse(b.ctx, chromedp.Submit(chromedp.CSS("#v-name"))); err != nil {
		t.Fatal(err)
	}
	page := eval[string](b, `document.getElementById("main").textContent`)
	if !strings.Contains(page, "DEPLOY_KEY") || !strings.Contains(page, "eu-<b>west</b>") || strings.Contains(page, "hunter2") {
		t.Errorf("settings after setting a secret and a variable:\n%s", page)
	}
	b.screenshot("07-repo-settings")
	b.noExecution("repository settings")

	uiOrgPage(t, b, h)

	if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatal(err)
	}
	runs := h.waitRuns(1, 10*time.Second)
	b.open(fmt.Sprintf("/runs/%d", runs[0].ID))
	if bg := eval[string](b, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(13, 17, 23)" {
		t.Errorf("dark theme background %s", bg)
	}
	b.screenshot("09-run-dark")
	b.noExecution("dark run page")
}

// uiCookie signs in as admin through the login form over plain HTTP and
// returns the session cookie.
func uiCookie(t *testing.T, h *harness) *http.Cookie {
	t.Helper()
	return uiCookieAs(t, h, "admin", "")
}

type sseEvent struct {
	id   string
	data string
}

// readSSE reads a log stream of the UI until its end event.
func readSSE(t *testing.T, u string, c *http.Cookie, lastID string) []sseEvent {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.AddCookie(c)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, ct)
	}
	var out []sseEvent
	var ev sseEvent
	var data []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		case line == "event: end":
			return out
		case line == "" && data != nil:
			ev.data = strings.Join(data, "\n")
			out = append(out, ev)
			ev, data = sseEvent{}, nil
		}
	}
	t.Fatalf("stream ended without its end event: %v", sc.Err())
	return nil
}

// TestUILogResume: a log stream resumed with Last-Event-ID (what a
// browser's EventSource sends after a dropped connection) goes on after
// that chunk, without a chunk lost or repeated.
func TestUILogResume(t *testing.T) {
	h := uiHarness(t, map[string]string{".github/workflows/ci.yml": "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: for i in $(seq 1 5); do echo \"part $i\"; sleep 0.3; done\n"})
	if code, body := h.hook("push", h.push("main"), "d-ui-resume"); code != http.StatusAccepted && code != http.StatusOK {
		t.Fatalf("hook: %d %s", code, body)
	}
	runs := h.waitRuns(1, 60*time.Second)
	job := h.jobs(runs[0].ID)["a"]
	c := uiCookie(t, h)
	u := fmt.Sprintf("%s/runs/%d/jobs/%d/log/stream", h.url, runs[0].ID, job.ID)
	all := readSSE(t, u, c, "")
	if len(all) < 3 {
		t.Fatalf("%d chunks, want several (one per line written 0.3 s apart)", len(all))
	}
	mid := len(all) / 2
	rest := readSSE(t, u, c, all[mid].id)
	if fmt.Sprint(rest) != fmt.Sprint(all[mid+1:]) {
		t.Errorf("resumed after chunk %s:\n%q\nwant\n%q", all[mid].id, rest, all[mid+1:])
	}
	var text strings.Builder
	for _, e := range all {
		text.WriteString(e.data)
	}
	if want := h.jobLog(runs[0].ID, "a"); text.String() != want {
		t.Errorf("the stream's text differs from the stored log:\n%q\nwant\n%q", text.String(), want)
	}
}

// uiOrgPage adds a member and makes a token on the organisation page.
func uiOrgPage(t *testing.T, b *browser, h *harness) {
	b.open("/org")
	b.waitJS("the audit log", `document.body.textContent.includes("repo.hook_secret")`, 10*time.Second)
	b.do(chromedp.SendKeys(chromedp.CSS("#m-name"), "bob"), chromedp.SendKeys(chromedp.CSS("#m-password"), "bob's password"),
		chromedp.SetValue(chromedp.CSS("#m-role"), "developer"))
	if _, err := chromedp.RunResponse(b.ctx, chromedp.Submit(chromedp.CSS("#m-name"))); err != nil {
		t.Fatal(err)
	}
	var members api.MemberList
	h.api("GET", "/api/users", nil, http.StatusOK, &members)
	if !strings.Contains(fmt.Sprint(members.Members), "{bob developer false}") {
		t.Errorf("members after adding bob: %+v", members.Members)
	}
	b.do(chromedp.WaitVisible(chromedp.CSS("#t-name")), chromedp.SendKeys(chromedp.CSS("#t-name"), "ci"))
	if _, err := chromedp.RunResponse(b.ctx, chromedp.Submit(chromedp.CSS("#t-name"))); err != nil {
		t.Fatal(err)
	}
	tok := eval[string](b, `(document.getElementById("new-token") || {}).textContent || ""`)
	req, _ := http.NewRequest("GET", h.url+"/api/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("the token the page showed (%q) does not work: %v %v", tok, resp, err)
	} else {
		resp.Body.Close()
	}
	b.screenshot("08-organisation")
}
