package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/api/apitest"
	"github.com/conveyor-ci/conveyor/internal/client"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// cliEnv is a real API server on the fake store with an admin token.
type cliEnv struct {
	f     *apitest.Fake
	url   string
	token string
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	t.Setenv("CONVEYOR_SERVER", "")
	t.Setenv("CONVEYOR_TOKEN", "")
	t.Setenv("CONVEYOR_CONFIG", filepath.Join(t.TempDir(), "config.json"))
	f := apitest.New()
	return &cliEnv{f: f, url: f.Server(t).URL, token: f.AddToken(1, "admin", store.RoleAdmin)}
}

// run runs a client command with --server and --token appended (after
// the positional arguments, as users type them).
func (e *cliEnv) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd, ok := clientCommands()[args[0]]
	if !ok {
		t.Fatalf("no command %q", args[0])
	}
	var out, errb bytes.Buffer
	code = cmd.main(t.Context(), append(args[1:], "--server", e.url, "--token", e.token), &out, &errb)
	return code, out.String(), errb.String()
}

func (e *cliEnv) want(t *testing.T, wantCode int, args ...string) (stdout string) {
	t.Helper()
	code, out, errs := e.run(t, args...)
	if code != wantCode {
		t.Fatalf("conveyor %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, out, errs)
	}
	if wantCode == 0 {
		return out
	}
	return errs
}

// repoID looks a repository up by name in org 1.
func (e *cliEnv) repoID(t *testing.T, name string) int64 {
	t.Helper()
	r, err := e.f.RepoByName(t.Context(), 1, name)
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

func TestClientCommandsRegistered(t *testing.T) {
	for _, name := range []string{"repo", "trigger", "runs", "run", "logs", "cancel", "rerun", "whoami"} {
		if c, ok := clientCommands()[name]; !ok || c.main == nil || c.summary == "" {
			t.Errorf("command %s missing", name)
		}
	}
}

func TestRepoCommands(t *testing.T) {
	e := newCLIEnv(t)
	out := e.want(t, 0, "repo", "add", "https://github.com/acme/app.git", "--forge", "github", "--secret", "s3cret", "--branch", "dev")
	id := e.repoID(t, "acme/app")
	for _, want := range []string{fmt.Sprintf("repository %d: acme/app (github)", id), fmt.Sprintf("webhook URL:    %s/hooks/%d", e.url, id), "webhook secret: s3cret"} {
		if !strings.Contains(out, want) {
			t.Errorf("repo add output lacks %q:\n%s", want, out)
		}
	}
	out = e.want(t, 0, "repo", "add", "--json", "https://gitlab.example/g/sub/lib", "--forge=gitlab", "--name", "g/sub/lib")
	var created api.RepoCreated
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Repo.Name != "g/sub/lib" || created.Secret == "" {
		t.Errorf("repo add --json: %v %s", err, out)
	}
	out = e.want(t, 0, "repo", "list")
	if !strings.Contains(out, "ID  NAME") || !strings.Contains(out, "acme/app   github  dev") || !strings.Contains(out, "g/sub/lib") {
		t.Errorf("repo list:\n%s", out)
	}
	if strings.Contains(out, "s3cret") {
		t.Errorf("repo list shows the secret:\n%s", out)
	}
	if got := e.want(t, 1, "repo", "add", "https://github.com/acme/app", "--forge", "github"); got != "conveyor: repo add https://github.com/acme/app: repository acme/app is already registered\n" {
		t.Errorf("duplicate: %q", got)
	}
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"repo", "add", "https://x/a/b", "--forge", "github", "--secret", ""}, "--secret must not be empty"},
		{[]string{"repo", "add", "https://x/a/b"}, "--forge github|gitlab|gitea is required"},
		{[]string{"repo", "add"}, "missing argument"},
		{[]string{"repo", "add", "a", "b", "--forge", "github"}, `unexpected argument "b"`},
		{[]string{"repo", "rm"}, "usage: conveyor repo add"},
		{[]string{"repo", "list", "--bogus"}, "flag provided but not defined"},
	} {
		if got := e.want(t, 2, tt.args...); !strings.Contains(got, tt.msg) {
			t.Errorf("%v: stderr %q lacks %q", tt.args, got, tt.msg)
		}
	}
}

