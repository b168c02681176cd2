package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/conveyor-ci/conveyor/internal/store"
)

// daysFlag is a number of days, "forever", or unset (nil).
type daysFlag struct{ d **int }

func (f daysFlag) String() string {
	if f.d == nil || *f.d == nil {
		return ""
	}
	return strconv.Itoa(**f.d)
}

func (f daysFlag) Set(s string) error {
	if s == "forever" || s == "inherit" {
		*f.d = nil
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("%q is not a number of days (or forever)", s)
	}
	*f.d = &n
	return nil
}

// retentionMain is "retention show [--repo REPO]" or "retention set
// [--repo REPO] [--runs DAYS] [--logs DAYS] [--artifacts DAYS] [--caches DAYS]".
func retentionMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "show" && args[0] != "set") {
		fmt.Fprintln(stderr, "usage: conveyor retention show [--repo REPO] [flags]\n       conveyor retention set [--repo REPO] [--runs DAYS] [--logs DAYS] [--artifacts DAYS] [--caches DAYS] [flags]")
		return 2
	}
	verb := args[0]
	c := newClientCmd("retention "+verb, "retention "+verb+" [--repo REPO] [flags]\n\nWithout --repo: the organisation's setting. A kind left out keeps forever\n(organisation) or follows the organisation (repository).", stdout, stderr)
	var repoRef string
	var r store.Retention
	c.fs.StringVar(&repoRef, "repo", "", "a repository (id or owner/name) instead of the organisation")
	if verb == "set" {
		c.fs.Var(daysFlag{&r.RunsDays}, "runs", "days runs are kept after they finished, with their jobs, logs, artifacts and statuses")
		c.fs.Var(daysFlag{&r.LogsDays}, "logs", "days logs are kept after their run finished")
		c.fs.Var(daysFlag{&r.ArtifactsDays}, "artifacts", "days artifacts are kept after their run finished")
		c.fs.Var(daysFlag{&r.CachesDays}, "caches", "days caches (actions/cache) are kept after they were last used")
	} else {
		c.jsonFlag()
	}
	if _, ok := c.parse(args[1:], 0, 0); !ok {
		return 2
	}
	cl := c.client()
	var repoID int64
	what := "organisation"
	if repoRef != "" {
		repo, err := cl.FindRepo(ctx, repoRef)
		if err != nil {
			return c.fail("repo "+repoRef, err)
		}
		repoID, what = repo.ID, "repo "+repo.Name
	}
	var err error
	if verb == "set" {
		r, err = cl.SetRetention(ctx, repoID, r)
	} else {
		r, err = cl.Retention(ctx, repoID)
	}
	if err != nil {
		return c.fail(what, err)
	}
	if c.json {
		return c.printJSON(r)
	}
	none := "forever"
	if repoID != 0 {
		none = "as the organisation"
	}
	show := func(d *int) string {
		if d == nil {
			return none
		}
		return fmt.Sprintf("%d days", *d)
	}
	fmt.Fprintf(stdout, "%s retention: runs %s, logs %s, artifacts %s, caches %s\n", what, show(r.RunsDays), show(r.LogsDays),
		show(r.ArtifactsDays), show(r.CachesDays))
	return 0
}

var _ flag.Value = daysFlag{}
