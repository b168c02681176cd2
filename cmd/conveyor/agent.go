package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/conveyor-ci/conveyor/internal/agent"
	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/jobrun"
	"github.com/conveyor-ci/conveyor/internal/profiles"
)

// agentCommands are conveyor agent (and agent drain|resume), agents and
// agent-token; clientCommands merges them.
func agentCommands() map[string]command {
	return map[string]command{
		"agent":       {"run a remote agent that pulls jobs for its labels; agent drain|resume ID", agentMain},
		"agents":      {"list a server's agents with their state and jobs", agentsMain},
		"agent-token": {"create (agent-token create) or revoke (agent-token revoke ID) an agent's token", agentTokenMain},
	}
}

func agentMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "drain" || args[0] == "resume") {
		return agentDrainMain(ctx, args[0], args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "one-job" {
		return agentOneJobMain(ctx, args[1:], stdout, stderr)
	}
	return agentRunMain(ctx, args, stdout, stderr)
}

// agentRunMain is `conveyor agent`: register, then run jobs until SIGTERM.
func agentRunMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, code := parseAgentFlags(args, stderr)
	if f == nil {
		return code
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: f.level}))
	bk, err := openJobBackends(ctx, f.backendName, f.dockerEngine, &f.kube, stderr, outOfProcessRunner(), f.tools.options(filepath.Join(f.data, "toolcache")))
	if err != nil {
		fmt.Fprintln(stderr, "conveyor agent:", err)
		return 1
	}
	defer bk.close()
	a, err := f.agent(bk, log)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor agent:", err)
		return 2
	}
	go abortOnSecondSignal(ctx, a, f.shutdown+time.Minute, log)
	fmt.Fprintf(stdout, "conveyor agent %s: serving %s, jobs on %s, capacity %d\n", version, f.server, bk.main.Name(), f.capacity)
	if err := a.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "conveyor agent:", err)
		return 1
	}
	return 0
}

// agentFlags are conveyor agent's flags, settled (see parseAgentFlags).
type agentFlags struct {
	server, token, tokenFile, caFile        string
	labels, backendName, dockerEngine, data string
	logLevel, labelConfig                   string
	capacity                                int
	shutdown                                time.Duration
	noDefaults                              bool
	platforms                               listFlag
	kube                                    kubeFlags
	tools                                   toolFlags
	actions                                 actionFlags
	// Settled from the above.
	level    slog.Level
	profiles *profiles.Config
}

func (f *agentFlags) register(fs *flag.FlagSet) {
	f.server = os.Getenv("CONVEYOR_SERVER")
	if f.server == "" {
		f.server = "http://127.0.0.1:8080"
	}
	fs.StringVar(&f.server, "server", f.server, "server URL (env CONVEYOR_SERVER)")
	fs.StringVar(&f.token, "token", os.Getenv("CONVEYOR_AGENT_TOKEN"), "agent token (env CONVEYOR_AGENT_TOKEN; it shows in ps, prefer the env or --token-file)")
	fs.StringVar(&f.tokenFile, "token-file", "", "read the agent token from this file")
	fs.StringVar(&f.caFile, "ca-file", os.Getenv("CONVEYOR_CA_FILE"), "also trust the PEM certificates in this file for https (env CONVEYOR_CA_FILE)")
	fs.StringVar(&f.labels, "labels", "", "comma-separated runs-on labels this machine runs, e.g. linux,gpu")
	fs.BoolVar(&f.noDefaults, "no-default-labels", false, "do not add self-hosted, the OS and the architecture to the labels")
	fs.IntVar(&f.capacity, "capacity", 1, "jobs run at once")
	fs.StringVar(&f.backendName, "backend", "auto", "job sandboxes: auto, docker, host or kubernetes (a pod per job; see --kubeconfig)")
	f.kube.register(fs)
	fs.StringVar(&f.labelConfig, "label-config", "", labelConfigHelp)
	fs.StringVar(&f.dockerEngine, "docker-engine", os.Getenv("CONVEYOR_DOCKER_ENGINE"), engineFlagHelp)
	fs.Var(&f.platforms, "P", "LABEL=IMAGE for a runs-on label; LABEL=-self-hosted runs on the host (repeatable)")
	fs.StringVar(&f.data, "data", "conveyor-agent-data", "directory for job directories")
	fs.DurationVar(&f.shutdown, "shutdown-timeout", 2*time.Minute, "on SIGTERM, running jobs may finish within this; then they are handed back")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	f.actions.register(fs, true)
	f.tools.register(fs)
}

