package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/conveyor-ci/conveyor/internal/api"
)

// quotaCommands are quota and usage; clientCommands merges them.
func quotaCommands() map[string]command {
	return map[string]command{
		"quota": {"show (quota show) or change (quota set, server admin) an organisation's quota", quotaMain},
		"usage": {"show an organisation's metered build seconds in a month", usageMain},
	}
}

func quotaMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const use = "usage: conveyor quota show [--org ORG]\n       conveyor quota set [--org ORG] [--max-jobs N] [--max-timeout MINUTES] [--monthly-build-seconds N]   (0: no limit)"
	return subcommand(args, use, stderr, map[string]func([]string) int{
		"show": func(args []string) int {
			c := newClientCmd("quota show", "quota show [--org ORG] [flags]", stdout, stderr)
			var org string
			c.fs.StringVar(&org, "org", "", "organisation (default: the token's; another one needs a server admin)")
			c.jsonFlag()
			if _, ok := c.parse(args, 0, 0); !ok {
				return 2
			}
			q, err := c.client().Quota(ctx, org)
			if err != nil {
				return c.fail("quota show", err)
			}
			if c.json {
				return c.printJSON(q)
			}
			printQuota(stdout, q)
			return 0
		},
		"set": func(args []string) int {
			c := newClientCmd("quota set", "quota set [--org ORG] [--max-jobs N] [--max-timeout MINUTES] [--monthly-build-seconds N] [flags]", stdout, stderr)
			var org string
			var maxJobs, maxTimeout int
			var monthly int64
			c.fs.StringVar(&org, "org", "", "organisation (default: the token's)")
			c.fs.IntVar(&maxJobs, "max-jobs", 0, "most jobs of the organisation running at once (0: no limit)")
			c.fs.IntVar(&maxTimeout, "max-timeout", 0, "cap on every job's timeout-minutes (0: no cap)")
			c.fs.Int64Var(&monthly, "monthly-build-seconds", 0, "build seconds per month after which new runs are refused (0: no limit)")
			c.jsonFlag()
			if _, ok := c.parse(args, 0, 0); !ok {
				return 2
			}
			var in api.QuotaInput
			c.fs.Visit(func(f *flag.Flag) {
				switch f.Name {
				case "max-jobs":
					in.MaxConcurrentJobs = &maxJobs
				case "max-timeout":
					in.MaxTimeoutMinutes = &maxTimeout
				case "monthly-build-seconds":
					in.MonthlyBuildSeconds = &monthly
				}
			})
			if in == (api.QuotaInput{}) {
				fmt.Fprintln(stderr, "conveyor quota set: give --max-jobs, --max-timeout or --monthly-build-seconds (0 removes a limit)")
				return 2
			}
			q, err := c.client().SetQuota(ctx, org, in)
			if err != nil {
				return c.fail("quota set", err)
			}
			if c.json {
				return c.printJSON(q)
			}
			printQuota(stdout, q)
			return 0
		},
	})
}

func limitText(v int64, unit string) string {
	if v == 0 {
		return "no limit"
	}
	return fmt.Sprintf("%d %s", v, unit)
}

func printQuota(w io.Writer, q *api.Quota) {
	fmt.Fprintf(w, "organisation:          %s\n", q.Org)
	fmt.Fprintf(w, "concurrent jobs:       %s\n", limitText(int64(q.MaxConcurrentJobs), "at most"))
	fmt.Fprintf(w, "job timeout:           %s\n", limitText(int64(q.MaxTimeoutMinutes), "minutes at most"))
	fmt.Fprintf(w, "monthly build seconds: %s\n", limitText(q.MonthlyBuildSeconds, "at most"))
	if q.Updated != nil {
		fmt.Fprintf(w, "updated:               %s\n", q.Updated.Local().Format(time.DateTime))
	}
}

func usageMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("usage", "usage [--org ORG] [--month YYYY-MM] [flags]", stdout, stderr)
	var org, month string
	c.fs.StringVar(&org, "org", "", "organisation (default: the token's; another one needs a server admin)")
	c.fs.StringVar(&month, "month", "", "month, YYYY-MM in UTC (default: this month)")
	c.jsonFlag()
	if _, ok := c.parse(args, 0, 0); !ok {
		return 2
	}
	u, err := c.client().Usage(ctx, org, month)
	if err != nil {
		return c.fail("usage", err)
	}
	if c.json {
		return c.printJSON(u)
	}
	fmt.Fprintf(stdout, "%s in %s: %.1f build seconds over %d jobs", u.Org, u.Month, u.BuildSeconds, u.Jobs)
	if u.MonthlyBuildSeconds > 0 {
		fmt.Fprintf(stdout, " (%.1f%% of the monthly limit of %d)", 100*u.BuildSeconds/float64(u.MonthlyBuildSeconds), u.MonthlyBuildSeconds)
	}
	fmt.Fprintln(stdout)
	return 0
}
