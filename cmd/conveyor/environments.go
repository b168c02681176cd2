package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/conveyor-ci/conveyor/internal/api"
)

// environmentCommands are env and approve; clientCommands merges them.
func environmentCommands() map[string]command {
	return map[string]command{
		"env":     {"list, set (protection: reviewers, wait timer, branches) or delete a repository's environments", envMain},
		"approve": {"approve (--reject: reject) a job waiting for its environment's reviewers", approveMain},
	}
}

func envMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	usage := "usage: conveyor env list --repo OWNER/NAME\n" +
		"       conveyor env set NAME --repo OWNER/NAME [--reviewer USER|role:ROLE]... [--wait MINUTES]\n" +
		"                            [--branch GLOB]... [--tag GLOB]... [--prevent-self-review]\n" +
		"       conveyor env delete NAME --repo OWNER/NAME"
	return subcommand(args, usage, stderr, map[string]func([]string) int{
		"list":   func(args []string) int { return envList(ctx, args, stdout, stderr) },
		"set":    func(args []string) int { return envSet(ctx, args, stdout, stderr) },
		"delete": func(args []string) int { return envDelete(ctx, args, stdout, stderr) },
	})
}

// envList is `conveyor env list`: it lists a repository's environments and
// their protection.
func envList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("env list", "env list --repo OWNER/NAME [flags]", stdout, stderr)
	var repo string
	c.fs.StringVar(&repo, "repo", "", "repository: OWNER/NAME or id (required)")
	c.jsonFlag()
	if _, ok := c.parse(args, 0, 0); !ok || !needRepo(c, repo) {
		return 2
	}
	cl := c.client()
	r, err := cl.FindRepo(ctx, repo)
	if err != nil {
		return c.fail("repo "+repo, err)
	}
	envs, err := cl.ListEnvironments(ctx, r.ID)
	if err != nil {
		return c.fail("repo "+r.Name, err)
	}
	if c.json {
		return c.printJSON(envs)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tREVIEWERS\tWAIT\tREFS\tSELF REVIEW")
	for _, e := range envs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Name, dash(reviewerList(e.Reviewers)), waitText(e.WaitMinutes),
			dash(refList(e.Branches, e.Tags)), map[bool]string{true: "refused", false: "allowed"}[e.PreventSelfReview])
	}
	tw.Flush()
	return 0
}

// envSet is `conveyor env set`: it replaces an environment's whole protection (made when missing).
func envSet(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("env set", "env set NAME --repo OWNER/NAME [flags]\n\nReplaces the environment's whole protection; no flags: unprotected.", stdout, stderr)
	var repo string
	var reviewers, branches, tags listFlag
	var in api.EnvironmentInput
	c.fs.StringVar(&repo, "repo", "", "repository: OWNER/NAME or id (required)")
	c.fs.Var(&reviewers, "reviewer", "a user who may approve, or role:ROLE (admin, maintainer, developer, viewer) (repeatable)")
	c.fs.IntVar(&in.WaitMinutes, "wait", 0, "minutes a job waits once ready (and approved)")
	c.fs.Var(&branches, "branch", "a branch pattern that may deploy, e.g. main or release/* (repeatable; none with no --tag: any ref)")
	c.fs.Var(&tags, "tag", "a tag pattern that may deploy, e.g. v* (repeatable)")
	c.fs.BoolVar(&in.PreventSelfReview, "prevent-self-review", false, "whoever triggered a run may not approve it")
	pos, ok := c.parse(args, 1, 1)
	if !ok || !needRepo(c, repo) {
		return 2
	}
	for _, r := range reviewers {
		if role, isRole := strings.CutPrefix(r, "role:"); isRole {
			in.Reviewers = append(in.Reviewers, api.Reviewer{Role: role})
		} else {
			in.Reviewers = append(in.Reviewers, api.Reviewer{User: r})
		}
	}
	in.Branches, in.Tags = branches, tags
	cl := c.client()
	r, err := cl.FindRepo(ctx, repo)
	if err != nil {
		return c.fail("repo "+repo, err)
	}
	e, err := cl.PutEnvironment(ctx, r.ID, pos[0], in)
	if err != nil {
		return c.fail("environment "+pos[0], err)
	}
	state := "unprotected"
	if e.Protected || len(e.Branches)+len(e.Tags) > 0 {
		state = "protected"
	}
	fmt.Fprintf(stdout, "environment %s of %s set (%s)\n", e.Name, r.Name, state)
	return 0
}