// parseAgentFlags parses and settles conveyor agent's flags; nil and the
// exit code when they are wrong (said on stderr).
func parseAgentFlags(args []string, stderr io.Writer) (*agentFlags, int) {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &agentFlags{}
	f.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: conveyor agent --server URL --token T [flags]\n       conveyor agent drain|resume ID [--server URL --token ADMIN]\n\nRuns jobs for a Conveyor server: registers with an agent token (conveyor agent-token\ncreate), long-polls for jobs whose runs-on labels it has, runs each in a fresh sandbox\nand streams its log back. Outbound HTTP(S) only. SIGTERM: no new jobs, running ones\nfinish within --shutdown-timeout or are handed back; a second SIGTERM stops at once.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "conveyor agent: unexpected argument %q\n", fs.Arg(0))
		return nil, 2
	}
	if err := f.settle(); err != nil {
		fmt.Fprintln(stderr, "conveyor agent:", err)
		return nil, 2
	}
	return f, 0
}

// settle reads the token file, makes --data absolute (jobs run in other
// working directories; the host backend's steps find their scripts by
// these paths) and parses the log level and the label config.
func (f *agentFlags) settle() error {
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return err
		}
		f.token = strings.TrimSpace(string(b))
	}
	if f.token == "" {
		return errors.New("no agent token: pass --token, --token-file or set CONVEYOR_AGENT_TOKEN")
	}
	abs, err := filepath.Abs(f.data)
	if err != nil {
		return fmt.Errorf("--data: %w", err)
	}
	f.data = abs
	if err := f.level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: %w", f.logLevel, err)
	}
	if f.profiles, err = loadLabelConfig(f.labelConfig); err != nil {
		return fmt.Errorf("--label-config: %w", err)
	}
	return nil
}

// agent makes the agent the flags say, on backends bk.
func (f *agentFlags) agent(bk *backends, log *slog.Logger) (*agent.Agent, error) {
	// 2 min: above any long poll, so only a hung server fails.
	tr, err := clientTransport(f.caFile, 2*time.Minute)
	if err != nil {
		return nil, err
	}
	plats, err := serverPlatforms(bk.main.Name(), f.platforms)
	if err != nil {
		return nil, err
	}
	acts, err := f.actions.open(filepath.Join(f.data, "actions"))
	if err != nil {
		return nil, fmt.Errorf("action cache: %w", err)
	}
	host, _ := os.Hostname()
	return agent.New(agent.Config{Server: f.server, Token: f.token, Labels: agentLabels(f.labels, !f.noDefaults),
		Capacity: f.capacity, Env: jobrun.Env{Backend: bk.main, Host: bk.host, Containers: bk.containers, Platforms: plats, Profiles: f.profiles, Actions: acts},
		DataDir: f.data, ShutdownTimeout: f.shutdown, Version: version, Hostname: host, Log: log, HTTP: &http.Client{Transport: tr}})
}

// abortOnSecondSignal stops a at once on a second SIGINT or SIGTERM after
// ctx ends (the first), within grace.
func abortOnSecondSignal(ctx context.Context, a *agent.Agent, grace time.Duration, log *slog.Logger) {
	<-ctx.Done()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	select {
	case <-sig:
		log.Warn("second signal: stopping at once; running jobs are left to lease expiry")
		a.Abort()
	case <-time.After(grace):
	}
}

