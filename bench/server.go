package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serverProc is a running `conveyor server` (the real binary) on a fresh
// data directory, SQLite, host backend.
type serverProc struct {
	h       *harness
	cmd     *exec.Cmd
	url     string
	token   string
	data    string
	logPath string
	exited  chan struct{}
	api     *http.Client
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func (h *harness) freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.fail("%v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// serverDataDir is a new, not yet existing data directory under h.tmp.
func (h *harness) serverDataDir(label string) string {
	h.repos++
	return filepath.Join(h.tmp, fmt.Sprintf("%s-data%d", label, h.repos))
}

func serverArgs(data string, port int) []string {
	return []string{"server", "--data", data, "--listen", "127.0.0.1:" + strconv.Itoa(port),
		"--backend", "host", "--allow-file-urls"}
}

// startServer starts the server on a fresh data directory and waits for
// its start-up lines (URL and first admin token). Its log goes to a file
// shown when something fails.
func (h *harness) startServer(label string) *serverProc { return h.startServerOf(label, true) }

// startServerOf is startServer; !first is a further replica of a shared
// database, which prints no admin token.
func (h *harness) startServerOf(label string, first bool) *serverProc {
	data := h.serverDataDir(label)
	s := &serverProc{h: h, data: data, logPath: data + ".log", exited: make(chan struct{}),
		api: &http.Client{Timeout: 30 * time.Second}}
	logf, err := os.Create(s.logPath)
	if err != nil {
		h.fail("%v", err)
	}
	s.cmd = exec.Command(h.bin, serverArgs(data, h.freePort())...)
	s.cmd.Stderr = logf
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		h.fail("%v", err)
	}
	if err := s.cmd.Start(); err != nil {
		h.fail("starting the server: %v", err)
	}
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
	}()
	go func() {
		_ = s.cmd.Wait()
		logf.Close()
		close(s.exited)
	}()
	deadline := time.After(20 * time.Second)
	for s.url == "" || (first && s.token == "") {
		select {
		case l, ok := <-lines:
			if !ok {
				<-s.exited
				h.fail("the server exited during start-up: %s\n%s", s.cmd.ProcessState, s.logTail())
			}
			if rest, ok := strings.CutPrefix(l, "conveyor server listening on "); ok {
				s.url, _, _ = strings.Cut(rest, " ")
			}
			if rest, ok := strings.CutPrefix(l, "admin token (shown once, stored hashed): "); ok {
				s.token = strings.TrimSpace(rest)
			}
		case <-deadline:
			s.kill()
			h.fail("no start-up lines from the server within 20 s\n%s", s.logTail())
		}
	}
	return s
}

func (s *serverProc) pid() int { return s.cmd.Process.Pid }

// stop ends the server gracefully (SIGTERM), SIGKILL after 10 s.
func (s *serverProc) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.kill()
	}
}

// kill ends the server with SIGKILL, as a crash would.
func (s *serverProc) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

func (s *serverProc) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "server log (" + s.logPath + "):\n" + string(b)
}

