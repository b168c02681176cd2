package gitmirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	logmask "github.com/conveyor-ci/conveyor/internal/logs"
	"github.com/conveyor-ci/conveyor/internal/procgroup"
)

// remote is a validated remote URL without secrets, and the credentials for it.
type remote struct {
	url   string // as given to git: userinfo password removed
	scope string // scheme://host[:port] the credentials apply to; "" for none
	cred  Credentials
}

// scpLike is user@host:path; "transport::address" (ext::, fd::) must not match.
var scpLike = regexp.MustCompile(`^(?:[A-Za-z0-9._~-]+@)?[A-Za-z0-9][A-Za-z0-9.-]*:[^:]`)

// parseRemote validates rawURL and moves any userinfo password of an http(s)
// URL into the credentials, so that it never reaches argv.
func (c *Cache) parseRemote(op, rawURL string, cred Credentials) (remote, error) {
	bad := func(why string) (remote, error) {
		return remote{}, errs.E(op, errs.Invalid, "remote %q: %s", redact(rawURL), why)
	}
	if rawURL == "" || strings.HasPrefix(rawURL, "-") || strings.ContainsAny(rawURL, "\x00\n\r") {
		return bad("not a git URL")
	}
	if !strings.Contains(rawURL, "://") {
		if scpLike.MatchString(rawURL) {
			return remote{url: rawURL}, nil
		}
		return bad("not a git URL")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return bad("not a git URL")
	}
	switch u.Scheme {
	case "http", "https":
		if u.User != nil {
			if cred.empty() {
				p, _ := u.User.Password()
				cred = Credentials{Username: u.User.Username(), Password: p}
			}
			u.User = nil
		}
		if !cred.empty() {
			if cred.Username == "" {
				cred.Username = "x-access-token"
			}
			if strings.ContainsAny(cred.Username+cred.Password, "\x00\n\r") {
				return bad("credentials hold a line break")
			}
		}
		rem := remote{url: u.String(), cred: cred}
		if !cred.empty() {
			rem.scope = u.Scheme + "://" + u.Host
		}
		return rem, nil
	case "ssh", "git":
		if u.User != nil {
			u.User = url.User(u.User.Username()) // an ssh user name is no secret
		}
		return remote{url: u.String()}, nil
	case "file":
		if c.opts.AllowFileURLs {
			return remote{url: u.String()}, nil
		}
		return bad("file URLs are not allowed")
	}
	return bad("unsupported scheme " + strconv.Quote(u.Scheme))
}

