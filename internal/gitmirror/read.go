package gitmirror

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// cleanPath validates a repository-relative slash path; "" and "." are the root.
func cleanPath(op, p string) (string, error) {
	if strings.ContainsAny(p, "\x00\n\\") {
		return "", errs.E(op, errs.Invalid, "bad path %q", p)
	}
	c := path.Clean(p)
	if path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") {
		return "", errs.E(op, errs.Invalid, "path %q leaves the repository", p)
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}

type entry struct {
	mode, typ, oid string
	size           int64 // -1 for trees and submodules
	path           string
}

// ReadFiles returns the *.yml and *.yaml files directly under each of dirs
// (".github/workflows", ".conveyor"; "." is the root) at commit sha, keyed by
// their repository path. Absent directories give nothing. Symbolic links are
// followed within the tree; links out of it or dangling are skipped. A file
// over Options.MaxFileSize fails the call with Invalid, naming every such file.
func (c *Cache) ReadFiles(ctx context.Context, key, sha string, dirs ...string) (map[string][]byte, error) {
	const op = "gitmirror.ReadFiles"
	dir, err := c.existing(op, key)
	if err != nil {
		return nil, err
	}
	if err := checkSHA(op, sha); err != nil {
		return nil, err
	}
	specs := make([]string, 0, len(dirs))
	for _, d := range dirs {
		d, err := cleanPath(op, d)
		if err != nil {
			return nil, err
		}
		if d == "" {
			specs = append(specs, ".")
		} else {
			specs = append(specs, d+"/")
		}
	}
	if len(specs) == 0 {
		return map[string][]byte{}, nil
	}
	// ^{commit}: a tree or blob id fails like a missing commit.
	out, err := c.run(ctx, op, call{gitDir: dir, literal: true,
		args: append([]string{"ls-tree", "-z", "-l", "--end-of-options", sha + "^{commit}", "--"}, specs...)})
	if err != nil {
		if cerr := c.requireCommit(ctx, op, key, dir, sha); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	var want []entry
	var inputs []string
	var tooBig []string
	seen := map[string]bool{}
	for _, rec := range bytes.Split(out, []byte{0}) {
		e, ok := parseEntry(string(rec))
		if !ok || seen[e.path] || e.typ != "blob" || !isYAML(e.path) {
			continue
		}
		seen[e.path] = true
		switch e.mode {
		case "100644", "100755":
			if e.size > c.opts.MaxFileSize {
				tooBig = append(tooBig, fmt.Sprintf("%s (%d bytes)", e.path, e.size))
				continue
			}
			inputs = append(inputs, e.oid)
		case "120000":
			if strings.Contains(e.path, "\n") {
				continue
			}
			inputs = append(inputs, sha+":"+e.path)
		default:
			continue
		}
		want = append(want, e)
	}
	if len(tooBig) > 0 {
		return nil, errs.E(op, errs.Invalid, "files over %d bytes: %s", c.opts.MaxFileSize, strings.Join(tooBig, ", "))
	}
	files := make(map[string][]byte, len(want))
	err = c.catFile(ctx, op, dir, inputs, func(i int, typ string, size int64, r io.Reader) error {
		if typ != "blob" {
			return nil // a link out of the tree, dangling, or to a directory
		}
		if size > c.opts.MaxFileSize {
			return errs.E(op, errs.Invalid, "files over %d bytes: %s (%d bytes)", c.opts.MaxFileSize, want[i].path, size)
		}
		b, err := io.ReadAll(r)
		files[want[i].path] = b
		return err
	})
	if err != nil {
		return nil, err
	}
	return files, nil
}

func isYAML(p string) bool { return strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml") }

// parseEntry parses one record of ls-tree -l: "<mode> <type> <oid> <size>\t<path>".
func parseEntry(rec string) (entry, bool) {
	meta, p, ok := strings.Cut(rec, "\t")
	f := strings.Fields(meta)
	if !ok || len(f) != 4 {
		return entry{}, false
	}
	size, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		size = -1
	}
	return entry{mode: f[0], typ: f[1], oid: f[2], size: size, path: p}, true
}

// ReadFile returns the file at path p in commit sha, following symbolic
// links within the tree. A missing file, a directory, or a link out of the
// tree gives NotFound; a file over Options.MaxFileSize gives Invalid.
func (c *Cache) ReadFile(ctx context.Context, key, sha, p string) ([]byte, error) {
	const op = "gitmirror.ReadFile"
	dir, err := c.existing(op, key)
	if err != nil {
		return nil, err
	}
	clean, err := cleanPath(op, p)
	if err != nil {
		return nil, err
	}
	if clean == "" {
		return nil, errs.E(op, errs.Invalid, "empty path")
	}
	if err := checkSHA(op, sha); err != nil {
		return nil, err
	}
	var data []byte
	found := false
	err = c.catFile(ctx, op, dir, []string{sha + ":" + clean}, func(_ int, typ string, size int64, r io.Reader) error {
		if typ != "blob" {
			return nil
		}
		if size > c.opts.MaxFileSize {
			return errs.E(op, errs.Invalid, "%s is %d bytes, over %d", clean, size, c.opts.MaxFileSize)
		}
		found = true
		var err error
		data, err = io.ReadAll(r)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !found {
		if err := c.requireCommit(ctx, op, key, dir, sha); err != nil {
			return nil, err
		}
		return nil, errs.E(op, errs.NotFound, "no file %s at %s", clean, sha)
	}
	return data, nil
}

// catFile runs one git cat-file --batch --follow-symlinks for all inputs and
// calls fn for each, in order, with the object's type ("blob", "tree", or
// "missing", "dangling", "loop", "notdir", "symlink" when there is none),
// its size, and a reader of its content.
func (c *Cache) catFile(ctx context.Context, op, dir string, inputs []string, fn func(i int, typ string, size int64, r io.Reader) error) error {
	if len(inputs) == 0 {
		return nil
	}
	stdin := strings.Join(inputs, "\n") + "\n"
	_, err := c.run(ctx, op, call{gitDir: dir, args: []string{"cat-file", "--batch", "--follow-symlinks"},
		stdin: strings.NewReader(stdin),
		stdout: func(out io.Reader) error {
			br := bufio.NewReaderSize(out, 64<<10)
			for i := range inputs {
				header, err := br.ReadString('\n')
				if err != nil {
					return errs.E(op, errs.Other, "cat-file: reading the header of %q: %v", inputs[i], err)
				}
				typ, size := parseHeader(strings.TrimSuffix(header, "\n"))
				if size < 0 { // "<input> missing": no content follows
					if err := fn(i, typ, 0, strings.NewReader("")); err != nil {
						return err
					}
					continue
				}
				body := io.LimitReader(br, size)
				if err := fn(i, typ, size, body); err != nil {
					return err
				}
				// Skip what fn left, and the newline after the content.
				if _, err := io.Copy(io.Discard, body); err != nil {
					return err
				}
				if _, err := br.Discard(1); err != nil {
					return errs.E(op, errs.Other, "cat-file: short output for %q", inputs[i])
				}
			}
			return nil
		}})
	return err
}

// parseHeader reads "<oid> <type> <size>", "<input> missing", or
// "<kind> <size>" for dangling, loop, notdir and symlink; size is -1 when no
// content follows.
func parseHeader(h string) (string, int64) {
	f := strings.Fields(h)
	switch {
	case len(f) == 3:
		n, err := strconv.ParseInt(f[2], 10, 64)
		if err == nil {
			return f[1], n
		}
	case len(f) == 2 && (f[0] == "dangling" || f[0] == "loop" || f[0] == "notdir" || f[0] == "symlink"):
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err == nil {
			return f[0], n
		}
	}
	return "missing", -1
}

// ChangedFiles returns the paths that differ between commits before and sha,
// both sides of a rename included, for on.push.paths filters. An all-zero
// before (a new branch or tag) gives nil, nil: unknown. No change gives an
// empty, non-nil slice. A before absent from the mirror (history rewritten by
// a force push) gives NotFound.
func (c *Cache) ChangedFiles(ctx context.Context, key, before, sha string) ([]string, error) {
	const op = "gitmirror.ChangedFiles"
	if hexSHA.MatchString(before) && strings.Trim(before, "0") == "" {
		return nil, nil
	}
	dir, err := c.existing(op, key)
	if err != nil {
		return nil, err
	}
	if err := c.requireCommit(ctx, op, key, dir, before); err != nil {
		return nil, err
	}
	if err := c.requireCommit(ctx, op, key, dir, sha); err != nil {
		return nil, err
	}
	out, err := c.run(ctx, op, call{gitDir: dir, args: []string{"diff", "--name-only", "-z", "--no-renames",
		"--no-ext-diff", "--no-textconv", "--end-of-options", before, sha}})
	if err != nil {
		return nil, err
	}
	paths := []string{}
	for _, p := range strings.Split(string(out), "\x00") {
		if p != "" {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	return paths, nil
}

// Checkout writes the tree of commit sha into destDir, created if needed, as
// git checkout would (modes, symbolic links, .gitattributes line endings);
// files already there are overwritten, others left. Git LFS content is not
// fetched: LFS files stay pointer files. The mirror's own index is untouched,
// so checkouts run in parallel. A commit absent from the mirror gives
// NotFound. It is one git process: the commit is checked only on failure.
func (c *Cache) Checkout(ctx context.Context, key, sha, destDir string) error {
	const op = "gitmirror.Checkout"
	dir, err := c.existing(op, key)
	if err != nil {
		return err
	}
	if err := checkSHA(op, sha); err != nil {
		return err
	}
	if destDir == "" {
		return errs.E(op, errs.Invalid, "no destination directory")
	}
	if err := os.MkdirAll(destDir, 0o755); err != nil {
		return errs.Wrap(op, errs.Other, err)
	}
	idx, err := os.MkdirTemp("", "conveyor-gitindex-")
	if err != nil {
		return errs.Wrap(op, errs.Other, err)
	}
	defer os.RemoveAll(idx)
	// An empty temporary index: read-tree -u writes every file, and
	// --reset lets it overwrite files already in destDir.
	env := []string{"GIT_INDEX_FILE=" + idx + "/index"}
	_, err = c.run(ctx, op, call{gitDir: dir, env: env,
		args: []string{"--work-tree", destDir, "read-tree", "--reset", "-u", "--end-of-options", sha + "^{commit}"}})
	if err != nil {
		if cerr := c.requireCommit(ctx, op, key, dir, sha); cerr != nil {
			return cerr
		}
		return err
	}
	return nil
}