func TestTriggerCommand(t *testing.T) {
	e := newCLIEnv(t)
	e.want(t, 0, "repo", "add", "https://github.com/acme/app", "--forge", "github")
	out := e.want(t, 0, "trigger", "acme/app", "--workflow", "deploy.yml", "--ref", "v1", "--input", "env=prod", "--input", "dry=")
	var evID int64
	if _, err := fmt.Sscanf(out, "event %d accepted: workflow_dispatch of deploy.yml in acme/app\n", &evID); err != nil {
		t.Errorf("trigger: %q (%v)", out, err)
	}
	ev := e.f.Event(evID)
	var in api.DispatchInput
	if ev == nil || json.Unmarshal(ev.Body, &in) != nil || in.Ref != "v1" || in.Inputs["env"] != "prod" || in.Inputs["dry"] != "" || len(in.Inputs) != 2 {
		t.Errorf("stored event %+v", ev)
	}
	e.want(t, 0, "trigger", fmt.Sprint(e.repoID(t, "acme/app")), "--workflow", "ci.yml")
	if got := e.want(t, 1, "trigger", "no/such", "--workflow", "ci.yml"); got != "conveyor: repo no/such: not found\n" {
		t.Errorf("unknown repo: %q", got)
	}
	if got := e.want(t, 1, "trigger", "acme/app", "--workflow", "missing.yml"); !strings.Contains(got, "conveyor: trigger acme/app: ") || !strings.Contains(got, "missing.yml not found") {
		t.Errorf("refused workflow: %q", got)
	}
	if got := e.want(t, 2, "trigger", "acme/app", "--workflow", "a.yml", "--input", "novalue"); !strings.Contains(got, `--input "novalue" is not NAME=VALUE`) {
		t.Errorf("bad input: %q", got)
	}
	if got := e.want(t, 2, "trigger", "acme/app"); !strings.Contains(got, "--workflow is required") {
		t.Errorf("no workflow: %q", got)
	}
}

// addRun stores a finished run of repo 1 with a build job (kept from an
// earlier run, interrupted once) and a failed test job; it returns the
// run and job ids.
func (e *cliEnv) addRun(t *testing.T) (run, build, test int64) {
	t.Helper()
	e.want(t, 0, "repo", "add", "https://github.com/acme/app", "--forge", "github")
	repo := e.repoID(t, "acme/app")
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	r := e.f.AddRun(1, repo, store.Run{Number: 7, Workflow: ".github/workflows/ci.yml", Name: "CI", Event: "push",
		Ref: "refs/heads/main", SHA: "0123456789abcdef", Trigger: "webhook", Status: store.StatusFailure,
		Started: start, Finished: start.Add(75 * time.Second)},
		store.Job{Key: "build", Name: "Build", Status: store.StatusSuccess, Attempt: 2, ReusedFrom: 3,
			Started: start, Finished: start.Add(30 * time.Second)},
		store.Job{Key: "test", Name: "Test", Status: store.StatusFailure, Attempt: 1, Error: "exit 1"})
	jobs, _ := e.f.Jobs(t.Context(), 1, r.ID)
	e.f.AddAttempt(store.Attempt{JobID: jobs[0].ID, Attempt: 1, Reason: "lease expired"})
	return r.ID, jobs[0].ID, jobs[1].ID
}

