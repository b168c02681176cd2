package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/client"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// clientCommands are the subcommands that talk to a server's API. "run"
// is the local run command extended with "run show ID"; main merges this
// map into its command table. The agent commands join it.
func clientCommands() map[string]command {
	m := map[string]command{
		"repo":      {"register (repo add) or list (repo list) repositories on a server", repoMain},
		"trigger":   {"start a workflow_dispatch event on a server", triggerMain},
		"runs":      {"list runs on a server", runsMain},
		"run":       {"run workflows of the current repository locally; run show ID: a run on a server", runOrShowMain},
		"logs":      {"print (-f: follow) the logs of a run's jobs on a server", logsMain},
		"cancel":    {"cancel a run on a server", cancelMain},
		"rerun":     {"re-run a run (--failed: only failed jobs) on a server", rerunMain},
		"whoami":    {"show the token's organisation and role on a server", whoamiMain},
		"artifacts": {"list a run's artifacts on a server; artifacts download RUN [NAME] [-o DIR]", artifactsMain},
		"retention": {"show or set how long runs, logs and artifacts are kept (retention show|set)", retentionMain},
	}
	for k, v := range agentCommands() {
		m[k] = v
	}
	for k, v := range accountCommands() {
		m[k] = v
	}
	for k, v := range secretCommands() {
		m[k] = v
	}
	for k, v := range quotaCommands() {
		m[k] = v
	}
	return m
}

// runOrShowMain is "run show ID" (a run on a server) or the local run.
func runOrShowMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "show" {
		return runShowMain(ctx, args[1:], stdout, stderr)
	}
	return runMain(ctx, args, stdout, stderr)
}

// clientCmd is what every client subcommand shares: its flags, the
// server connection and the output streams.
type clientCmd struct {
	name           string
	fs             *flag.FlagSet
	server, token  string
	caFile         string
	transport      *http.Transport // made by parse from caFile
	json           bool
	stdout, stderr io.Writer
	// anonymous commands (login) need no token.
	anonymous bool
}

// newClientCmd makes a subcommand's flag set with --server and --token
// (defaults from CONVEYOR_SERVER and CONVEYOR_TOKEN); usage is its
// synopsis line.
func newClientCmd(name, usage string, stdout, stderr io.Writer) *clientCmd {
	c := &clientCmd{name: name, fs: flag.NewFlagSet(name, flag.ContinueOnError), stdout: stdout, stderr: stderr}
	c.fs.SetOutput(stderr)
	c.fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: conveyor %s\n\nflags:\n", usage)
		c.fs.PrintDefaults()
	}
	// Empty defaults are filled by parse from the config of conveyor login.
	c.fs.StringVar(&c.server, "server", os.Getenv("CONVEYOR_SERVER"), "server URL (env CONVEYOR_SERVER; default: conveyor login's, or "+defaultServer+")")
	c.fs.StringVar(&c.token, "token", os.Getenv("CONVEYOR_TOKEN"), "API token (env CONVEYOR_TOKEN; default: conveyor login's for its server)")
	c.fs.StringVar(&c.caFile, "ca-file", os.Getenv("CONVEYOR_CA_FILE"), "also trust the PEM certificates in this file for https (env CONVEYOR_CA_FILE)")
	return c
}

func (c *clientCmd) jsonFlag() { c.fs.BoolVar(&c.json, "json", false, "print the API's JSON answer") }

// parse parses flags anywhere among the arguments (flag stops at the
// first non-flag) and checks the count of positional arguments.
func (c *clientCmd) parse(args []string, minArgs, maxArgs int) ([]string, bool) {
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			return nil, false
		}
		if c.fs.NArg() == 0 {
			break
		}
		rest := c.fs.Args()
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			pos = append(pos, rest...) // after "--" everything is positional
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	if err := c.fromConfig(); err != nil {
		fmt.Fprintf(c.stderr, "conveyor %s: %v\n", c.name, err)
		return nil, false
	}
	switch {
	case len(pos) < minArgs:
		fmt.Fprintf(c.stderr, "conveyor %s: missing argument\n", c.name)
	case len(pos) > maxArgs:
		fmt.Fprintf(c.stderr, "conveyor %s: unexpected argument %q\n", c.name, pos[maxArgs])
	case c.token == "" && !c.anonymous:
		fmt.Fprintf(c.stderr, "conveyor %s: no API token for %s: run conveyor login, pass --token or set CONVEYOR_TOKEN\n", c.name, c.server)
	default:
		// 30 s: a hung server fails; log streams send their headers at once.
		tr, err := clientTransport(c.caFile, 30*time.Second)
		if err != nil {
			fmt.Fprintf(c.stderr, "conveyor %s: %v\n", c.name, err)
			return nil, false
		}
		c.transport = tr
		return pos, true
	}
	c.fs.Usage()
	return nil, false
}