// call calls the REST API with the admin token and decodes the answer.
func (s *serverProc) call(method, path string, in any, want int, out any) {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, body)
	if err != nil {
		s.h.fail("%v", err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.api.Do(req)
	if err != nil {
		s.h.fail("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		s.h.fail("%s %s: %d %s (want %d)", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			s.h.fail("%s %s: %v in %s", method, path, err, b)
		}
	}
}

// addRepo registers a file:// repository (GitHub webhooks) and returns its id.
func (s *serverProc) addRepo(dir, name, secret string) int64 {
	var out struct {
		Repo struct {
			ID int64 `json:"id"`
		} `json:"repo"`
	}
	s.call("POST", "/api/repos", map[string]string{"url": "file://" + dir, "forge": "github", "name": name, "secret": secret},
		http.StatusCreated, &out)
	return out.Repo.ID
}

// rss is VmRSS of the server process in bytes.
func (s *serverProc) rss() int64 {
	return procStatus(fmt.Sprintf("/proc/%d/status", s.pid()), "VmRSS:")
}

// procStatus returns a "kB" line of /proc/PID/status in bytes, 0 if unreadable.
func procStatus(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			if f := strings.Fields(rest); len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// gitRepo makes a git repository with one commit of files and returns its
// directory and HEAD.
func (h *harness) gitRepo(files map[string]string) (dir, head string) {
	h.repos++
	dir = filepath.Join(h.tmp, fmt.Sprintf("gitrepo%d", h.repos))
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			h.fail("%v", err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			h.fail("%v", err)
		}
	}
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@example.com",
			"GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@example.com", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			h.fail("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	git("add", "-A")
	git("commit", "-q", "-m", "first commit")
	return dir, git("rev-parse", "HEAD")
}

func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// postHook sends a GitHub push delivery and returns the status and body.
func postHook(c *http.Client, url, secret string, body []byte, delivery string) (int, []byte, error) {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/bench")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-GitHub-Hook-ID", "123456789")
	req.Header.Set("X-Hub-Signature-256", sign(secret, body))
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, b, err
}

// histogram is one Prometheus histogram read from /metrics.
type histogram struct {
	bounds []float64 // upper bounds, ascending, +Inf last
	counts []float64 // cumulative
	sum    float64
	count  float64
}

// metricsHistogram reads histogram name from the server's /metrics.
func (s *serverProc) metricsHistogram(name string) histogram {
	resp, err := s.api.Get(s.url + "/metrics")
	if err != nil {
		s.h.fail("/metrics: %v", err)
	}
	defer resp.Body.Close()
	var hg histogram
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(f[0], name+"_bucket{le=\""):
			le := strings.TrimSuffix(strings.TrimPrefix(f[0], name+"_bucket{le=\""), "\"}")
			b, err := strconv.ParseFloat(le, 64)
			if le == "+Inf" {
				b, err = math.Inf(1), nil
			}
			if err != nil {
				continue
			}
			hg.bounds = append(hg.bounds, b)
			hg.counts = append(hg.counts, v)
		case f[0] == name+"_sum":
			hg.sum = v
		case f[0] == name+"_count":
			hg.count = v
		}
	}
	if len(hg.bounds) == 0 {
		s.h.fail("/metrics has no histogram %s", name)
	}
	return hg
}

// minus is the observations made between o and h.
func (h histogram) minus(o histogram) histogram {
	d := histogram{bounds: h.bounds, counts: slices.Clone(h.counts), sum: h.sum - o.sum, count: h.count - o.count}
	for i := range d.counts {
		if i < len(o.counts) {
			d.counts[i] -= o.counts[i]
		}
	}
	return d
}

// quantile estimates quantile q as Prometheus' histogram_quantile does:
// linear interpolation inside the bucket that holds the rank. It also
// returns that bucket's bounds.
func (h histogram) quantile(q float64) (est, lo, hi float64) {
	if h.count <= 0 {
		return math.NaN(), 0, 0
	}
	rank := q * h.count
	i := sort.Search(len(h.counts), func(i int) bool { return h.counts[i] >= rank })
	if i >= len(h.bounds) {
		i = len(h.bounds) - 1
	}
	lo, hi = 0, h.bounds[i]
	below := 0.0
	if i > 0 {
		lo, below = h.bounds[i-1], h.counts[i-1]
	}
	if math.IsInf(hi, 1) {
		return lo, lo, hi
	}
	in := h.counts[i] - below
	if in <= 0 {
		return hi, lo, hi
	}
	return lo + (hi-lo)*(rank-below)/in, lo, hi
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// percentile of ds (nearest rank); ds is sorted in place.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(math.Ceil(p/100*float64(len(ds)))) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// serverStart: exec of `conveyor server` on a fresh data directory to the
// first 200 on /healthz, against exec of `conveyor version` to its exit.
func serverStart(h *harness) []row {
	poll := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	start := func(data string) time.Duration {
		port := h.freePort()
		cmd := exec.Command(h.bin, serverArgs(data, port)...) // stdout and stderr to /dev/null
		url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			h.fail("%v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		defer func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}()
		for {
			resp, err := poll.Get(url)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return time.Since(t0)
				}
			}
			select {
			case err := <-exited:
				exited <- err
				h.fail("conveyor server exited before answering /healthz: %v (rerun: %s %s)", err, h.bin, strings.Join(serverArgs(data, port), " "))
			default:
			}
			if time.Since(t0) > 10*time.Second {
				h.fail("no 200 from /healthz within 10 s")
			}
			time.Sleep(time.Millisecond)
		}
	}
	again := h.serverDataDir("restart")
	r := h.timings("server start",
		func() time.Duration { return start(h.serverDataDir("start")) },
		func() time.Duration { return start(again) },
		func() time.Duration {
			t0 := time.Now()
			if out, err := exec.Command(h.bin, "version").CombinedOutput(); err != nil {
				h.fail("conveyor version: %v\n%s", err, out)
			}
			return time.Since(t0)
		})
	cold, warm, version := median(r[0]), median(r[1]), median(r[2])
	return []row{{name: "server cold start to /healthz", ours: fmtDur(cold), floor: fmtDur(version) + " (version)", ratio: fmtRatio(cold, version),
		target: "< 100 ms", ok: okIf(cold < 100*time.Millisecond),
		comment: fmt.Sprintf("exec of `conveyor server --backend host` on a fresh data directory (schema migrations, default org, admin token) "+
			"to the first 200 on GET /healthz, polled every 1 ms; restart on an existing data directory %s; floor: exec of `conveyor version` to its exit",
			fmtDur(warm))}}
}

