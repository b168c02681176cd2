package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/conveyor-ci/conveyor/internal/api"
)

// accountCommands are login, logout, org, user, token and audit;
// clientCommands merges them.
func accountCommands() map[string]command {
	return map[string]command{
		"login":  {"sign in to a server (password or --token) and keep the server and a token in your config", loginMain},
		"logout": {"forget the token conveyor login kept", logoutMain},
		"org":    {"create (org create NAME) or list (org list) organisations (server admin)", orgMain},
		"user":   {"add, list, remove users of the organisation, change a role (user role NAME ROLE), your password (user passwd)", userMain},
		"token":  {"create, list, revoke or rotate your personal API tokens", tokenMain},
		"audit":  {"show the organisation's audit log (admin)", auditMain},
	}
}

// stdin is where passwords are read from (tests replace it).
var stdin io.Reader = os.Stdin

// readSecret reads a password: from the terminal without echo, or the
// first line of stdin when it is not a terminal.
func readSecret(prompt string, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		return string(b), err
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("reading the password from stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func subcommand(args []string, usage string, stderr io.Writer, subs map[string]func([]string) int) int {
	if len(args) > 0 {
		if f, ok := subs[args[0]]; ok {
			return f(args[1:])
		}
	}
	fmt.Fprintln(stderr, usage)
	return 2
}

func loginMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("login", "login [--server URL] --user NAME [--org ORG]   (password from the terminal or stdin)\n       conveyor login [--server URL] --token TOKEN", stdout, stderr)
	c.anonymous = true
	var user, org string
	var days int
	c.fs.StringVar(&user, "user", os.Getenv("USER"), "user name (env USER)")
	c.fs.StringVar(&org, "org", "", "organisation (needed when you belong to several)")
	c.fs.IntVar(&days, "expires-in-days", 90, "life of the API token a password login makes")
	tokenGiven := os.Getenv("CONVEYOR_TOKEN") != ""
	if _, ok := c.parse(args, 0, 0); !ok {
		return 2
	}
	c.fs.Visit(func(f *flag.Flag) { tokenGiven = tokenGiven || f.Name == "token" })
	cfg := &cliConfig{Server: c.server, CAFile: c.caFile}
	if !tokenGiven {
		pw, err := readSecret(fmt.Sprintf("password for %s at %s: ", user, c.server), stderr)
		if err != nil {
			return c.fail("login", err)
		}
		sess, err := c.client().Login(ctx, api.LoginInput{User: user, Password: pw, Org: org})
		if err != nil {
			return c.fail("login", err)
		}
		// The session token (12 hours) makes a personal API token for this
		// machine, which is what is kept; the session is revoked.
		host, _ := os.Hostname()
		c.token = sess.Token
		made, err := c.client().CreateToken(ctx, api.TokenInput{Name: "cli " + host, Scope: "admin", ExpiresInDays: days})
		if err != nil {
			return c.fail("login", err)
		}
		c.token = made.Secret
		if err := c.client().RevokeToken(ctx, sess.TokenID); err != nil {
			fmt.Fprintf(stderr, "conveyor login: revoking the session token %d: %v\n", sess.TokenID, err)
		}
	}
	w, err := c.client().WhoAmI(ctx)
	if err != nil {
		return c.fail("login", err)
	}
	cfg.Token, cfg.User = c.token, w.User
	p, err := saveConfig(cfg)
	if err != nil {
		return c.fail("login: saving "+p, err)
	}
	fmt.Fprintf(stdout, "logged in to %s as %s (%s in organisation %d, token %q of scope %s); saved in %s\n",
		c.server, w.User, roleOrNone(w.OrgRole), w.OrgID, w.Token, w.Role, p)
	return 0
}

func roleOrNone(r string) string {
	if r == "" {
		return "no role"
	}
	return r
}

