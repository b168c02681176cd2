package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/conveyor-ci/conveyor/internal/api"
	"github.com/conveyor-ci/conveyor/internal/client"
)

// secretCommands are secret and var; clientCommands merges them.
func secretCommands() map[string]command {
	return map[string]command{
		"secret": {"set (value from stdin), list or delete the secrets jobs get as secrets.*", func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			return secretMain(ctx, false, args, stdout, stderr)
		}},
		"var": {"set, list or delete the variables jobs get as vars.*", func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			return secretMain(ctx, true, args, stdout, stderr)
		}},
	}
}

// maxSecretInput bounds what is read from stdin (the server refuses more).
const maxSecretInput = api.MaxSecretSize + 1

// readValue reads a secret's value: from the terminal without echo, or all
// of stdin (one trailing newline dropped: echo's). Empty is refused.
func readValue(name string, stderr io.Writer) (string, error) {
	var v string
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(stderr, "value of %s: ", name)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		v = string(b)
	} else {
		b, err := io.ReadAll(io.LimitReader(stdin, maxSecretInput))
		if err != nil {
			return "", fmt.Errorf("reading the value from stdin: %w", err)
		}
		v = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	}
	if v == "" {
		return "", fmt.Errorf("the value of %s is empty (it is read from stdin)", name)
	}
	return v, nil
}

// scopeFlags adds --repo, --env and --org to c.
func scopeFlags(c *clientCmd, sc *client.SecretScope) {
	c.fs.StringVar(&sc.Repo, "repo", "", "repository: OWNER/NAME or id")
	c.fs.StringVar(&sc.Env, "env", "", "environment of the repository (a job's environment:)")
	c.fs.BoolVar(&sc.Org, "org", false, "the organisation's (every repository's jobs get it; needs role admin)")
}

// needScope checks that a change names exactly one scope.
func needScope(c *clientCmd, sc client.SecretScope) bool {
	switch {
	case sc.Org && (sc.Repo != "" || sc.Env != ""):
		fmt.Fprintf(c.stderr, "conveyor %s: --org goes alone (an environment belongs to a repository)\n", c.name)
	case !sc.Org && sc.Repo == "":
		fmt.Fprintf(c.stderr, "conveyor %s: say where: --repo OWNER/NAME [--env ENV], or --org\n", c.name)
	default:
		return true
	}
	return false
}

func secretMain(ctx context.Context, vars bool, args []string, stdout, stderr io.Writer) int {
	kind := "secret"
	if vars {
		kind = "var"
	}
	setUsage := kind + " set NAME --repo OWNER/NAME [--env ENV] | --org   (value from stdin)"
	if vars {
		setUsage = kind + " set NAME [VALUE] --repo OWNER/NAME [--env ENV] | --org   (no VALUE: from stdin)"
	}
	usage := "usage: conveyor " + setUsage + "\n       conveyor " + kind + " list [--repo OWNER/NAME [--env ENV]]\n       conveyor " +
		kind + " delete NAME --repo OWNER/NAME [--env ENV] | --org"
	return subcommand(args, usage, stderr, map[string]func([]string) int{
		"set":    func(args []string) int { return secretSet(ctx, vars, kind, setUsage, args, stdout, stderr) },
		"list":   func(args []string) int { return secretList(ctx, vars, kind, args, stdout, stderr) },
		"delete": func(args []string) int { return secretDelete(ctx, vars, kind, args, stdout, stderr) },
	})
}

// secretSet is `conveyor secret set` (vars: `conveyor var set`): the value
// comes from stdin, or for a variable from the second argument.
func secretSet(ctx context.Context, vars bool, kind, setUsage string, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd(kind+" set", setUsage+" [flags]", stdout, stderr)
	var sc client.SecretScope
	scopeFlags(c, &sc)
	maxArgs := 1
	if vars {
		maxArgs = 2
	}
	pos, ok := c.parse(args, 1, maxArgs)
	if !ok || !needScope(c, sc) {
		return 2
	}
	var value string
	var err error
	if len(pos) == 2 {
		value = pos[1]
	} else if value, err = readValue(pos[0], stderr); err != nil {
		return c.fail(kind+" set", err)
	}
	s, err := c.client().PutSecret(ctx, vars, pos[0], sc, value)
	if err != nil {
		return c.fail(kind+" set "+pos[0], err)
	}
	fmt.Fprintf(stdout, "%s %s set (%s)\n", kind, s.Name, where(*s))
	return 0
}

// secretList is `conveyor secret list` (vars: `conveyor var list`); only
// variables show their values.
func secretList(ctx context.Context, vars bool, kind string, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd(kind+" list", kind+" list [--repo OWNER/NAME [--env ENV]] [flags]", stdout, stderr)
	var sc client.SecretScope
	scopeFlags(c, &sc)
	c.jsonFlag()
	if _, ok := c.parse(args, 0, 0); !ok {
		return 2
	}
	items, err := c.client().ListSecrets(ctx, vars, sc)
	if err != nil {
		return c.fail(kind+" list", err)
	}
	if c.json {
		return c.printJSON(items)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	head := "NAME\tSCOPE\tUPDATED\tBY"
	if vars {
		head += "\tVALUE"
	}
	fmt.Fprintln(tw, head)
	for _, s := range items {
		line := fmt.Sprintf("%s\t%s\t%s\t%s", s.Name, where(s), s.Updated.Local().Format(time.DateTime), s.UpdatedBy)
		if vars {
			line += "\t" + s.Value
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	return 0
}

// secretDelete is `conveyor secret delete` (vars: `conveyor var delete`).
func secretDelete(ctx context.Context, vars bool, kind string, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd(kind+" delete", kind+" delete NAME --repo OWNER/NAME [--env ENV] | --org [flags]", stdout, stderr)
	var sc client.SecretScope
	scopeFlags(c, &sc)
	pos, ok := c.parse(args, 1, 1)
	if !ok || !needScope(c, sc) {
		return 2
	}
	if err := c.client().DeleteSecret(ctx, vars, pos[0], sc); err != nil {
		return c.fail(kind+" delete "+pos[0], err)
	}
	fmt.Fprintf(stdout, "%s %s deleted\n", kind, strings.ToUpper(pos[0]))
	return 0
}

// where names a secret's scope for people.
func where(s api.Secret) string {
	switch s.Level {
	case "org":
		return "organisation"
	case "env":
		return "repo " + s.Repo + ", environment " + s.Env
	}
	return "repo " + s.Repo
}
