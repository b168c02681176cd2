package gitmirror

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// refspecs are what a mirror holds. Glob refspecs matching nothing are no
// error, so remotes without pull or merge request refs are fine.
var refspecs = []string{
	"+refs/heads/*:refs/heads/*",
	"+refs/tags/*:refs/tags/*",
	"+refs/pull/*/head:refs/pull/*/head",
	"+refs/merge-requests/*/head:refs/merge-requests/*/head",
}

// sync fetches into dir, building the mirror first if it does not exist.
func (c *Cache) sync(ctx context.Context, r *repo, dir string, rem remote) error {
	const op = "gitmirror.Sync"
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	if _, err := os.Stat(dir); err == nil {
		removeStaleLocks(dir)
		return c.fetch(ctx, op, dir, rem, append([]string{"--prune"}, refspecs...)...)
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return errs.Wrap(op, errs.Unavailable, err)
	}
	// Leftovers of a first Sync that crashed.
	old, _ := filepath.Glob(filepath.Join(c.dir, ".tmp-"+filepath.Base(dir)+"-*"))
	for _, o := range old {
		_ = os.RemoveAll(o)
	}
	tmp, err := os.MkdirTemp(c.dir, ".tmp-"+filepath.Base(dir)+"-")
	if err != nil {
		return errs.Wrap(op, errs.Unavailable, err)
	}
	defer os.RemoveAll(tmp) // a no-op after the rename
	if _, err := c.run(ctx, op, call{args: []string{"init", "--quiet", "--bare", "--template=", tmp}}); err != nil {
		return err
	}
	if err := c.fetch(ctx, op, tmp, rem, refspecs...); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return errs.Wrap(op, errs.Unavailable, err)
	}
	return nil
}

// fetch runs git fetch from rem into dir with the given options and refspecs.
func (c *Cache) fetch(ctx context.Context, op, dir string, rem remote, more ...string) error {
	var opts, specs []string
	for _, m := range more {
		if strings.HasPrefix(m, "-") {
			opts = append(opts, m)
		} else {
			specs = append(specs, m)
		}
	}
	args := append([]string{"fetch", "--quiet", "--no-tags", "--no-write-fetch-head"}, opts...)
	args = append(append(args, "--end-of-options", rem.url), specs...)
	_, err := c.run(ctx, op, call{gitDir: dir, args: args, rem: &rem})
	return err
}

// removeStaleLocks deletes the lock files of git processes that died: we
// hold the only lock on dir, so no live git process owns one.
func removeStaleLocks(dir string) {
	for _, name := range []string{"packed-refs.lock", "HEAD.lock", "config.lock", "shallow.lock", "index.lock"} {
		_ = os.Remove(filepath.Join(dir, name))
	}
	_ = filepath.WalkDir(filepath.Join(dir, "refs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".lock") {
			_ = os.Remove(p)
		}
		return nil
	})
}

var hexSHA = regexp.MustCompile(`^(?:[0-9a-f]{40}|[0-9a-f]{64})$`)

func checkSHA(op, sha string) error {
	if !hexSHA.MatchString(sha) {
		return errs.E(op, errs.Invalid, "%q is not a full commit hash", sha)
	}
	return nil
}

// EnsureCommit makes commit sha present in the mirror of key. A commit
// already there costs one local git process and no network; otherwise the
// mirror is synced and, if the commit is still missing (a fork's pull
// request, a force-pushed-away commit), fetched by hash. A commit the remote
// does not have gives NotFound.
func (c *Cache) EnsureCommit(ctx context.Context, key, url string, cred Credentials, sha string) error {
	const op = "gitmirror.EnsureCommit"
	if err := checkSHA(op, sha); err != nil {
		return err
	}
	dir, err := c.repoDir(op, key)
	if err != nil {
		return err
	}
	if c.hasCommit(ctx, dir, sha) {
		return nil
	}
	if err := c.Sync(ctx, key, url, cred); err != nil {
		return err
	}
	if c.hasCommit(ctx, dir, sha) {
		return nil
	}
	rem, err := c.parseRemote(op, url, cred)
	if err != nil {
		return err
	}
	r := c.repo(dir)
	r.fetchMu.Lock()
	// Without a ref the commit is safe from gc for gc.pruneExpire (two weeks);
	// a later EnsureCommit fetches it again.
	err = c.fetch(ctx, op, dir, rem, sha)
	r.fetchMu.Unlock()
	if ctx.Err() != nil {
		return ctxErr(op, ctx.Err())
	}
	if c.hasCommit(ctx, dir, sha) {
		return nil
	}
	if err != nil && !errs.Is(err, errs.NotFound) && errs.KindOf(err) != errs.Unavailable {
		return err
	}
	return errs.E(op, errs.NotFound, "commit %s is not in %s", sha, redact(url))
}

// hasCommit reports whether the mirror at dir holds commit sha.
func (c *Cache) hasCommit(ctx context.Context, dir, sha string) bool {
	if _, err := os.Stat(dir); err != nil {
		return false
	}
	_, err := c.run(ctx, "gitmirror.hasCommit", call{gitDir: dir, args: []string{"cat-file", "-e", sha + "^{commit}"}})
	return err == nil
}

// requireCommit is hasCommit for readers: NotFound names what is missing.
func (c *Cache) requireCommit(ctx context.Context, op, key, dir, sha string) error {
	if err := checkSHA(op, sha); err != nil {
		return err
	}
	if !c.hasCommit(ctx, dir, sha) {
		if ctx.Err() != nil {
			return ctxErr(op, ctx.Err())
		}
		return errs.E(op, errs.NotFound, "commit %s is not in the mirror of %q", sha, key)
	}
	return nil
}
