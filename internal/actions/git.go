package actions

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/procgroup"
)

// repoURL is where r's repository is cloned from.
func (c *Cache) repoURL(r Ref) string { return c.opts.BaseURL + "/" + r.Owner + "/" + r.Repo }

// git runs git with the token (if any) in its environment and returns its
// standard output. Errors carry git's standard error, without the token.
func (c *Cache) git(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := osexec.CommandContext(ctx, c.opts.Git, args...)
	cmd.Dir = dir
	cmd.Env = c.gitEnv()
	// Its own process group, killed whole on cancel: fetch helpers must not
	// go on writing into the cache.
	procgroup.KillOnCancel(cmd, 5*time.Second)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, errs.Wrap("git "+args[0], errs.Timeout, ctx.Err())
		}
		msg := strings.TrimSpace(stderr.String())
		if c.opts.Token != "" {
			msg = strings.ReplaceAll(msg, c.opts.Token, "***")
		}
		if r := redact(c.opts.BaseURL); r != c.opts.BaseURL {
			msg = strings.ReplaceAll(msg, c.opts.BaseURL, r) // user:password@ in the URL
		}
		if msg == "" {
			msg = err.Error()
		}
		return nil, errs.E("git "+args[0], gitKind(msg), "%s", msg)
	}
	return out.Bytes(), nil
}

// gitKind tells a missing repository or ref (the user's mistake) from an
// unreachable remote (try again later, or use the cache).
func gitKind(msg string) errs.Kind {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "authentication failed"), strings.Contains(m, "could not read username"),
		strings.Contains(m, "returned error: 403"), strings.Contains(m, "returned error: 401"): // not any 401 in a path
		return errs.Unauthorized
	case strings.Contains(m, "not found"), strings.Contains(m, "does not appear to be a git repository"),
		strings.Contains(m, "couldn't find remote ref"), strings.Contains(m, "not our ref"),
		strings.Contains(m, "no such remote ref"), strings.Contains(m, "upload-pack: not our ref"):
		return errs.NotFound
	case strings.Contains(m, "could not resolve host"), strings.Contains(m, "connection"), strings.Contains(m, "timed out"),
		strings.Contains(m, "unable to access"), strings.Contains(m, "network"):
		return errs.Unavailable
	}
	return errs.Other
}

// gitEnv is the process environment plus no prompts and, with a token, an
// http.<base>.extraheader passed as GIT_CONFIG_* variables: it never shows
// on a command line (ps) or in a log.
func (c *Cache) gitEnv() []string {
	env := os.Environ()
	n := 0
	kept := env[:0:0]
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GIT_CONFIG_COUNT="); ok {
			n, _ = strconv.Atoi(v)
			continue
		}
		kept = append(kept, kv)
	}
	kept = append(kept, "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=true", "GIT_LFS_SKIP_SMUDGE=1")
	add := func(k, v string) {
		kept = append(kept, "GIT_CONFIG_KEY_"+strconv.Itoa(n)+"="+k, "GIT_CONFIG_VALUE_"+strconv.Itoa(n)+"="+v)
		n++
	}
	add("advice.detachedHead", "false")
	if c.opts.Token != "" {
		auth := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + c.opts.Token))
		add("http."+c.opts.BaseURL+"/.extraheader", "AUTHORIZATION: basic "+auth)
	}
	return append(kept, "GIT_CONFIG_COUNT="+strconv.Itoa(n))
}

// lsRemote resolves a tag or branch to its commit.
func (c *Cache) lsRemote(ctx context.Context, r Ref) (string, error) {
	c.stats.resolves.Add(1)
	v := r.Version
	out, err := c.git(ctx, "", "ls-remote", "--", c.repoURL(r), "refs/tags/"+v, "refs/tags/"+v+"^{}", "refs/heads/"+v)
	if err != nil {
		return "", c.fetchErr(r, err)
	}
	// A tag wins over a branch of the same name; an annotated tag's
	// commit is its peeled (^{}) line.
	found := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		sha, name, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if ok && shaRe.MatchString(sha) {
			found[name] = sha
		}
	}
	for _, name := range []string{"refs/tags/" + v + "^{}", "refs/tags/" + v, "refs/heads/" + v} {
		if sha, ok := found[name]; ok {
			return sha, nil
		}
	}
	return "", errs.E("actions", errs.NotFound, "%s: %s has no tag or branch %q; check the version after @ (or use a full commit SHA)", r, redact(c.repoURL(r)), v)
}

