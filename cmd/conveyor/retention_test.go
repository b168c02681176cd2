package main

import (
	"strings"
	"testing"
)

// TestRetentionCLI: conveyor retention set and show, for the organisation
// and a repository; bad days are refused before any request.
func TestRetentionCLI(t *testing.T) {
	e := newCLIEnv(t)
	e.want(t, 0, "repo", "add", "https://github.com/acme/app.git", "--forge", "github")
	if out := e.want(t, 0, "retention", "show"); out != "organisation retention: runs forever, logs forever, artifacts forever, caches forever\n" {
		t.Errorf("show, never set: %q", out)
	}
	if out := e.want(t, 0, "retention", "set", "--runs", "90", "--logs", "30", "--caches", "7"); out != "organisation retention: runs 90 days, logs 30 days, artifacts forever, caches 7 days\n" {
		t.Errorf("set: %q", out)
	}
	if out := e.want(t, 0, "retention", "set", "--repo", "acme/app", "--artifacts", "7"); out != "repo acme/app retention: runs as the organisation, logs as the organisation, artifacts 7 days, caches as the organisation\n" {
		t.Errorf("set --repo: %q", out)
	}
	if out := e.want(t, 0, "retention", "show", "--json"); !strings.Contains(out, `"runs_days": 90`) || !strings.Contains(out, `"artifacts_days": null`) ||
		!strings.Contains(out, `"caches_days": 7`) {
		t.Errorf("show --json: %q", out)
	}
	if out := e.want(t, 2, "retention", "set", "--runs", "-3"); !strings.Contains(out, `"-3" is not a number of days`) {
		t.Errorf("negative days: %q", out)
	}
	if out := e.want(t, 1, "retention", "show", "--repo", "acme/nope"); !strings.Contains(out, "acme/nope") {
		t.Errorf("unknown repo: %q", out)
	}
	if out := e.want(t, 2, "retention"); !strings.Contains(out, "usage: conveyor retention show") {
		t.Errorf("no verb: %q", out)
	}
}
