// Package deploy holds the rules of environments, as pure functions: which
// refs may deploy to an environment, who may review a job waiting for one,
// what a protection setting may hold, and the repository's mapping of
// branches to environments. The store keeps the data; the API and the
// server's planner apply these.
package deploy

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
	"github.com/conveyor-ci/conveyor/internal/trigger"
)

// Limits of a protection setting, GitHub's.
const (
	MaxReviewers   = 6
	MaxWaitMinutes = 43200 // 30 days
	MaxPatterns    = 50
)

// CheckName refuses an environment name GitHub would: empty, over 255
// characters, control characters or surrounding spaces, or a comma.
func CheckName(name string) error {
	if name == "" || len(name) > 255 || strings.TrimSpace(name) != name || strings.ContainsFunc(name, unicode.IsControl) ||
		strings.Contains(name, ",") {
		return errs.E("environment", errs.Invalid, "environment name %q: 1 to 255 characters, no commas, control characters or surrounding spaces", name)
	}
	return nil
}

// Check validates a protection setting: known roles, at most
// MaxReviewers, a wait timer within 0..MaxWaitMinutes, and branch and tag
// patterns in GitHub's filter syntax.
func Check(p store.Protection) error {
	const op = "environment"
	if len(p.Reviewers) > MaxReviewers {
		return errs.E(op, errs.Invalid, "%d reviewers: at most %d", len(p.Reviewers), MaxReviewers)
	}
	for _, r := range p.Reviewers {
		switch {
		case (r.User == "") == (r.Role == ""):
			return errs.E(op, errs.Invalid, "a reviewer is a user or a role, exactly one of them")
		case r.Role != "" && r.Role.Rank() == 0:
			return errs.E(op, errs.Invalid, "reviewer role %q: admin, maintainer, developer or viewer", r.Role)
		}
	}
	if p.WaitMinutes < 0 || p.WaitMinutes > MaxWaitMinutes {
		return errs.E(op, errs.Invalid, "wait timer %d minutes: 0 to %d", p.WaitMinutes, MaxWaitMinutes)
	}
	for _, list := range [][]string{p.Branches, p.Tags} {
		if len(list) > MaxPatterns {
			return errs.E(op, errs.Invalid, "%d patterns: at most %d", len(list), MaxPatterns)
		}
		for _, pat := range list {
			if _, err := compile(pat); err != nil {
				return err
			}
		}
	}
	return nil
}

func compile(pat string) (*trigger.Pattern, error) {
	if strings.HasPrefix(pat, "!") {
		return nil, errs.E("environment", errs.Invalid, "pattern %q: a deployment policy lists what may deploy; ! is not allowed", pat)
	}
	p, err := trigger.CompilePattern(pat)
	if err != nil {
		return nil, errs.E("environment", errs.Invalid, "pattern %q: %v", pat, err)
	}
	return p, nil
}

// Allows reports why ref may not deploy to env under p (nil: it may).
// With neither branch nor tag patterns, every ref may; otherwise a branch
// must match a branch pattern and a tag a tag pattern, and other refs
// (pull requests' merge refs, bare commits) may not.
func Allows(env string, p store.Protection, ref string) error {
	if len(p.Branches) == 0 && len(p.Tags) == 0 {
		return nil
	}
	kind, name, list := "ref", ref, []string(nil)
	if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		kind, name, list = "Branch", b, p.Branches
	} else if t, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
		kind, name, list = "Tag", t, p.Tags
	}
	for _, pat := range list {
		if c, err := compile(pat); err == nil && c.Match(name) {
			return nil
		}
	}
	return errs.E("", errs.Forbidden, "%s %q is not allowed to deploy to %s due to environment protection rules", kind, name, env)
}

// Reviewer is who decides on a job: a user's name and role in the
// job's organisation.
type Reviewer struct {
	User string
	Role store.OrgRole
}

// MayReview reports why r may not approve or reject a job deploying as
// d (nil: r may): an organisation admin may, and so may a user listed as
// a reviewer or holding a listed role (or a higher one); with
// PreventSelfReview, not whoever triggered the run.
func MayReview(d *store.Deployment, r Reviewer) error {
	const op = "approve"
	if d.PreventSelfReview && d.Actor != "" && strings.EqualFold(d.Actor, r.User) {
		return errs.E(op, errs.Forbidden, "user %s triggered this run and environment %s does not let reviewers approve their own runs", r.User, d.Environment)
	}
	if r.Role == store.OrgAdmin {
		return nil
	}
	var names []string
	for _, x := range d.Reviewers {
		switch {
		case x.User != "" && strings.EqualFold(x.User, r.User):
			return nil
		case x.Role != "" && r.Role.Rank() >= x.Role.Rank():
			return nil
		case x.User != "":
			names = append(names, x.User)
		default:
			names = append(names, "role "+string(x.Role))
		}
	}
	return errs.E(op, errs.Forbidden, "user %s is not a reviewer of environment %s (reviewers: %s; and organisation admins)",
		r.User, d.Environment, strings.Join(names, ", "))
}

// Describe is a protection setting in one line, for the audit log.
func Describe(p store.Protection) string {
	var parts []string
	var rs []string
	for _, r := range p.Reviewers {
		if r.User != "" {
			rs = append(rs, r.User)
		} else {
			rs = append(rs, "role "+string(r.Role))
		}
	}
	if len(rs) > 0 {
		parts = append(parts, "reviewers "+strings.Join(rs, ", "))
	}
	if p.WaitMinutes > 0 {
		parts = append(parts, fmt.Sprintf("wait %d min", p.WaitMinutes))
	}
	if len(p.Branches) > 0 {
		parts = append(parts, "branches "+strings.Join(p.Branches, ", "))
	}
	if len(p.Tags) > 0 {
		parts = append(parts, "tags "+strings.Join(p.Tags, ", "))
	}
	if p.PreventSelfReview {
		parts = append(parts, "no self review")
	}
	if len(parts) == 0 {
		return "unprotected"
	}
	return strings.Join(parts, "; ")
}

// BranchPlaceholder stands for the branch's name in EnvMapping.Other.
const BranchPlaceholder = "{branch}"

// Map is the environment m gives ref: the first rule matching the branch,
// else Other with the branch's name in it (perBranch set when Other names
// one environment per branch). Refs that are not branches map to none.
func Map(m store.EnvMapping, ref string) (env string, perBranch bool) {
	branch, ok := strings.CutPrefix(ref, "refs/heads/")
	if !ok || branch == "" {
		return "", false
	}
	for _, r := range m.Rules {
		if c, err := compile(r.Branch); err == nil && c.Match(branch) {
			return r.Environment, false
		}
	}
	if m.Other == "" {
		return "", false
	}
	return strings.ReplaceAll(m.Other, BranchPlaceholder, branch), strings.Contains(m.Other, BranchPlaceholder)
}

// CheckMapping validates a branch mapping: patterns and environment names.
func CheckMapping(m store.EnvMapping) error {
	if len(m.Rules) > MaxPatterns {
		return errs.E("environment", errs.Invalid, "%d rules: at most %d", len(m.Rules), MaxPatterns)
	}
	for _, r := range m.Rules {
		if _, err := compile(r.Branch); err != nil {
			return err
		}
		if err := CheckName(r.Environment); err != nil {
			return err
		}
	}
	if m.Other != "" {
		return CheckName(strings.ReplaceAll(m.Other, BranchPlaceholder, "b"))
	}
	return nil
}