func TestRunsAndRunShow(t *testing.T) {
	e := newCLIEnv(t)
	run, _, _ := e.addRun(t)
	repo := e.repoID(t, "acme/app")
	e.f.AddRun(1, repo, store.Run{Number: 8, Status: store.StatusQueued})
	out := e.want(t, 0, "runs")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[2], "acme/app") ||
		!strings.Contains(lines[2], "main") || !strings.Contains(lines[2], "failure") || !strings.Contains(lines[2], "1m15s") {
		t.Errorf("runs:\n%s", out)
	}
	out = e.want(t, 0, "runs", "--repo", "acme/app", "--status", "failure", "--json")
	var list api.RunList
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Runs) != 1 || list.Runs[0].ID != run {
		t.Errorf("runs --json: %v %s", err, out)
	}
	if got := e.want(t, 1, "runs", "--status", "bogus"); !strings.Contains(got, `conveyor: runs: status "bogus" is not a run status`) {
		t.Errorf("bad status: %q", got)
	}

	out = e.want(t, 0, "run", "show", fmt.Sprint(run))
	for _, want := range []string{fmt.Sprintf("run %d: acme/app #7: failure", run), "CI (.github/workflows/ci.yml)",
		"push on main at 0123456789ab (webhook)", "duration: 1m15s", "KEY", "build", "kept from job 3",
		"attempt 1 interrupted: lease expired", "exit 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("run show lacks %q:\n%s", want, out)
		}
	}
	out = e.want(t, 0, "run", "show", "--json", fmt.Sprint(run))
	var d api.RunDetail
	if err := json.Unmarshal([]byte(out), &d); err != nil || len(d.Jobs) != 2 {
		t.Errorf("run show --json: %v %s", err, out)
	}
	if got := e.want(t, 1, "run", "show", "12"); got != "conveyor: run 12: not found\n" {
		t.Errorf("not found: %q", got)
	}
	if got := e.want(t, 2, "run", "show", "x"); !strings.Contains(got, `run "x" is not a run id`) {
		t.Errorf("bad id: %q", got)
	}
	// Anything but "show" is the local run command.
	// run --help is asked for: usage on stdout, exit 0.
	var outb bytes.Buffer
	if code := clientCommands()["run"].main(t.Context(), []string{"-h"}, &outb, &bytes.Buffer{}); code != 0 || !strings.Contains(outb.String(), "usage: conveyor run [EVENT]") {
		t.Errorf("run -h: %d %s", code, outb.String())
	}
}

func TestLogsCommand(t *testing.T) {
	e := newCLIEnv(t)
	run, build, test := e.addRun(t)
	e.f.AppendLog(build, "compiling\n")
	e.f.AppendLog(test, "FAIL: x\n")
	r := fmt.Sprint(run)
	if out := e.want(t, 0, "logs", r, "build"); out != "compiling\n" {
		t.Errorf("logs RUN JOB: %q", out)
	}
	if out := e.want(t, 0, "logs", r, fmt.Sprint(test)); out != "FAIL: x\n" {
		t.Errorf("logs RUN JOBID: %q", out)
	}
	want := "==> build (Build) <==\ncompiling\n\n==> test (Test) <==\nFAIL: x\n"
	if out := e.want(t, 0, "logs", r); out != want {
		t.Errorf("logs RUN:\n%q\nwant\n%q", out, want)
	}
	if out := e.want(t, 0, "logs", "-f", r); out != want {
		t.Errorf("logs -f RUN (finished):\n%q", out)
	}
	if got := e.want(t, 1, "logs", r, "deploy"); got != fmt.Sprintf("conveyor: job deploy of run %d: not found\n", run) {
		t.Errorf("unknown job: %q", got)
	}
	if got := e.want(t, 1, "logs", "999"); got != "conveyor: run 999: not found\n" {
		t.Errorf("unknown run: %q", got)
	}
	e.want(t, 2, "logs")

	// -f follows a running job until it ends.
	live := e.f.AddRun(1, 1, store.Run{Status: store.StatusRunning}, store.Job{Key: "k", Name: "K", Status: store.StatusRunning})
	jobs, _ := e.f.Jobs(t.Context(), 1, live.ID)
	e.f.AppendLog(jobs[0].ID, "one\n")
	go func() {
		time.Sleep(100 * time.Millisecond)
		e.f.AppendLog(jobs[0].ID, "two\n")
		e.f.SetJobStatus(jobs[0].ID, store.StatusSuccess, store.StatusSuccess)
	}()
	if out := e.want(t, 0, "logs", "-f", fmt.Sprint(live.ID), "k"); out != "one\ntwo\n" {
		t.Errorf("logs -f: %q", out)
	}
}