func logoutMain(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: conveyor logout")
		return 2
	}
	cfg, p, err := loadConfig()
	if err != nil {
		fmt.Fprintf(stderr, "conveyor logout: %v\n", err)
		return 1
	}
	cfg.Token = ""
	if _, err := saveConfig(cfg); err != nil {
		fmt.Fprintf(stderr, "conveyor logout: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "token removed from %s (it still works until revoked: conveyor token revoke)\n", p)
	return 0
}

func orgMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return subcommand(args, "usage: conveyor org create NAME [--admin USER]\n       conveyor org list", stderr, map[string]func([]string) int{
		"create": func(args []string) int {
			c := newClientCmd("org create", "org create NAME [--admin USER] [flags]", stdout, stderr)
			var in api.OrgInput
			c.fs.StringVar(&in.Admin, "admin", "", "existing user who becomes its admin (default: you)")
			pos, ok := c.parse(args, 1, 1)
			if !ok {
				return 2
			}
			in.Name = pos[0]
			o, err := c.client().CreateOrg(ctx, in)
			if err != nil {
				return c.fail("org create "+in.Name, err)
			}
			fmt.Fprintf(stdout, "organisation %d: %s\n", o.ID, o.Name)
			return 0
		},
		"list": func(args []string) int {
			c := newClientCmd("org list", "org list [flags]", stdout, stderr)
			c.jsonFlag()
			if _, ok := c.parse(args, 0, 0); !ok {
				return 2
			}
			orgs, err := c.client().ListOrgs(ctx)
			if err != nil {
				return c.fail("org list", err)
			}
			if c.json {
				return c.printJSON(orgs)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tCREATED")
			for _, o := range orgs {
				fmt.Fprintf(tw, "%d\t%s\t%s\n", o.ID, o.Name, o.Created.Local().Format(time.DateTime))
			}
			tw.Flush()
			return 0
		},
	})
}

func userMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return subcommand(args, "usage: conveyor user add NAME --role ROLE [--password-stdin]\n       conveyor user list\n       conveyor user role NAME ROLE\n       conveyor user remove NAME\n       conveyor user passwd\n\nROLE is admin, maintainer, developer or viewer.", stderr, map[string]func([]string) int{
		"add": func(args []string) int {
			c := newClientCmd("user add", "user add NAME --role admin|maintainer|developer|viewer [--password-stdin] [flags]", stdout, stderr)
			var in api.UserInput
			var withPassword bool
			c.fs.StringVar(&in.Role, "role", "", "role in the organisation (required)")
			c.fs.BoolVar(&withPassword, "password-stdin", false, "set the new account's password, read from stdin")
			pos, ok := c.parse(args, 1, 1)
			if !ok {
				return 2
			}
			in.Name = pos[0]
			if in.Role == "" {
				fmt.Fprintln(stderr, "conveyor user add: --role is required")
				return 2
			}
			if withPassword {
				pw, err := readSecret("password for "+in.Name+": ", stderr)
				if err != nil {
					return c.fail("user add", err)
				}
				in.Password = pw
			}
			m, err := c.client().AddMember(ctx, in)
			if err != nil {
				return c.fail("user add "+in.Name, err)
			}
			fmt.Fprintf(stdout, "user %s: %s\n", m.User, m.Role)
			return 0
		},
		"list": func(args []string) int {
			c := newClientCmd("user list", "user list [flags]", stdout, stderr)
			c.jsonFlag()
			if _, ok := c.parse(args, 0, 0); !ok {
				return 2
			}
			ms, err := c.client().ListMembers(ctx)
			if err != nil {
				return c.fail("user list", err)
			}
			if c.json {
				return c.printJSON(ms)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USER\tROLE\tSERVER ADMIN")
			for _, m := range ms {
				fmt.Fprintf(tw, "%s\t%s\t%v\n", m.User, m.Role, m.ServerAdmin)
			}
			tw.Flush()
			return 0
		},
		"role": func(args []string) int {
			c := newClientCmd("user role", "user role NAME admin|maintainer|developer|viewer [flags]", stdout, stderr)
			pos, ok := c.parse(args, 2, 2)
			if !ok {
				return 2
			}
			m, err := c.client().SetRole(ctx, pos[0], pos[1])
			if err != nil {
				return c.fail("user "+pos[0], err)
			}
			fmt.Fprintf(stdout, "user %s: %s\n", m.User, m.Role)
			return 0
		},
		"remove": func(args []string) int {
			c := newClientCmd("user remove", "user remove NAME [flags]", stdout, stderr)
			pos, ok := c.parse(args, 1, 1)
			if !ok {
				return 2
			}
			if err := c.client().RemoveMember(ctx, pos[0]); err != nil {
				return c.fail("user "+pos[0], err)
			}
			fmt.Fprintf(stdout, "user %s removed from the organisation\n", pos[0])
			return 0
		},
		"passwd": func(args []string) int {
			c := newClientCmd("user passwd", "user passwd [flags]   (current, then new password: from the terminal, or two lines of stdin)", stdout, stderr)
			var none bool
			c.fs.BoolVar(&none, "no-current", false, "the account has no password yet (the first-start admin)")
			if _, ok := c.parse(args, 0, 0); !ok {
				return 2
			}
			var in api.PasswordInput
			var err error
			if !none {
				if in.Current, err = readSecret("current password: ", stderr); err != nil {
					return c.fail("user passwd", err)
				}
			}
			if in.New, err = readSecret("new password: ", stderr); err != nil {
				return c.fail("user passwd", err)
			}
			if err := c.client().SetPassword(ctx, in); err != nil {
				return c.fail("user passwd", err)
			}
			fmt.Fprintln(stdout, "password changed")
			return 0
		},
	})
}

func tokenMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return subcommand(args, "usage: conveyor token create NAME [--scope read|write|admin] [--org ORG] [--expires-in-days N]\n       conveyor token list\n       conveyor token revoke ID\n       conveyor token rotate ID", stderr, map[string]func([]string) int{
		"create": func(args []string) int {
			c := newClientCmd("token create", "token create NAME [--scope read|write|admin] [--org ORG] [--expires-in-days N] [flags]", stdout, stderr)
			var in api.TokenInput
			c.fs.StringVar(&in.Scope, "scope", "read", "read, write or admin (at most your token's)")
			c.fs.StringVar(&in.Org, "org", "", "organisation (default: your token's)")
			c.fs.IntVar(&in.ExpiresInDays, "expires-in-days", 90, "days until it stops working (1 to 3650)")
			c.jsonFlag()
			pos, ok := c.parse(args, 1, 1)
			if !ok {
				return 2
			}
			in.Name = pos[0]
			out, err := c.client().CreateToken(ctx, in)
			if err != nil {
				return c.fail("token create "+in.Name, err)
			}
			return c.printTokenSecret(out, "created")
		},
		"list": func(args []string) int {
			c := newClientCmd("token list", "token list [flags]", stdout, stderr)
			c.jsonFlag()
			if _, ok := c.parse(args, 0, 0); !ok {
				return 2
			}
			ts, err := c.client().ListTokens(ctx)
			if err != nil {
				return c.fail("token list", err)
			}
			if c.json {
				return c.printJSON(ts)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSCOPE\tKIND\tORG\tCREATED\tEXPIRES\tLAST USED")
			for _, t := range ts {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", t.ID, t.Name, t.Scope, t.Kind, t.OrgID,
					t.Created.Local().Format(time.DateTime), optDate(t.Expires, "never"), optDate(t.LastUsed, "-"))
			}
			tw.Flush()
			return 0
		},
		"revoke": func(args []string) int {
			c := newClientCmd("token revoke", "token revoke ID [flags]", stdout, stderr)
			pos, ok := c.parse(args, 1, 1)
			if !ok {
				return 2
			}
			id, ok := c.tokenID(pos[0])
			if !ok {
				return 2
			}
			if err := c.client().RevokeToken(ctx, id); err != nil {
				return c.fail(fmt.Sprintf("token %d", id), err)
			}
			fmt.Fprintf(stdout, "token %d revoked\n", id)
			return 0
		},
		"rotate": func(args []string) int {
			c := newClientCmd("token rotate", "token rotate ID [flags]", stdout, stderr)
			c.jsonFlag()
			pos, ok := c.parse(args, 1, 1)
			if !ok {
				return 2
			}
			id, ok := c.tokenID(pos[0])
			if !ok {
				return 2
			}
			out, err := c.client().RotateToken(ctx, id)
			if err != nil {
				return c.fail(fmt.Sprintf("token %d", id), err)
			}
			return c.printTokenSecret(out, "rotated (the old secret no longer works)")
		},
	})
}