func (c *clientCmd) client() *client.Client {
	return client.New(c.server, c.token, &http.Client{Transport: c.transport})
}

// fail prints "conveyor: WHAT: MESSAGE" (a not-found is just "not found")
// and returns exit code 1.
func (c *clientCmd) fail(what string, err error) int {
	msg := err.Error()
	// A not-found keeps the server's reason when it gives one ("no
	// workflow "x.yml" at main"); bare store wording becomes "not found".
	if errs.Is(err, errs.NotFound) && !strings.HasPrefix(msg, "no ") {
		msg = "not found"
	}
	if what == "" {
		fmt.Fprintf(c.stderr, "conveyor: %s\n", msg)
	} else {
		// The server often names the object too: "run 12: ..." or "run 12 is ...".
		if rest, ok := strings.CutPrefix(msg, what); ok && rest != "" && (rest[0] == ':' || rest[0] == ' ') {
			msg = strings.TrimSpace(strings.TrimPrefix(rest, ":"))
		}
		fmt.Fprintf(c.stderr, "conveyor: %s: %s\n", what, msg)
	}
	return 1
}

func (c *clientCmd) printJSON(v any) int {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return c.fail("", err)
	}
	return 0
}

// runID parses a RUN argument.
// parseRun parses flags and 1 to maxArgs positional arguments, the
// first a run id.
func (c *clientCmd) parseRun(args []string, maxArgs int) (int64, []string, bool) {
	pos, ok := c.parse(args, 1, maxArgs)
	if !ok {
		return 0, nil, false
	}
	id, ok := c.runID(pos[0])
	return id, pos, ok
}

func (c *clientCmd) runID(s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		fmt.Fprintf(c.stderr, "conveyor %s: run %q is not a run id\n", c.name, s)
		return 0, false
	}
	return id, true
}

func repoMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "add" {
		return repoAddMain(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "list" {
		return repoListMain(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "set" {
		return repoSetMain(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, "usage: conveyor repo add URL --forge github|gitlab|gitea [flags]\n       conveyor repo list [flags]\n       conveyor repo set REPO --run-test-deliveries=true|false [flags]")
	return 2
}

func repoAddMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("repo add", "repo add URL --forge github|gitlab|gitea [--secret S] [--branch main] [flags]", stdout, stderr)
	var in api.RepoInput
	c.fs.StringVar(&in.Forge, "forge", "", "github, gitlab or gitea (required)")
	c.fs.StringVar(&in.Secret, "secret", "", "webhook secret (default: generated)")
	c.fs.StringVar(&in.Branch, "branch", "", "default branch (default: main)")
	c.fs.StringVar(&in.Name, "name", "", "owner/repo (default: from the URL)")
	c.fs.StringVar(&in.StatusToken, "status-token", "", "forge token for commit statuses")
	c.fs.StringVar(&in.APIURL, "api-url", "", "forge API URL (self-hosted forges)")
	c.fs.StringVar(&in.CloneUser, "clone-user", "", "user for cloning a private repository")
	c.fs.StringVar(&in.ClonePassword, "clone-password", "", "password or token for cloning a private repository")
	c.fs.BoolVar(&in.AllowSHA1, "allow-sha1", false, "accept GitHub's legacy sha1 signature header")
	c.fs.BoolVar(&in.RunTestDeliveries, "run-test-deliveries", false, "run Gitea's \"Test delivery\" pushes (before == after) like real pushes (default: answered as a ping, nothing runs)")
	c.jsonFlag()
	pos, ok := c.parse(args, 1, 1)
	if !ok {
		return 2
	}
	in.URL = pos[0]
	secretSet := false
	c.fs.Visit(func(f *flag.Flag) { secretSet = secretSet || f.Name == "secret" })
	switch {
	case secretSet && in.Secret == "":
		fmt.Fprintln(stderr, "conveyor repo add: --secret must not be empty (omit it to generate one)")
		return 2
	case in.Forge == "":
		fmt.Fprintln(stderr, "conveyor repo add: --forge github|gitlab|gitea is required")
		return 2
	}
	out, err := c.client().AddRepo(ctx, in)
	if err != nil {
		return c.fail("repo add "+in.URL, err)
	}
	if c.json {
		return c.printJSON(out)
	}
	fmt.Fprintf(stdout, "repository %d: %s (%s)\nwebhook URL:    %s\nwebhook secret: %s\n",
		out.Repo.ID, out.Repo.Name, out.Repo.Forge, out.HookURL, out.Secret)
	return 0
}

func repoListMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("repo list", "repo list [flags]", stdout, stderr)
	c.jsonFlag()
	if _, ok := c.parse(args, 0, 0); !ok {
		return 2
	}
	repos, err := c.client().ListRepos(ctx)
	if err != nil {
		return c.fail("repo list", err)
	}
	if c.json {
		return c.printJSON(repos)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tFORGE\tBRANCH\tWEBHOOK URL")
	for _, r := range repos {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.ID, r.Name, r.Forge, r.Branch, r.HookURL)
	}
	tw.Flush()
	return 0
}

// repoSetMain is `conveyor repo set REPO`: change a repository's settings.
func repoSetMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("repo set", "repo set REPO --run-test-deliveries=true|false [flags]\n\nREPO is a repository id or owner/name.", stdout, stderr)
	var runTests bool
	c.fs.BoolVar(&runTests, "run-test-deliveries", false, "run Gitea's \"Test delivery\" pushes (before == after) like real pushes")
	c.jsonFlag()
	pos, ok := c.parse(args, 1, 1)
	if !ok {
		return 2
	}
	var in api.RepoUpdate
	c.fs.Visit(func(f *flag.Flag) {
		if f.Name == "run-test-deliveries" {
			in.RunTestDeliveries = &runTests
		}
	})
	if in.RunTestDeliveries == nil {
		fmt.Fprintln(stderr, "conveyor repo set: nothing to change (--run-test-deliveries=true|false)")
		return 2
	}
	cl := c.client()
	repo, err := cl.FindRepo(ctx, pos[0])
	if err != nil {
		return c.fail("repo "+pos[0], err)
	}
	out, err := cl.UpdateRepo(ctx, repo.ID, in)
	if err != nil {
		return c.fail("repo set "+repo.Name, err)
	}
	if c.json {
		return c.printJSON(out)
	}
	fmt.Fprintf(stdout, "repository %d: %s: run_test_deliveries=%v\n", out.ID, out.Name, out.RunTestDeliveries)
	return 0
}

func triggerMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("trigger", "trigger REPO --workflow FILE [--ref REF] [--input NAME=VALUE ...] [flags]\n\nREPO is a repository id or owner/name.", stdout, stderr)
	var in api.DispatchInput
	var inputs listFlag
	c.fs.StringVar(&in.Workflow, "workflow", "", "workflow file name or path (required)")
	c.fs.StringVar(&in.Ref, "ref", "", "branch, tag or sha (default: the repository's branch)")
	c.fs.Var(&inputs, "input", "NAME=VALUE workflow_dispatch input (repeatable)")
	pos, ok := c.parse(args, 1, 1)
	if !ok {
		return 2
	}
	if in.Workflow == "" {
		fmt.Fprintln(stderr, "conveyor trigger: --workflow is required")
		return 2
	}
	for _, kv := range inputs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			fmt.Fprintf(stderr, "conveyor trigger: --input %q is not NAME=VALUE\n", kv)
			return 2
		}
		if in.Inputs == nil {
			in.Inputs = map[string]string{}
		}
		in.Inputs[k] = v
	}
	cl := c.client()
	repo, err := cl.FindRepo(ctx, pos[0])
	if err != nil {
		return c.fail("repo "+pos[0], err)
	}
	id, err := cl.Dispatch(ctx, repo.ID, in)
	if err != nil {
		return c.fail("trigger "+repo.Name, err)
	}
	fmt.Fprintf(stdout, "event %d accepted: workflow_dispatch of %s in %s\n", id, in.Workflow, repo.Name)
	return 0
}

func runsMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("runs", "runs [--repo REPO] [--status STATUS] [--limit N] [flags]", stdout, stderr)
	var repo string
	var f client.RunFilter
	c.fs.StringVar(&repo, "repo", "", "only runs of this repository (id or owner/name)")
	c.fs.StringVar(&f.Status, "status", "", "only runs with this status (queued, running, success, failure...)")
	c.fs.IntVar(&f.Limit, "limit", 20, "most runs shown")
	c.jsonFlag()
	if _, ok := c.parse(args, 0, 0); !ok {
		return 2
	}
	cl := c.client()
	if repo != "" {
		r, err := cl.FindRepo(ctx, repo)
		if err != nil {
			return c.fail("repo "+repo, err)
		}
		f.RepoID = r.ID
	}
	list, err := cl.ListRuns(ctx, f)
	if err != nil {
		return c.fail("runs", err)
	}
	if c.json {
		return c.printJSON(list)
	}
	names := map[int64]string{}
	if repos, err := cl.ListRepos(ctx); err == nil { // names are a nicety: ids do without
		for _, r := range repos {
			names[r.ID] = r.Name
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tREPO\t#\tWORKFLOW\tEVENT\tREF\tSTATUS\tCREATED\tDURATION")
	for _, r := range list.Runs {
		name := names[r.RepoID]
		if name == "" {
			name = strconv.FormatInt(r.RepoID, 10)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, name, r.Number, r.Workflow, r.Event,
			shortRef(r.Ref), r.Status, r.Created.Local().Format("2006-01-02 15:04:05"), duration(r.Started, r.Finished))
	}
	tw.Flush()
	return 0
}

func runShowMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("run show", "run show RUN [flags]", stdout, stderr)
	c.jsonFlag()
	id, _, ok := c.parseRun(args, 1)
	if !ok {
		return 2
	}
	cl := c.client()
	d, err := cl.GetRun(ctx, id)
	if err != nil {
		return c.fail(fmt.Sprintf("run %d", id), err)
	}
	if c.json {
		return c.printJSON(d)
	}
	r := d.Run
	repo := fmt.Sprint("repository ", r.RepoID)
	if rp, err := cl.GetRepo(ctx, r.RepoID); err == nil { // the name is a nicety
		repo = rp.Name
	}
	fmt.Fprintf(stdout, "run %d: %s #%d: %s\n", r.ID, repo, r.Number, r.Status)
	fmt.Fprintf(stdout, "workflow:  %s (%s)\n", r.Name, r.Workflow)
	fmt.Fprintf(stdout, "event:     %s on %s at %s (%s)\n", r.Event, shortRef(r.Ref), shortSHA(r.SHA), r.Trigger)
	if r.RerunOf != 0 {
		fmt.Fprintf(stdout, "re-run of: run %d (attempt %d)\n", r.RerunOf, r.Attempt)
	}
	fmt.Fprintf(stdout, "created:   %s   duration: %s\n", r.Created.Local().Format(time.DateTime), duration(r.Started, r.Finished))
	if r.Error != "" {
		fmt.Fprintf(stdout, "error:     %s\n", r.Error)
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tKEY\tNAME\tSTATUS\tATTEMPT\tDURATION\tNOTE")
	for _, j := range d.Jobs {
		var notes []string
		if j.ReusedFrom != 0 {
			notes = append(notes, fmt.Sprintf("kept from job %d", j.ReusedFrom))
		}
		for _, a := range j.Interrupted {
			notes = append(notes, fmt.Sprintf("attempt %d interrupted: %s", a.Attempt, a.Reason))
		}
		if j.Error != "" {
			notes = append(notes, j.Error)
		}
		if j.WaitingReason != "" {
			notes = append(notes, j.WaitingReason)
		}
		status := j.Status
		if j.Queue != "" {
			status += ": " + j.Queue // queued: quota
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", j.ID, j.Key, j.Name, status, j.Attempt,
			duration(j.Started, j.Finished), strings.Join(notes, "; "))
	}
	tw.Flush()
	return 0
}

func logsMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("logs", "logs [-f] RUN [JOB]\n\nJOB is a job key or id; without it every job of the run, in order.", stdout, stderr)
	var follow bool
	c.fs.BoolVar(&follow, "f", false, "follow the output until the job ends")
	id, pos, ok := c.parseRun(args, 2)
	if !ok {
		return 2
	}
	cl := c.client()
	if len(pos) == 2 {
		if err := cl.Logs(ctx, id, pos[1], follow, stdout); err != nil {
			return c.fail(fmt.Sprintf("job %s of run %d", pos[1], id), err)
		}
		return 0
	}
	d, err := cl.GetRun(ctx, id)
	if err != nil {
		return c.fail(fmt.Sprintf("run %d", id), err)
	}
	for i, j := range d.Jobs {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "==> %s (%s) <==\n", j.Key, j.Name)
		if err := cl.Logs(ctx, id, strconv.FormatInt(j.ID, 10), follow, stdout); err != nil {
			return c.fail(fmt.Sprintf("job %s of run %d", j.Key, id), err)
		}
	}
	return 0
}

func cancelMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("cancel", "cancel RUN [flags]", stdout, stderr)
	id, _, ok := c.parseRun(args, 1)
	if !ok {
		return 2
	}
	r, err := c.client().Cancel(ctx, id)
	if err != nil {
		return c.fail(fmt.Sprintf("run %d", id), err)
	}
	if r.Status == "cancelled" {
		fmt.Fprintf(stdout, "run %d: cancelled\n", id)
	} else {
		fmt.Fprintf(stdout, "run %d: cancel requested (running jobs are being stopped)\n", id)
	}
	return 0
}

func rerunMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("rerun", "rerun RUN [--failed] [flags]", stdout, stderr)
	var failed bool
	c.fs.BoolVar(&failed, "failed", false, "re-run only the failed jobs and what depends on them")
	id, _, ok := c.parseRun(args, 1)
	if !ok {
		return 2
	}
	r, err := c.client().Rerun(ctx, id, failed)
	if err != nil {
		return c.fail(fmt.Sprintf("run %d", id), err)
	}
	what := "all jobs"
	if failed {
		what = "failed jobs"
	}
	fmt.Fprintf(stdout, "run %d re-runs run %d (%s, attempt %d)\n", r.ID, id, what, r.Attempt)
	return 0
}

func whoamiMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("whoami", "whoami [flags]", stdout, stderr)
	if _, ok := c.parse(args, 0, 0); !ok {
		return 2
	}
	w, err := c.client().WhoAmI(ctx)
	if err != nil {
		return c.fail("", err)
	}
	admin := ""
	if w.ServerAdmin {
		admin = ", server admin"
	}
	fmt.Fprintf(stdout, "user %s (%s in organisation %d%s), token %q of scope %s, server %s (%s)\n",
		w.User, roleOrNone(w.OrgRole), w.OrgID, admin, w.Token, w.Role, c.server, w.Version)
	return 0
}

func shortRef(ref string) string {
	for _, p := range []string{"refs/heads/", "refs/tags/"} {
		if s, ok := strings.CutPrefix(ref, p); ok {
			return s
		}
	}
	return ref
}

func shortSHA(sha string) string { return sha[:min(len(sha), 12)] }

// duration is how long something ran: so far when it has not finished,
// "-" when it has not started.
func duration(started, finished *time.Time) string {
	switch {
	case started == nil:
		return "-"
	case finished == nil:
		return time.Since(*started).Round(time.Second).String() + "+"
	}
	return finished.Sub(*started).Round(time.Second).String()
}

// clientSub is a subcommand of a client command ("token create"): its
// usage line, its flags (set on the command before parsing), the number of
// positional arguments it takes, and what it does.
type clientSub struct {
	usage    string
	min, max int
	flags    func(c *clientCmd)
	run      func(c *clientCmd, pos []string) int
}

// clientSubcommands runs the subcommand of group that args name (usage
// and exit status 2 for none or an unknown one).
func clientSubcommands(group string, args []string, usage string, stdout, stderr io.Writer, subs map[string]clientSub) int {
	fs := make(map[string]func([]string) int, len(subs))
	for name, s := range subs {
		fs[name] = func(args []string) int {
			c := newClientCmd(group+" "+name, s.usage, stdout, stderr)
			if s.flags != nil {
				s.flags(c)
			}
			pos, ok := c.parse(args, s.min, s.max)
			if !ok {
				return 2
			}
			return s.run(c, pos)
		}
	}
	return subcommand(args, usage, stderr, fs)
}

// printTable prints items as the API's JSON with --json, else as a table
// of header (tab-separated) and one row of cells per item.
func printTable[T any](c *clientCmd, items []T, header string, row func(T) []any) int {
	if c.json {
		return c.printJSON(items)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, it := range items {
		cells := row(it)
		for i, v := range cells {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, v)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	return 0
}
