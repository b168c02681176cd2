package localrepo

import (
	"context"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// ChangedFiles lists the paths (slash-separated, relative to the
// repository root) that a local run counts as changed, for paths filters.
// With r.From and r.To (a push's before and after, a pull request's base
// and head; From present in the repository), it is git diff From..To, or
// From...To with MergeBase (pull requests), as on the server. Otherwise it
// is what a local run builds: the last commit's changes (HEAD~1..HEAD; every
// file of a root commit) plus the working tree's changes (staged, unstaged
// and untracked files), since the run uses the working tree.
func ChangedFiles(ctx context.Context, dir string, r Range) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir, "-c", "core.quotepath=off"}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			msg := err.Error()
			if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
				msg = strings.TrimSpace(string(ee.Stderr))
			}
			return "", errs.E("changed files", errs.Unavailable, "git %s: %s", strings.Join(args, " "), msg)
		}
		return string(out), nil
	}
	set := map[string]bool{}
	add := func(out string) {
		for _, l := range strings.Split(out, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				set[l] = true
			}
		}
	}
	if r.From != "" && r.To != "" && !isZeroSHA(r.From) && !isZeroSHA(r.To) {
		if _, err := git("cat-file", "-e", r.From+"^{commit}"); err == nil {
			dots := ".."
			if r.MergeBase {
				dots = "..."
			}
			out, err := git("diff", "--name-only", r.From+dots+r.To)
			if err != nil {
				return nil, err
			}
			add(out)
			return sorted(set), nil
		}
	}
	if _, err := git("rev-parse", "--verify", "-q", "HEAD"); err == nil {
		out, err := git("diff-tree", "--no-commit-id", "--name-only", "-r", "--root", "HEAD")
		if err != nil {
			return nil, err
		}
		add(out)
		out, err = git("diff", "--name-only", "HEAD")
		if err != nil {
			return nil, err
		}
		add(out)
	}
	out, err := git("ls-files", "--others", "--exclude-standard")
	if err != nil {
		return nil, err
	}
	add(out)
	return sorted(set), nil
}

// Range is the commits a change spans: From..To, or From...To (from their
// merge base) with MergeBase.
type Range struct {
	From, To  string
	MergeBase bool
}

// DefaultBranch is the branch origin/HEAD names, else main or master when
// such a branch exists, else "".
func DefaultBranch(ctx context.Context, dir string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "symbolic-ref", "-q", "refs/remotes/origin/HEAD").Output()
	if err == nil {
		if b, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "refs/remotes/origin/"); ok {
			return b
		}
	}
	for _, b := range []string{"main", "master"} {
		if exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "--verify", "-q", "refs/heads/"+b).Run() == nil {
			return b
		}
	}
	return ""
}

func isZeroSHA(s string) bool { return strings.Trim(s, "0") == "" }

func sorted(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