// agentLabels are the labels given plus, as GitHub's runners have them,
// self-hosted, the OS and the architecture.
func agentLabels(given string, defaults bool) []string {
	var out []string
	if defaults {
		osName := map[string]string{"darwin": "macos"}[runtime.GOOS]
		if osName == "" {
			osName = runtime.GOOS
		}
		arch := map[string]string{"amd64": "x64", "386": "x86"}[runtime.GOARCH]
		if arch == "" {
			arch = runtime.GOARCH
		}
		out = append(out, "self-hosted", osName, arch)
	}
	for _, l := range strings.Split(given, ",") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func agentDrainMain(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("agent "+verb, "agent "+verb+" ID [flags]", stdout, stderr)
	pos, ok := c.parse(args, 1, 1)
	if !ok {
		return 2
	}
	id, ok := c.agentID(pos[0])
	if !ok {
		return 2
	}
	a, err := c.client().DrainAgent(ctx, id, verb == "drain")
	if err != nil {
		return c.fail(fmt.Sprintf("agent %d", id), err)
	}
	if verb == "drain" {
		fmt.Fprintf(stdout, "agent %d (%s): draining; it finishes %d running job(s) and takes no new ones\n", a.ID, a.Name, len(a.Jobs))
	} else {
		fmt.Fprintf(stdout, "agent %d (%s): taking jobs again\n", a.ID, a.Name)
	}
	return 0
}

func agentsMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("agents", "agents [flags]", stdout, stderr)
	c.jsonFlag()
	if _, ok := c.parse(args, 0, 0); !ok {
		return 2
	}
	list, err := c.client().ListAgents(ctx)
	if err != nil {
		return c.fail("agents", err)
	}
	if c.json {
		return c.printJSON(list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATE\tLABELS\tCAPACITY\tVERSION\tHOST\tLAST SEEN\tJOBS")
	for _, a := range list {
		seen := "never"
		if a.LastSeen != nil {
			seen = time.Since(*a.LastSeen).Round(time.Second).String() + " ago"
		}
		var jobs []string
		for _, j := range a.Jobs {
			jobs = append(jobs, fmt.Sprintf("%d/%s", j.RunID, j.Key))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", a.ID, a.Name, a.State, strings.Join(a.Labels, ","),
			a.Capacity, orDash(a.Version), orDash(a.Hostname), seen, orDash(strings.Join(jobs, " ")))
	}
	tw.Flush()
	return 0
}

func agentTokenMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "create" {
		return agentTokenCreateMain(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "revoke" {
		return agentTokenRevokeMain(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, "usage: conveyor agent-token create --name NAME [--labels a,b] [--allow-labels a,b] [--org ID] [flags]\n       conveyor agent-token revoke ID [flags]")
	return 2
}

func agentTokenCreateMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("agent-token create", "agent-token create --name NAME [--labels a,b] [--allow-labels a,b] [--org ID] [flags]\n\nThe agent belongs to the admin token's organisation; --org checks that it is ID.\nWith --allow-labels the agent may claim only those labels (list the default ones,\nself-hosted, linux, x64, ..., that jobs select on); others it reports are ignored.", stdout, stderr)
	var in api.AgentInput
	var labels, allowed, org string
	c.fs.StringVar(&in.Name, "name", "", "agent name, unique in the organisation (required)")
	c.fs.StringVar(&labels, "labels", "", "comma-separated runs-on labels until the agent registers its own")
	c.fs.StringVar(&allowed, "allow-labels", "", "comma-separated labels the agent may claim; others it reports are ignored (default: any)")
	c.fs.StringVar(&org, "org", "", "organisation id the agent must belong to (that of the admin token)")
	c.jsonFlag()
	if _, ok := c.parse(args, 0, 0); !ok {
		return 2
	}
	if in.Name == "" {
		fmt.Fprintln(stderr, "conveyor agent-token create: --name is required")
		return 2
	}
	in.Labels, in.AllowedLabels = splitList(labels), splitList(allowed)
	cl := c.client()
	if org != "" {
		w, err := cl.WhoAmI(ctx)
		if err != nil {
			return c.fail("", err)
		}
		if strconv.FormatInt(w.OrgID, 10) != org {
			fmt.Fprintf(stderr, "conveyor agent-token create: the token belongs to organisation %d, not %s; agents are created in the token's organisation\n", w.OrgID, org)
			return 1
		}
	}
	out, err := cl.CreateAgent(ctx, in)
	if err != nil {
		return c.fail("agent-token create", err)
	}
	if c.json {
		return c.printJSON(out)
	}
	fmt.Fprintf(stdout, "agent %d: %s (labels: %s)\nagent token (shown once, stored hashed): %s\n  CONVEYOR_AGENT_TOKEN=%s conveyor agent --server %s\n",
		out.Agent.ID, out.Agent.Name, orDash(strings.Join(out.Agent.Labels, ",")), out.Token, out.Token, c.server)
	if len(out.Agent.AllowedLabels) > 0 {
		fmt.Fprintf(stdout, "  it may claim only these labels: %s\n", strings.Join(out.Agent.AllowedLabels, ","))
	}
	return 0
}

func agentTokenRevokeMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("agent-token revoke", "agent-token revoke ID [flags]", stdout, stderr)
	pos, ok := c.parse(args, 1, 1)
	if !ok {
		return 2
	}
	id, ok := c.agentID(pos[0])
	if !ok {
		return 2
	}
	if err := c.client().RevokeAgent(ctx, id); err != nil {
		return c.fail(fmt.Sprintf("agent %d", id), err)
	}
	fmt.Fprintf(stdout, "agent %d: token revoked; its running jobs are re-queued when their leases expire\n", id)
	return 0
}

func (c *clientCmd) agentID(s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		fmt.Fprintf(c.stderr, "conveyor %s: agent %q is not an agent id\n", c.name, s)
		return 0, false
	}
	return id, true
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// splitList is a comma-separated flag's non-empty items.
func splitList(s string) []string {
	var out []string
	for _, l := range strings.Split(s, ",") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