// fetch brings r's tree at r.Version (a SHA, a tag or a branch) into the
// cache and returns its commit SHA. The tree is made in a temporary folder
// and renamed into place, so a killed fetch never leaves half a tree.
func (c *Cache) fetch(ctx context.Context, r Ref) (string, error) {
	c.stats.fetches.Add(1)
	tmp, err := os.MkdirTemp(filepath.Join(c.opts.Dir, "tmp"), "fetch-")
	if err != nil {
		return "", errs.Wrap("actions cache", errs.Unavailable, err)
	}
	defer os.RemoveAll(tmp)
	tree := filepath.Join(tmp, "tree")
	u := c.repoURL(r)
	if r.IsSHA() {
		if _, err = c.git(ctx, "", "init", "-q", tree); err == nil {
			if _, err = c.git(ctx, tree, "fetch", "-q", "--depth", "1", "--no-tags", "--", u, r.Version); err == nil {
				_, err = c.git(ctx, tree, "checkout", "-q", "FETCH_HEAD")
			}
		}
	} else {
		// One process, like git clone --depth 1: a tag or a branch.
		_, err = c.git(ctx, "", "clone", "-q", "--depth", "1", "--no-tags", "--single-branch", "--branch", r.Version, "--", u, tree)
	}
	if err != nil {
		return "", c.fetchErr(r, err)
	}
	sha, err := headCommit(filepath.Join(tree, ".git"))
	if err != nil {
		// Not a layout we know: ask git.
		out, gerr := c.git(ctx, tree, "rev-parse", "HEAD")
		if gerr != nil {
			return "", gerr
		}
		sha = strings.TrimSpace(string(out))
	}
	if !shaRe.MatchString(sha) {
		return "", errs.E("actions", errs.Other, "git rev-parse HEAD said %q", sha)
	}
	if err := os.RemoveAll(filepath.Join(tree, ".git")); err != nil {
		return "", errs.Wrap("actions cache", errs.Unavailable, err)
	}
	dst := c.treeDir(r, sha)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", errs.Wrap("actions cache", errs.Unavailable, err)
	}
	if err := os.Rename(tree, dst); err != nil && !c.hasTree(r, sha) {
		return "", errs.Wrap("actions cache", errs.Unavailable, err)
	}
	return sha, nil
}

var shortSHARe = regexp.MustCompile(`^[0-9a-f]{7,39}$`)

// fetchErr says which action could not be fetched, from where, and what
// to do about it.
func (c *Cache) fetchErr(r Ref, err error) error {
	hint := "check the name and the version after @"
	if shortSHARe.MatchString(r.Version) {
		hint = "a commit must be given by its full 40-character SHA, as GitHub requires; or check the name and the version after @"
	}
	switch errs.KindOf(err) {
	case errs.Unauthorized:
		hint = "a private repository needs --actions-token (CONVEYOR_ACTIONS_TOKEN)"
	case errs.Unavailable, errs.Timeout:
		hint = "check the network or --actions-url; --offline runs with cached actions only"
	}
	return errs.Wrap("actions", errs.KindOf(err), fmt.Errorf("cannot fetch %s from %s (%s): %w", r, redact(c.repoURL(r)), hint, err))
}

// headCommit reads the commit of a fresh clone's HEAD from its files (a
// git process less per fetch): a detached HEAD holds the SHA, a branch's
// HEAD names a loose ref or one in packed-refs.
func headCommit(gitDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(gitDir, "HEAD"))
	if err != nil {
		return "", err
	}
	head := strings.TrimSpace(string(b))
	name, isRef := strings.CutPrefix(head, "ref: ")
	if !isRef {
		return head, nil
	}
	if !strings.HasPrefix(name, "refs/") || strings.Contains(name, "..") {
		return "", errs.E("actions", errs.Other, "unexpected HEAD %q", head)
	}
	if b, err := os.ReadFile(filepath.Join(gitDir, filepath.FromSlash(name))); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	packed, err := os.ReadFile(filepath.Join(gitDir, "packed-refs"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(packed), "\n") {
		if sha, ref, ok := strings.Cut(line, " "); ok && ref == name {
			return sha, nil
		}
	}
	return "", errs.E("actions", errs.NotFound, "%s not in packed-refs", name)
}