func TestCancelAndRerunCommands(t *testing.T) {
	e := newCLIEnv(t)
	run, _, _ := e.addRun(t)
	live := e.f.AddRun(1, 1, store.Run{Status: store.StatusRunning}, store.Job{Key: "k", Status: store.StatusRunning})
	if out := e.want(t, 0, "cancel", fmt.Sprint(live.ID)); out != fmt.Sprintf("run %d: cancelled\n", live.ID) {
		t.Errorf("cancel: %q", out)
	}
	if got := e.want(t, 1, "cancel", fmt.Sprint(live.ID)); got != fmt.Sprintf("conveyor: run %d: already finished (cancelled)\n", live.ID) {
		t.Errorf("cancel again: %q", got)
	}
	out := e.want(t, 0, "rerun", fmt.Sprint(run), "--failed")
	if !strings.Contains(out, fmt.Sprintf("re-runs run %d (failed jobs, attempt 2)", run)) {
		t.Errorf("rerun: %q", out)
	}
	if got := e.want(t, 1, "rerun", "4242"); got != "conveyor: run 4242: not found\n" {
		t.Errorf("rerun unknown: %q", got)
	}
}

func TestClientEnvAndAuth(t *testing.T) {
	e := newCLIEnv(t)
	t.Setenv("CONVEYOR_SERVER", e.url)
	t.Setenv("CONVEYOR_TOKEN", e.token)
	var out, errb bytes.Buffer
	if code := clientCommands()["whoami"].main(t.Context(), nil, &out, &errb); code != 0 || !strings.Contains(out.String(), `user admin (admin in organisation 1), token "admin" of scope admin`) {
		t.Errorf("whoami from env: %d %s %s", code, out.String(), errb.String())
	}
	t.Setenv("CONVEYOR_TOKEN", "")
	errb.Reset()
	if code := clientCommands()["runs"].main(t.Context(), []string{"--server", e.url}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "no API token") {
		t.Errorf("no token: %d %s", code, errb.String())
	}
	errb.Reset()
	if code := clientCommands()["runs"].main(t.Context(), []string{"--server", e.url, "--token", "wrong"}, &out, &errb); code != 1 || errb.String() != "conveyor: runs: unknown or revoked token\n" {
		t.Errorf("bad token: %d %q", code, errb.String())
	}
	reader := e.f.AddToken(1, "viewer", store.RoleRead)
	errb.Reset()
	if code := clientCommands()["cancel"].main(t.Context(), []string{"1", "--server", e.url, "--token", reader}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "needs role developer and a token of scope write") {
		t.Errorf("read token cancels: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := clientCommands()["runs"].main(t.Context(), []string{"--server", "http://127.0.0.1:1", "--token", "t"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "cannot reach http://127.0.0.1:1") {
		t.Errorf("unreachable: %d %q", code, errb.String())
	}
}

func TestFailKeepsTheServersReason(t *testing.T) {
	for _, tt := range []struct{ what, msg, want string }{
		{"trigger acme/app", `no workflow "x.yml" at main`, `conveyor: trigger acme/app: no workflow "x.yml" at main` + "\n"},
		{"run 12", "run 12: not found", "conveyor: run 12: not found\n"},
		{"run 12", "store: sql: no rows", "conveyor: run 12: not found\n"},
		{"cancel 3", "run 3 is already finished", "conveyor: cancel 3: run 3 is already finished\n"},
	} {
		var stderr bytes.Buffer
		c := &clientCmd{stderr: &stderr}
		kind := errs.NotFound
		if strings.Contains(tt.msg, "finished") {
			kind = errs.Conflict
		}
		if code := c.fail(tt.what, errs.Wrap("", kind, &client.Error{Message: tt.msg})); code != 1 || stderr.String() != tt.want {
			t.Errorf("fail(%q, %q) = %d %q, want %q", tt.what, tt.msg, code, stderr.String(), tt.want)
		}
	}
}