// envDelete is `conveyor env delete`: it deletes an environment with its secrets and variables.
func envDelete(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("env delete", "env delete NAME --repo OWNER/NAME [flags]", stdout, stderr)
	var repo string
	c.fs.StringVar(&repo, "repo", "", "repository: OWNER/NAME or id (required)")
	pos, ok := c.parse(args, 1, 1)
	if !ok || !needRepo(c, repo) {
		return 2
	}
	cl := c.client()
	r, err := cl.FindRepo(ctx, repo)
	if err != nil {
		return c.fail("repo "+repo, err)
	}
	if err := cl.DeleteEnvironment(ctx, r.ID, pos[0]); err != nil {
		return c.fail("environment "+pos[0], err)
	}
	fmt.Fprintf(stdout, "environment %s of %s deleted (with its secrets and variables)\n", pos[0], r.Name)
	return 0
}

func needRepo(c *clientCmd, repo string) bool {
	if repo == "" {
		fmt.Fprintf(c.stderr, "conveyor %s: --repo OWNER/NAME is required\n", c.name)
		return false
	}
	return true
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func reviewerList(rs []api.Reviewer) string {
	var out []string
	for _, r := range rs {
		if r.User != "" {
			out = append(out, r.User)
		} else {
			out = append(out, "role:"+r.Role)
		}
	}
	return strings.Join(out, ",")
}

func refList(branches, tags []string) string {
	out := append([]string{}, branches...)
	for _, t := range tags {
		out = append(out, "tag:"+t)
	}
	return strings.Join(out, ",")
}

func waitText(min int) string {
	if min == 0 {
		return "-"
	}
	return fmt.Sprintf("%dm", min)
}

// approveMain is "approve RUN [JOB] [--reject] [--comment C]".
func approveMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("approve", "approve RUN [JOB] [--reject] [--comment C] [flags]\n\n"+
		"JOB (its key, e.g. deploy, or id) waits for its environment's reviewers; without JOB,\n"+
		"the whole run (a fork's pull request) waits for a maintainer.", stdout, stderr)
	var reject bool
	var comment string
	c.fs.BoolVar(&reject, "reject", false, "reject: the job fails and the jobs that need it are skipped")
	c.fs.StringVar(&comment, "comment", "", "a comment kept with the decision (and in the audit log)")
	c.jsonFlag()
	pos, ok := c.parse(args, 1, 2)
	if !ok {
		return 2
	}
	id, ok := c.runID(pos[0])
	if !ok {
		return 2
	}
	if len(pos) == 1 {
		r, err := c.client().DecideRun(ctx, id, reject, comment)
		if err != nil {
			return c.fail(fmt.Sprintf("run %d", id), err)
		}
		if c.json {
			return c.printJSON(r)
		}
		if reject {
			fmt.Fprintf(stdout, "run %d: rejected (%s)\n", id, r.Status)
		} else {
			fmt.Fprintf(stdout, "run %d: approved; it is %s\n", id, r.Status)
		}
		return 0
	}
	j, err := c.client().Decide(ctx, id, pos[1], reject, comment)
	if err != nil {
		return c.fail(fmt.Sprintf("job %s of run %d", pos[1], id), err)
	}
	if c.json {
		return c.printJSON(j)
	}
	env := ""
	if j.Environment != nil {
		env = " (environment " + j.Environment.Name + ")"
	}
	switch {
	case reject:
		fmt.Fprintf(stdout, "run %d: job %s rejected%s: %s\n", id, j.Key, env, j.Error)
	case j.Status == "awaiting_approval":
		fmt.Fprintf(stdout, "run %d: job %s approved%s; %s\n", id, j.Key, env, j.WaitingReason)
	default:
		fmt.Fprintf(stdout, "run %d: job %s approved%s; it is %s\n", id, j.Key, env, j.Status)
	}
	return 0
}