var userinfo = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@`)

// hidePassword masks password in msg, also as git may print it: URL-escaped
// in a URL, base64 in a traced Authorization header. Passwords under 4
// characters are left: they would hide noise.
func hidePassword(msg, password string) string {
	if len(password) < 4 {
		return msg
	}
	m := logmask.NewMasker()
	m.Add(password)
	return m.Apply(msg)
}

// redact hides the userinfo of every URL in s.
func redact(s string) string { return userinfo.ReplaceAllString(s, "${1}***@") }

// call is one git command.
type call struct {
	gitDir  string // --git-dir, if any
	args    []string
	rem     *remote   // for commands that talk to a remote
	env     []string  // more environment
	stdin   io.Reader // nil: no input
	stdout  func(io.Reader) error
	literal bool // pathspecs are literal
}

// run runs git and returns its standard output (unless cl.stdout consumes
// it). Failures are kinded: ctx's end gives Canceled or Timeout, an exit
// status gives kindFor(stderr) for remote commands and Other otherwise.
func (c *Cache) run(ctx context.Context, op string, cl call) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	argv := cl.args
	if cl.gitDir != "" {
		argv = append([]string{"--git-dir", cl.gitDir}, argv...)
	}
	cmd := exec.CommandContext(ctx, c.opts.GitPath, argv...)
	cmd.Env = c.env(cl)
	cmd.Stdin = cl.stdin
	// Its own process group, killed whole: git fetch's helpers (upload-pack,
	// index-pack, remote-https) must not go on writing after a cancel, and
	// git-remote-https may hold the pipes after git dies (5 s at most).
	procgroup.KillOnCancel(cmd, 5*time.Second)
	var stdout, stderr bytes.Buffer
	cmd.Stderr = &limitWriter{buf: &stderr, max: 8 << 10}
	start := time.Now()
	var err error
	if cl.stdout == nil {
		cmd.Stdout = &stdout
		err = cmd.Run()
	} else {
		err = c.stream(cmd, cancel, cl.stdout)
	}
	line := redact("git " + strings.Join(argv, " "))
	if c.opts.Logger != nil {
		outcome := "ok"
		if err != nil {
			outcome = redact(err.Error())
		}
		c.opts.Logger(fmt.Sprintf("%s (%s): %s", line, time.Since(start).Round(time.Millisecond), outcome))
	}
	if err == nil {
		return stdout.Bytes(), nil
	}
	var kerr *errs.Error
	if errors.As(err, &kerr) {
		return nil, err // from cl.stdout
	}
	if ctxe := ctx.Err(); ctxe != nil {
		return nil, errs.E(op, kindOfCtx(ctxe), "%s: %v", line, ctxe)
	}
	msg := strings.TrimSpace(stderr.String())
	if cl.rem != nil {
		msg = hidePassword(msg, cl.rem.cred.Password)
	}
	kind := errs.Other
	if cl.rem != nil {
		kind = kindFor(msg)
	}
	return nil, errs.E(op, kind, "%s: %v: %s", line, err, redact(msg))
}

// stream runs cmd with its standard output read by fn; if fn fails, git is
// killed and fn's error returned.
func (c *Cache) stream(cmd *exec.Cmd, cancel func(), fn func(io.Reader) error) error {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	ferr := fn(out)
	if ferr != nil {
		cancel()
	} else {
		_, _ = io.Copy(io.Discard, out)
	}
	werr := cmd.Wait()
	if ferr != nil {
		return ferr
	}
	return werr
}

func kindOfCtx(err error) errs.Kind {
	if errors.Is(err, context.DeadlineExceeded) {
		return errs.Timeout
	}
	return errs.Canceled
}

// kindFor classifies the stderr of a failed fetch.
func kindFor(stderr string) errs.Kind {
	s := strings.ToLower(stderr)
	switch {
	case strings.Contains(s, "authentication failed"),
		strings.Contains(s, "could not read username"),
		strings.Contains(s, "could not read password"),
		strings.Contains(s, "permission denied"),
		strings.Contains(s, "error: 401"),
		strings.Contains(s, "error: 403"):
		return errs.Unauthorized
	case strings.Contains(s, "not found"),
		strings.Contains(s, "does not appear to be a git repository"),
		strings.Contains(s, "does not exist"),
		strings.Contains(s, "not our ref"),
		strings.Contains(s, "couldn't find remote ref"):
		return errs.NotFound
	}
	return errs.Unavailable
}

// helper is a credential helper reading the credentials from the environment
// of the git process; printf, not echo, so that backslashes stay as they are.
const helper = `!f() { test "$1" = get || exit 0; printf 'username=%s\npassword=%s\n' "$CONVEYOR_GIT_USERNAME" "$CONVEYOR_GIT_PASSWORD"; }; f`

var keptGitVars = map[string]bool{
	"GIT_SSH": true, "GIT_SSH_COMMAND": true, "GIT_SSL_CAINFO": true, "GIT_SSL_CAPATH": true,
}

// env builds the environment of a git process: the base environment without
// git's own variables (an outer GIT_DIR or GIT_TRACE must not reach us), no
// system or global configuration, no prompts, and configuration through
// GIT_CONFIG_COUNT so that argv stays short and free of secrets.
func (c *Cache) env(cl call) []string {
	base := c.opts.Env
	if base == nil {
		base = os.Environ()
	}
	env := make([]string, 0, len(base)+32)
	hasSSH := false
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "GIT_SSH_COMMAND" || name == "GIT_SSH":
			hasSSH = true
		case strings.HasPrefix(name, "GIT_") && !keptGitVars[name],
			name == "SSH_ASKPASS", name == "CONVEYOR_GIT_USERNAME", name == "CONVEYOR_GIT_PASSWORD":
			continue
		}
		env = append(env, kv)
	}
	if !hasSSH {
		env = append(env, "GIT_SSH_COMMAND=ssh -o BatchMode=yes")
	}
	fileAllow := "never"
	if c.opts.AllowFileURLs {
		fileAllow = "always"
	}
	cfg := [][2]string{
		{"core.askPass", ""},
		{"core.hooksPath", os.DevNull},
		{"core.quotePath", "false"},
		{"credential.helper", ""},
		{"gc.autoDetach", "false"},
		{"maintenance.autoDetach", "false"},
		{"init.defaultBranch", "main"},
		{"protocol.ext.allow", "never"},
		{"protocol.file.allow", fileAllow},
	}
	if cl.rem != nil && cl.rem.scope != "" {
		cfg = append(cfg, [2]string{"credential." + cl.rem.scope + ".helper", helper})
		env = append(env,
			"CONVEYOR_GIT_USERNAME="+cl.rem.cred.Username,
			"CONVEYOR_GIT_PASSWORD="+cl.rem.cred.Password)
	}
	env = append(env,
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=", // set and empty: git skips SSH_ASKPASS and fails instead of prompting
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_CONFIG_COUNT="+strconv.Itoa(len(cfg)))
	for i, kv := range cfg {
		env = append(env,
			fmt.Sprintf("GIT_CONFIG_KEY_%d=%s", i, kv[0]),
			fmt.Sprintf("GIT_CONFIG_VALUE_%d=%s", i, kv[1]))
	}
	if cl.literal {
		env = append(env, "GIT_LITERAL_PATHSPECS=1")
	}
	return append(env, cl.env...)
}

// limitWriter keeps the last bytes written, up to max: the end of git's
// stderr says why it failed.
type limitWriter struct {
	buf *bytes.Buffer
	max int
}

func (w *limitWriter) Write(p []byte) (int, error) {
	n := len(p)
	w.buf.Write(p)
	if extra := w.buf.Len() - w.max; extra > 0 {
		w.buf.Next(extra)
	}
	return n, nil
}
