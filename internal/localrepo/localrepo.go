// Package localrepo reads what `conveyor run` needs from a local checkout:
// the git facts GitHub puts in the github context, the workflow files, and
// dotenv files of secrets and variables.
package localrepo

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Info is what git says of a working tree.
type Info struct {
	SHA        string
	Ref        string // refs/heads/<branch>, or the tag, or "" when detached
	Repository string // owner/name from the origin remote, else the folder name
	Actor      string
}

// Discover reads Info with the git CLI; a folder that is not a git checkout
// gives a zero SHA and the folder name as the repository.
func Discover(ctx context.Context, dir string) Info {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	git := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	// The four questions are independent: asked at once, a run starts
	// one git process's time after it is launched, not four.
	var (
		info        Info
		remote, ref string
		wg          sync.WaitGroup
	)
	for _, f := range []func(){
		func() { info.SHA = git("rev-parse", "HEAD") },
		func() {
			if b := git("symbolic-ref", "-q", "HEAD"); b != "" {
				ref = b
			} else if t := git("describe", "--tags", "--exact-match"); t != "" {
				ref = "refs/tags/" + t
			}
		},
		func() { remote = git("remote", "get-url", "origin") },
		func() { info.Actor = git("config", "user.name") },
	} {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	wg.Wait()
	info.Ref = ref
	if info.SHA == "" {
		info.SHA = strings.Repeat("0", 40)
	}
	info.Repository = RepoFromURL(remote)
	if info.Repository == "" {
		abs, _ := filepath.Abs(dir)
		info.Repository = filepath.Base(abs)
	}
	if info.Actor == "" {
		info.Actor = "conveyor"
	}
	return info
}

// RepoFromURL turns a remote URL into owner/name ("" when it has no path).
func RepoFromURL(u string) string {
	u = strings.TrimSuffix(strings.TrimSpace(u), "/")
	u = strings.TrimSuffix(u, ".git")
	if u == "" {
		return ""
	}
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
		if j := strings.Index(u, "/"); j >= 0 {
			u = u[j+1:]
		} else {
			return ""
		}
	} else if i := strings.Index(u, ":"); i >= 0 && !strings.HasPrefix(u, "/") {
		u = u[i+1:]
	}
	parts := strings.Split(u, "/")
	if len(parts) >= 2 {
		return parts[len(parts)-2] + "/" + parts[len(parts)-1]
	}
	return ""
}

// WorkflowFiles lists the workflow files named by paths (files, or folders
// whose *.yml/*.yaml are taken); with no paths, .github/workflows and
// .conveyor of dir. Sorted, deduplicated.
func WorkflowFiles(dir string, paths []string) ([]string, error) {
	explicit := len(paths) > 0
	if !explicit {
		paths = []string{filepath.Join(dir, ".github", "workflows"), filepath.Join(dir, ".conveyor")}
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			if explicit {
				return nil, errs.Wrap("workflows", errs.NotFound, err)
			}
			continue
		}
		if !st.IsDir() {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, errs.Wrap("workflows", errs.Unavailable, err)
		}
		for _, e := range entries {
			n := e.Name()
			if e.IsDir() || !(strings.HasSuffix(n, ".yml") || strings.HasSuffix(n, ".yaml")) {
				continue
			}
			f := filepath.Join(p, n)
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, errs.E("workflows", errs.NotFound, "no workflow files found (looked in %s)", strings.Join(paths, ", "))
	}
	return out, nil
}

// ReadDotenv reads NAME=value lines (# comments, blank lines, optional
// "export ", single or double quotes around the value; double-quoted values
// may use \n escapes and span lines).
func ReadDotenv(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		l = strings.TrimPrefix(l, "export ")
		k, v, ok := strings.Cut(l, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, errs.E("dotenv", errs.Invalid, "line %d: expected NAME=value", line)
		}
		v = strings.TrimSpace(v)
		switch {
		case strings.HasPrefix(v, `"`):
			for !(len(v) >= 2 && strings.HasSuffix(v, `"`) && !strings.HasSuffix(v, `\"`)) {
				if !sc.Scan() {
					return nil, errs.E("dotenv", errs.Invalid, "line %d: unterminated double quote", line)
				}
				line++
				v += "\n" + sc.Text()
			}
			v = strings.NewReplacer(`\n`, "\n", `\"`, `"`, `\\`, `\`).Replace(v[1 : len(v)-1])
		case strings.HasPrefix(v, `'`) && len(v) >= 2 && strings.HasSuffix(v, `'`):
			v = v[1 : len(v)-1]
		default:
			if i := strings.Index(v, " #"); i >= 0 {
				v = strings.TrimSpace(v[:i])
			}
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, errs.Wrap("dotenv", errs.Invalid, err)
	}
	return out, nil
}
