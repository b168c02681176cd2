package gitmirror

import (
	"context"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Resolve turns ref (a branch or tag name, a full ref, or a commit sha)
// into the commit it names in the mirror, and the full ref
// (refs/heads/x, refs/tags/x; the sha itself for a commit). Branches win
// over tags of the same name, as in GitHub's API. Sync first for fresh refs.
func (c *Cache) Resolve(ctx context.Context, key, ref string) (sha, fullRef string, err error) {
	const op = "gitmirror.Resolve"
	dir, err := c.existing(op, key)
	if err != nil {
		return "", "", err
	}
	if ref == "" || strings.HasPrefix(ref, "-") || strings.ContainsAny(ref, " \t\n:^~?*[\\") {
		return "", "", errs.E(op, errs.Invalid, "%q is not a ref", ref)
	}
	var tries []string
	switch {
	case strings.HasPrefix(ref, "refs/"):
		tries = []string{ref}
	case hexSHA.MatchString(ref):
		tries = []string{ref}
	default:
		tries = []string{"refs/heads/" + ref, "refs/tags/" + ref}
	}
	for _, full := range tries {
		out, err := c.run(ctx, op, call{gitDir: dir, args: []string{"rev-parse", "--verify", "--quiet", "--end-of-options", full + "^{commit}"}})
		if err != nil {
			if ctx.Err() != nil {
				return "", "", ctxErr(op, ctx.Err())
			}
			continue
		}
		return strings.TrimSpace(string(out)), full, nil
	}
	return "", "", errs.E(op, errs.NotFound, "no branch, tag or commit %q", ref)
}
