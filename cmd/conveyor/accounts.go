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
	var in api.OrgInput
	return clientSubcommands("org", args, "usage: conveyor org create NAME [--admin USER]\n       conveyor org list", stdout, stderr, map[string]clientSub{
		"create": {usage: "org create NAME [--admin USER] [flags]", min: 1, max: 1,
			flags: func(c *clientCmd) {
				c.fs.StringVar(&in.Admin, "admin", "", "existing user who becomes its admin (default: you)")
			},
			run: func(c *clientCmd, pos []string) int {
				in.Name = pos[0]
				o, err := c.client().CreateOrg(ctx, in)
				if err != nil {
					return c.fail("org create "+in.Name, err)
				}
				fmt.Fprintf(stdout, "organisation %d: %s\n", o.ID, o.Name)
				return 0
			}},
		"list": {usage: "org list [flags]", flags: (*clientCmd).jsonFlag,
			run: func(c *clientCmd, _ []string) int {
				orgs, err := c.client().ListOrgs(ctx)
				if err != nil {
					return c.fail("org list", err)
				}
				return printTable(c, orgs, "ID\tNAME\tCREATED", func(o api.Org) []any {
					return []any{o.ID, o.Name, o.Created.Local().Format(time.DateTime)}
				})
			}},
	})
}

func userMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var add api.UserInput
	var withPassword, noCurrent bool
	return clientSubcommands("user", args, "usage: conveyor user add NAME --role ROLE [--password-stdin]\n       conveyor user list\n       conveyor user role NAME ROLE\n       conveyor user remove NAME\n       conveyor user passwd\n\nROLE is admin, maintainer, developer or viewer.", stdout, stderr, map[string]clientSub{
		"add": {usage: "user add NAME --role admin|maintainer|developer|viewer [--password-stdin] [flags]", min: 1, max: 1,
			flags: func(c *clientCmd) {
				c.fs.StringVar(&add.Role, "role", "", "role in the organisation (required)")
				c.fs.BoolVar(&withPassword, "password-stdin", false, "set the new account's password, read from stdin")
			},
			run: func(c *clientCmd, pos []string) int {
				add.Name = pos[0]
				if add.Role == "" {
					fmt.Fprintln(stderr, "conveyor user add: --role is required")
					return 2
				}
				if withPassword {
					pw, err := readSecret("password for "+add.Name+": ", stderr)
					if err != nil {
						return c.fail("user add", err)
					}
					add.Password = pw
				}
				m, err := c.client().AddMember(ctx, add)
				if err != nil {
					return c.fail("user add "+add.Name, err)
				}
				fmt.Fprintf(stdout, "user %s: %s\n", m.User, m.Role)
				return 0
			}},
		"list": {usage: "user list [flags]", flags: (*clientCmd).jsonFlag,
			run: func(c *clientCmd, _ []string) int {
				ms, err := c.client().ListMembers(ctx)
				if err != nil {
					return c.fail("user list", err)
				}
				return printTable(c, ms, "USER\tROLE\tSERVER ADMIN", func(m api.Member) []any { return []any{m.User, m.Role, m.ServerAdmin} })
			}},
		"role": {usage: "user role NAME admin|maintainer|developer|viewer [flags]", min: 2, max: 2,
			run: func(c *clientCmd, pos []string) int {
				m, err := c.client().SetRole(ctx, pos[0], pos[1])
				if err != nil {
					return c.fail("user "+pos[0], err)
				}
				fmt.Fprintf(stdout, "user %s: %s\n", m.User, m.Role)
				return 0
			}},
		"remove": {usage: "user remove NAME [flags]", min: 1, max: 1,
			run: func(c *clientCmd, pos []string) int {
				if err := c.client().RemoveMember(ctx, pos[0]); err != nil {
					return c.fail("user "+pos[0], err)
				}
				fmt.Fprintf(stdout, "user %s removed from the organisation\n", pos[0])
				return 0
			}},
		"passwd": {usage: "user passwd [flags]   (current, then new password: from the terminal, or two lines of stdin)",
			flags: func(c *clientCmd) {
				c.fs.BoolVar(&noCurrent, "no-current", false, "the account has no password yet (the first-start admin)")
			},
			run: func(c *clientCmd, _ []string) int { return setPassword(ctx, c, noCurrent) }},
	})
}