func (c *clientCmd) tokenID(s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		fmt.Fprintf(c.stderr, "conveyor %s: %q is not a token id (conveyor token list)\n", c.name, s)
		return 0, false
	}
	return id, true
}

func (c *clientCmd) printTokenSecret(out *api.TokenCreated, what string) int {
	if c.json {
		return c.printJSON(out)
	}
	t := out.Token
	fmt.Fprintf(c.stdout, "token %d %q %s: scope %s, organisation %d, expires %s\n%s\n\nThe token is shown only this once.\n",
		t.ID, t.Name, what, t.Scope, t.OrgID, optDate(t.Expires, "never"), out.Secret)
	return 0
}

func optDate(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.Local().Format(time.DateTime)
}

func auditMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("audit", "audit [--limit N] [--before ID] [flags]", stdout, stderr)
	var limit int
	var before int64
	c.fs.IntVar(&limit, "limit", 50, "most entries shown (1 to 1000)")
	c.fs.Int64Var(&before, "before", 0, "only entries older than this id (paging)")
	c.jsonFlag()
	if _, ok := c.parse(args, 0, 0); !ok {
		return 2
	}
	out, err := c.client().Audit(ctx, limit, before)
	if err != nil {
		return c.fail("audit", err)
	}
	if c.json {
		return c.printJSON(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tACTOR\tACTION\tTARGET\tDETAIL")
	for _, e := range out.Entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Time.Local().Format(time.DateTime), e.Actor, e.Action, e.Target, e.Detail)
	}
	tw.Flush()
	if out.NextBefore != 0 {
		fmt.Fprintf(stdout, "(older: conveyor audit --before %d)\n", out.NextBefore)
	}
	return 0
}