// serverRSS: resident memory of an idle server, and after a burst of
// webhooks (informational).
func serverRSS(h *harness) []row {
	srv := h.startServer("rss")
	defer srv.stop()
	time.Sleep(2 * time.Second)
	idle := srv.rss()
	t := h.intakeRepo(srv)
	res := t.burst()
	after := srv.rss()
	hwm := procStatus(fmt.Sprintf("/proc/%d/status", srv.pid()), "VmHWM:")
	return []row{
		{name: "server idle RSS", ours: fmtMB(idle), floor: "-", ratio: "-", target: "< 40 MB", ok: okIf(idle < 40<<20),
			comment: "VmRSS of `conveyor server --backend host` (SQLite, fresh data directory) 2 s after it printed its URL, nothing registered; once"},
		{name: "server RSS after a 10,000 burst", ours: fmtMB(after), floor: "-", ratio: "-", target: "-", ok: "-",
			comment: fmt.Sprintf("VmRSS right after %d webhooks (%d accepted) from %d clients, as in server-intake; VmHWM %s",
				burstSize, res.accepted, intakeClients, fmtMB(hwm))},
	}
}

// cpuSample is CPU time in clock ticks: the machine's busy and total time
// (all CPUs), this process's, and a server's with its reaped children (git).
type cpuSample struct{ busy, total, self, server float64 }

func sampleCPU(serverPID int) cpuSample {
	var s cpuSample
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		for i, v := range f[1:] {
			x, _ := strconv.ParseFloat(v, 64)
			switch i {
			case 3, 4: // idle, iowait
				s.total += x
			case 8, 9: // guest time is already in user
			default:
				s.busy += x
				s.total += x
			}
		}
	}
	s.self = procTicks("/proc/self/stat", false)
	s.server = procTicks(fmt.Sprintf("/proc/%d/stat", serverPID), true)
	return s
}

// procTicks is utime+stime (and cutime+cstime with children) of a /proc/PID/stat.
func procTicks(path string, children bool) float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is the state, field 3
	n := 2
	if children {
		n = 4
	}
	var t float64
	for _, v := range f[11 : 11+n] { // utime is field 14
		x, _ := strconv.ParseFloat(v, 64)
		t += x
	}
	return t
}

// cpuShare describes a - b as percentages of one CPU (200% = both of 2 CPUs).
func cpuShare(a, b cpuSample) string {
	total := a.total - b.total
	if total <= 0 {
		return "CPU use unknown"
	}
	ncpu := float64(runtime.NumCPU())
	pct := func(x float64) float64 { return 100 * ncpu * x / total }
	server, self := a.server-b.server, a.self-b.self
	other := (a.busy - b.busy) - server - self
	return fmt.Sprintf("CPU in the window (of %.0f%%): server %.0f%% (its git children included), load generator %.0f%%, everything else %.0f%%",
		100*ncpu, pct(server), pct(self), pct(max(other, 0)))
}
