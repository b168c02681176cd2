package e2e

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the conveyor binary TestMain builds, with the race detector:
// the servers are what is under test (a race report in a server's stderr
// fails the test). It costs little: go test -race has built the
// instrumented packages already.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips
	}
	dir, err := os.MkdirTemp("", "conveyor-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "conveyor")
	build := exec.Command("go", "build", "-race", "-o", binary, "github.com/conveyor-ci/conveyor/cmd/conveyor")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the conveyor binary:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e tests start real servers; skipped with -short")
	}
}

// serverProc is one `conveyor server` process.
type serverProc struct {
	t     *testing.T
	name  string
	data  string
	cmd   *exec.Cmd
	url   string
	token string // only printed on the first start of a database
	// Output goes to files, not pipes: processes the server starts may
	// inherit them, and a pipe would keep Wait from returning.
	stdoutFile, stderrFile string
	done                   chan struct{} // closed when the process has exited
	err                    error         // cmd.Wait's answer, once done
}

var (
	listenLine = regexp.MustCompile(`(?m)^conveyor server listening on (\S+) `)
	tokenLine  = regexp.MustCompile(`(?m)^admin token \(shown once, stored hashed\): (\S+)$`)
)

// startServer starts `conveyor server` on a free port of 127.0.0.1 with
// jobs on the host backend and file:// repositories allowed, and waits
// until it answers /readyz. firstStart says an admin token must be printed.
func startServer(t *testing.T, name, data string, firstStart bool, args ...string) *serverProc {
	t.Helper()
	all := append([]string{"server", "--listen", "127.0.0.1:0", "--data", data, "--backend", "host",
		"--allow-file-urls", "--log-level", "debug"}, args...)
	s := &serverProc{t: t, name: name, data: data, done: make(chan struct{})}
	s.cmd = exec.Command(binary, all...)
	s.cmd.Env = cleanEnv()
	logs := t.TempDir()
	s.stdoutFile, s.stderrFile = filepath.Join(logs, "stdout"), filepath.Join(logs, "stderr")
	for _, f := range []struct {
		path string
		to   *io.Writer
	}{{s.stdoutFile, &s.cmd.Stdout}, {s.stderrFile, &s.cmd.Stderr}} {
		out, err := os.Create(f.path)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close() // the child has its own copy
		*f.to = out
	}
	// Best effort: a server must not outlive a test binary that crashed.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		if s.running() {
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		if i := strings.Index(s.stderr(), "WARNING: DATA RACE"); i >= 0 {
			t.Errorf("%s: data race:\n%s", name, s.stderr()[i:])
		}
		if t.Failed() {
			t.Logf("--- %s (%s) stdout:\n%s--- %s stderr (last lines):\n%s", name, data, s.stdout(), name, tail(s.stderr(), 150))
		}
	})

	deadline := time.Now().Add(20 * time.Second)
	for {
		out := s.stdout()
		if m := listenLine.FindStringSubmatch(out); m != nil {
			s.url = m[1]
			if !firstStart {
				break
			}
			if m := tokenLine.FindStringSubmatch(out); m != nil {
				s.token = m[1]
				break
			}
		}
		if !s.running() {
			t.Fatalf("%s exited at start (%v):\n%s%s", name, s.err, out, s.stderr())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s printed no URL (and token: %v) within 20 s:\n%s", name, firstStart, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !firstStart && tokenLine.MatchString(s.stdout()) {
		t.Errorf("%s printed a new admin token on a database that has one", name)
	}
	waitFor(t, 10*time.Second, name+" ready", func() bool {
		resp, err := httpClient.Get(s.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return s
}

// cleanEnv is this process's environment without CONVEYOR_* variables,
// which the server would read as settings, and without the race
// detector's 1 s sleep at exit, which would slow every stop.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CONVEYOR_") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	return append(env, "GORACE=atexit_sleep_ms=0")
}

func (s *serverProc) pid() int { return s.cmd.Process.Pid }

func (s *serverProc) stdout() string { b, _ := os.ReadFile(s.stdoutFile); return string(b) }

func (s *serverProc) stderr() string { b, _ := os.ReadFile(s.stderrFile); return string(b) }

func (s *serverProc) running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// kill9 kills the server with SIGKILL, as a crash would, and returns the
// time just before the signal: nothing the server does can come later.
func (s *serverProc) kill9() time.Time {
	s.t.Helper()
	at := time.Now()
	if err := s.cmd.Process.Kill(); err != nil {
		s.t.Fatalf("kill -9 %s: %v", s.name, err)
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.t.Fatalf("%s still running 10 s after kill -9", s.name)
	}
	return at
}

// stop sends SIGTERM and waits up to limit; it returns the exit code and
// how long the server took.
func (s *serverProc) stop(limit time.Duration) (int, time.Duration) {
	s.t.Helper()
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatalf("SIGTERM %s: %v", s.name, err)
	}
	select {
	case <-s.done:
	case <-time.After(limit):
		s.t.Fatalf("%s still running %s after SIGTERM:\n%s", s.name, limit, tail(s.stderr(), 40))
	}
	return s.cmd.ProcessState.ExitCode(), time.Since(start)
}

func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

var httpClient = &http.Client{Timeout: 15 * time.Second, Transport: e2eCA.transport()}

// client calls the REST API of one server with a token.
type client struct {
	t     *testing.T
	url   string
	token string
}

func (c client) do(method, path string, body any, want int, out any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.url+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: %d %s (want %d)", method, c.url+path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

func (c client) text(path string) string {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := httpClient.Do(req)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// addRepo registers dir as a GitHub repository and returns its id.
func (c client) addRepo(dir, secret string) int64 {
	c.t.Helper()
	var out struct {
		Repo struct {
			ID int64 `json:"id"`
		} `json:"repo"`
		Secret string `json:"secret"`
	}
	c.do("POST", "/api/repos", map[string]string{"url": "file://" + dir, "forge": "github", "name": "octo/repo", "secret": secret},
		http.StatusCreated, &out)
	if out.Repo.ID == 0 || out.Secret != secret {
		c.t.Fatalf("repo created: %+v", out)
	}
	return out.Repo.ID
}

// The API's wire format, as much of it as the tests read.
type (
	apiRun struct {
		ID      int64  `json:"id"`
		EventID int64  `json:"event_id"`
		Status  string `json:"status"`
		SHA     string `json:"sha"`
		Ref     string `json:"ref"`
		Error   string `json:"error"`
	}
	apiAttempt struct {
		Attempt  int        `json:"attempt"`
		Worker   string     `json:"worker"`
		Reason   string     `json:"reason"`
		Started  *time.Time `json:"started"`
		Finished *time.Time `json:"finished"`
	}
	apiJob struct {
		ID          int64        `json:"id"`
		Key         string       `json:"key"`
		Status      string       `json:"status"`
		Error       string       `json:"error"`
		Attempt     int          `json:"attempt"`
		Started     *time.Time   `json:"started"`
		Finished    *time.Time   `json:"finished"`
		Interrupted []apiAttempt `json:"interrupted"`
		// WaitingReason says why a queued job waits (agents).
		WaitingReason string `json:"waiting_reason"`
	}
	apiRunDetail struct {
		Run  apiRun   `json:"run"`
		Jobs []apiJob `json:"jobs"`
	}
	apiEvent struct {
		ID    int64  `json:"id"`
		State string `json:"state"`
		Error string `json:"error"`
	}
)

func (c client) runs() []apiRun {
	c.t.Helper()
	var out struct {
		Runs []apiRun `json:"runs"`
	}
	c.do("GET", "/api/runs?limit=500", nil, http.StatusOK, &out)
	return out.Runs
}

func (c client) run(id int64) apiRunDetail {
	c.t.Helper()
	var out apiRunDetail
	c.do("GET", fmt.Sprintf("/api/runs/%d", id), nil, http.StatusOK, &out)
	return out
}

func (d apiRunDetail) job(key string) apiJob {
	for _, j := range d.Jobs {
		if j.Key == key {
			return j
		}
	}
	return apiJob{}
}

func (c client) event(id int64) apiEvent {
	c.t.Helper()
	var out apiEvent
	c.do("GET", fmt.Sprintf("/api/events/%d", id), nil, http.StatusOK, &out)
	return out
}

// waitRuns waits until n runs exist and all of them have ended.
func (c client) waitRuns(n int, timeout time.Duration) []apiRun {
	c.t.Helper()
	var runs []apiRun
	waitFor(c.t, timeout, fmt.Sprintf("%d finished runs", n), func() bool {
		runs = c.runs()
		if len(runs) < n {
			return false
		}
		for _, r := range runs {
			if !terminal(r.Status) {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("runs: %+v", runs) })
	return runs
}

func terminal(status string) bool {
	switch status {
	case "success", "failure", "cancelled", "skipped", "error":
		return true
	}
	return false
}

// waitFor polls cond every 25 ms until it holds; describe, if given, tells
// what was seen on a timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool, describe ...func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			msg := ""
			for _, d := range describe {
				msg += "\n" + d()
			}
			t.Fatalf("timed out after %s waiting for %s%s", timeout, what, msg)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// hook posts a GitHub-signed webhook; an error means no answer came.
func hook(base string, repoID int64, secret, event, delivery string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest("POST", fmt.Sprintf("%s/hooks/%d", base, repoID), bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// acceptedID reads the event id of a 202 answer.
func acceptedID(t *testing.T, body []byte) int64 {
	t.Helper()
	id, err := eventID(body)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func eventID(body []byte) (int64, error) {
	var out struct {
		EventID int64 `json:"event_id"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.EventID == 0 {
		return 0, fmt.Errorf("202 without an event id: %s", body)
	}
	return out.EventID, nil
}

// pushBody is a GitHub push payload of sha on branch.
func pushBody(repoDir, branch, sha, msg string) []byte {
	b, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/" + branch, "before": "0000000000000000000000000000000000000000", "after": sha,
		"created": true, "deleted": false,
		"repository":  map[string]any{"full_name": "octo/repo", "clone_url": "file://" + repoDir, "default_branch": "main"},
		"sender":      map[string]any{"login": "octocat"},
		"head_commit": map[string]any{"id": sha, "message": msg},
		"commits":     []any{map[string]any{"id": sha, "message": msg, "added": []string{}, "removed": []string{}, "modified": []string{"n.txt"}}},
	})
	return b
}

// gitRepo is a real repository on disk: the forge's side.
type gitRepo struct {
	t   *testing.T
	dir string
}

func newGitRepo(t *testing.T, files map[string]string) *gitRepo {
	t.Helper()
	g := &gitRepo{t: t, dir: t.TempDir()}
	g.git("init", "-q", "-b", "main")
	g.commit("first commit", files)
	return g
}

func (g *gitRepo) git(args ...string) string {
	g.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = g.dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		g.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files and commits them; it returns the new commit.
func (g *gitRepo) commit(msg string, files map[string]string) string {
	g.t.Helper()
	for name, content := range files {
		p := filepath.Join(g.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			g.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			g.t.Fatal(err)
		}
	}
	g.git("add", "-A")
	g.git("commit", "-q", "--allow-empty", "-m", msg)
	return g.git("rev-parse", "HEAD")
}

// markStep is a step's run: script that records its attempt in marks, the
// file outside every workspace that outlives the servers: a "start" line,
// then after sleep seconds an "end" line, each with the key, the shell's
// pid (the step's process group: the host backend gives each step its
// own), its first ancestors' pids (which server started it: the start
// line of a step that outlives its server may come after that server's
// death, so time cannot tell), the time in ns and the working directory
// (which tells the replica: job directories live in its data directory).
// The shell writes nothing to stdout after the sleep, so a step that
// outlives its server is not ended by SIGPIPE. Its "working on" line
// comes before the start mark: a test that acts on the mark (stops or
// kills the server) knows the line was written, however late the shell
// is scheduled (TestGracefulStop looks for it in the stopped attempt's
// log).
func markStep(marks, key string, sleep string) string {
	return fmt.Sprintf(`a=$PPID p=$PPID
for _ in 1 2 3; do read -r _ _ _ p _ < /proc/$p/stat || break; a=$a,$p; done
echo "working on %[2]s in $PWD"
echo "start %[2]s $$ $a $(date +%%s%%N) $PWD" >> '%[1]s'
sleep %[3]s
echo "end %[2]s $$ $a $(date +%%s%%N) $PWD" >> '%[1]s'`, marks, key, sleep)
}

// indent indents every line of s by n spaces (for block scalars).
func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

// attempt is one execution of a marked step, as the step recorded it.
type attempt struct {
	key        string
	pid        int
	ancestors  []int // parent, grandparent...: the server is one of them
	dir        string
	start, end time.Time // end is zero when the step never got there
}

// readAttempts parses a marks file into attempts by key, in start order.
func readAttempts(t *testing.T, path string) map[string][]*attempt {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	byPid := map[int]*attempt{}
	out := map[string][]*attempt{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 6 {
			t.Fatalf("marks %s: bad line %q", path, sc.Text())
		}
		pid, err1 := strconv.Atoi(f[2])
		var err2 error
		var ancestors []int
		for _, p := range strings.Split(f[3], ",") {
			n, err := strconv.Atoi(p)
			ancestors = append(ancestors, n)
			err2 = cmp.Or(err2, err)
		}
		ns, err3 := strconv.ParseInt(f[4], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("marks %s: bad line %q", path, sc.Text())
		}
		at := time.Unix(0, ns)
		switch f[0] {
		case "start":
			a := &attempt{key: f[1], pid: pid, ancestors: ancestors, dir: f[5], start: at}
			byPid[pid] = a
			out[a.key] = append(out[a.key], a)
		case "end":
			a := byPid[pid]
			if a == nil || a.key != f[1] || !a.end.IsZero() {
				t.Fatalf("marks %s: %q ends no open attempt", path, sc.Text())
			}
			a.end = at
		default:
			t.Fatalf("marks %s: bad line %q", path, sc.Text())
		}
	}
	for _, as := range out {
		sort.Slice(as, func(i, j int) bool { return as[i].start.Before(as[j].start) })
	}
	return out
}

func countStarts(t *testing.T, path string) int {
	n := 0
	for _, as := range readAttempts(t, path) {
		n += len(as)
	}
	return n
}

func (a *attempt) String() string {
	end := "never"
	if !a.end.IsZero() {
		end = a.end.Format("15:04:05.000")
	}
	return fmt.Sprintf("{%s pid %d (under %v) %s-%s in %s}", a.key, a.pid, a.ancestors, a.start.Format("15:04:05.000"), end, a.dir)
}

// under reports whether the process pid started the attempt's step.
func (a *attempt) under(pid int) bool { return slices.Contains(a.ancestors, pid) }

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) STATE ...; comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// killStrays kills, at the end of t, the process groups of attempts that
// are still alive and still work under dir (a killed server leaves its
// host steps running): only ours, checked by their working directory.
func killStrays(t *testing.T, marks string, dirs ...string) {
	t.Cleanup(func() {
		for _, as := range readAttempts(t, marks) {
			for _, a := range as {
				if !alive(a.pid) {
					continue
				}
				cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", a.pid))
				if err != nil {
					continue
				}
				for _, d := range dirs {
					if strings.HasPrefix(cwd, d+string(filepath.Separator)) {
						_ = syscall.Kill(-a.pid, syscall.SIGKILL)
						break
					}
				}
			}
		}
	})
}

// orphanReport tells what became of the steps a server killed at crashed
// left behind: pre are the attempts that were running, final the marks
// read at the end, aliveAfter whether each pid was alive a while after the
// kill, rerun each key's next attempt. It returns one line per orphan.
func orphanReport(pre []*attempt, final map[string][]*attempt, aliveAfter map[int]bool, rerun map[string]*attempt, crashed time.Time) []string {
	var lines []string
	for _, a := range pre {
		for _, f := range final[a.key] {
			if f.pid == a.pid {
				a = f // as it ended, if it did
			}
		}
		if !aliveAfter[a.pid] && (a.end.IsZero() || a.end.Before(crashed)) {
			continue
		}
		l := fmt.Sprintf("step of %s (process group %d, its start mark at kill%+.2fs) outlived the killed server", a.key, a.pid, a.start.Sub(crashed).Seconds())
		if !a.end.IsZero() {
			l += fmt.Sprintf(" and ran to its end %.2fs after the kill", a.end.Sub(crashed).Seconds())
		}
		if r := rerun[a.key]; r != nil {
			l += fmt.Sprintf("; the re-run started %.2fs after the kill", r.start.Sub(crashed).Seconds())
			if !a.end.IsZero() && a.end.After(r.start) {
				l += fmt.Sprintf(": BOTH ATTEMPTS RAN IN PARALLEL for %.2fs", a.end.Sub(r.start).Seconds())
			}
		}
		lines = append(lines, l)
	}
	sort.Strings(lines)
	return lines
}

// sseStream follows a job's log over Server-Sent Events.
type sseStream struct {
	mu     sync.Mutex
	data   strings.Builder // data lines, joined by newlines
	end    string          // data of the "end" event, once seen
	err    error
	done   chan struct{}
	cancel context.CancelFunc
}

func followLog(t *testing.T, c client, runID int64, job string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	s := &sseStream{done: make(chan struct{}), cancel: cancel}
	t.Cleanup(func() { cancel(); <-s.done })
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/api/runs/%d/jobs/%s/logs", c.url, runID, job), nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	go func() {
		defer close(s.done)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			s.fail(err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			b, _ := io.ReadAll(resp.Body)
			s.fail(fmt.Errorf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b))
			return
		}
		sc := bufio.NewScanner(resp.Body)
		ev := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				ev = ""
			case strings.HasPrefix(line, "event: "):
				ev = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				d := strings.TrimPrefix(line, "data: ")
				s.mu.Lock()
				if ev == "end" {
					s.end = d
					s.mu.Unlock()
					return
				}
				s.data.WriteString(d + "\n")
				s.mu.Unlock()
			}
		}
		s.fail(fmt.Errorf("stream ended without an end event: %v", sc.Err()))
	}()
	return s
}

func (s *sseStream) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *sseStream) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data.String()
}

// wait waits for the end event and returns its data (the job's status).
func (s *sseStream) wait(t *testing.T, timeout time.Duration) string {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(timeout):
		t.Fatalf("log stream: no end event within %s; got:\n%s", timeout, s.text())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		t.Fatalf("log stream: %v; got:\n%s", s.err, s.data.String())
	}
	return s.end
}