// setPassword reads the current (unless none) and new passwords and
// changes the caller's.
func setPassword(ctx context.Context, c *clientCmd, none bool) int {
	var in api.PasswordInput
	var err error
	if !none {
		if in.Current, err = readSecret("current password: ", c.stderr); err != nil {
			return c.fail("user passwd", err)
		}
	}
	if in.New, err = readSecret("new password: ", c.stderr); err != nil {
		return c.fail("user passwd", err)
	}
	if err := c.client().SetPassword(ctx, in); err != nil {
		return c.fail("user passwd", err)
	}
	fmt.Fprintln(c.stdout, "password changed")
	return 0
}

func tokenMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var in api.TokenInput
	return clientSubcommands("token", args, "usage: conveyor token create NAME [--scope read|write|admin] [--org ORG] [--expires-in-days N]\n       conveyor token list\n       conveyor token revoke ID\n       conveyor token rotate ID", stdout, stderr, map[string]clientSub{
		"create": {usage: "token create NAME [--scope read|write|admin] [--org ORG] [--expires-in-days N] [flags]", min: 1, max: 1,
			flags: func(c *clientCmd) {
				c.fs.StringVar(&in.Scope, "scope", "read", "read, write or admin (at most your token's)")
				c.fs.StringVar(&in.Org, "org", "", "organisation (default: your token's)")
				c.fs.IntVar(&in.ExpiresInDays, "expires-in-days", 90, "days until it stops working (1 to 3650)")
				c.jsonFlag()
			},
			run: func(c *clientCmd, pos []string) int {
				in.Name = pos[0]
				out, err := c.client().CreateToken(ctx, in)
				if err != nil {
					return c.fail("token create "+in.Name, err)
				}
				return c.printTokenSecret(out, "created")
			}},
		"list": {usage: "token list [flags]", flags: (*clientCmd).jsonFlag,
			run: func(c *clientCmd, _ []string) int {
				ts, err := c.client().ListTokens(ctx)
				if err != nil {
					return c.fail("token list", err)
				}
				return printTable(c, ts, "ID\tNAME\tSCOPE\tKIND\tORG\tCREATED\tEXPIRES\tLAST USED", func(t api.TokenInfo) []any {
					return []any{t.ID, t.Name, t.Scope, t.Kind, t.OrgID, t.Created.Local().Format(time.DateTime),
						optDate(t.Expires, "never"), optDate(t.LastUsed, "-")}
				})
			}},
		"revoke": {usage: "token revoke ID [flags]", min: 1, max: 1,
			run: func(c *clientCmd, pos []string) int {
				id, ok := c.tokenID(pos[0])
				if !ok {
					return 2
				}
				if err := c.client().RevokeToken(ctx, id); err != nil {
					return c.fail(fmt.Sprintf("token %d", id), err)
				}
				fmt.Fprintf(stdout, "token %d revoked\n", id)
				return 0
			}},
		"rotate": {usage: "token rotate ID [flags]", min: 1, max: 1, flags: (*clientCmd).jsonFlag,
			run: func(c *clientCmd, pos []string) int {
				id, ok := c.tokenID(pos[0])
				if !ok {
					return 2
				}
				out, err := c.client().RotateToken(ctx, id)
				if err != nil {
					return c.fail(fmt.Sprintf("token %d", id), err)
				}
				return c.printTokenSecret(out, "rotated (the old secret no longer works)")
			}},
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
	printTable(c, out.Entries, "ID\tTIME\tACTOR\tACTION\tTARGET\tDETAIL", func(e api.AuditEntry) []any {
		return []any{e.ID, e.Time.Local().Format(time.DateTime), e.Actor, e.Action, e.Target, e.Detail}
	})
	if out.NextBefore != 0 {
		fmt.Fprintf(stdout, "(older: conveyor audit --before %d)\n", out.NextBefore)
	}
	return 0
}
