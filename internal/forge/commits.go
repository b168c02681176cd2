package forge

import "github.com/conveyor-ci/conveyor/internal/event"

// maxListedCommits is GitHub's cap on a push payload's commits: at the cap
// the list may be cut short.
const maxListedCommits = 2048

func commits(raw []any) []event.Commit {
	var out []event.Commit
	for _, v := range raw {
		c, _ := v.(map[string]any)
		if c == nil {
			continue
		}
		o := obj(c)
		out = append(out, event.Commit{
			ID:       o.s("id"),
			Message:  o.s("message"),
			Added:    o.strings("added"),
			Removed:  o.strings("removed"),
			Modified: o.strings("modified"),
		})
	}
	return out
}

// changedFiles is the union of the commits' files, or nil when the payload
// cannot tell them all: no commits, fewer listed than total (GitLab and
// Gitea cut the list), or a commit without file lists (GitLab system hooks).
// nil makes trigger matching ask git instead of trusting a partial list.
func changedFiles(raw []any, cs []event.Commit, total int) []string {
	if len(cs) == 0 || len(cs) != len(raw) || total > len(cs) || len(cs) >= maxListedCommits {
		return nil
	}
	for _, v := range raw {
		c, _ := v.(map[string]any)
		o := obj(c)
		if !o.has("added") && !o.has("removed") && !o.has("modified") {
			return nil
		}
	}
	seen := map[string]bool{}
	files := []string{}
	for _, c := range cs {
		for _, list := range [][]string{c.Added, c.Removed, c.Modified} {
			for _, f := range list {
				if !seen[f] {
					seen[f] = true
					files = append(files, f)
				}
			}
		}
	}
	return files
}
