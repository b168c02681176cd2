package gitmirror

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
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

// ReadFiles returns the *.yml and *.yaml files directly under each of dirs
// (".github/workflows", ".conveyor"; "." is the root) at commit sha, keyed by
// their repository path. Absent directories give nothing. Symbolic links are
// followed within the tree; links out of it or dangling are skipped. A file
// over Options.MaxFileSize fails the call with Invalid, naming every such file.
//
// It asks one long-lived git cat-file of the mirror (see catBatch), and
// keeps what it read of a folder by the folder's tree id: the next commit
// that did not change the workflows costs one round trip.
func (c *Cache) ReadFiles(ctx context.Context, key, sha string, dirs ...string) (map[string][]byte, error) {
	const op = "gitmirror.ReadFiles"
	dir, err := c.existing(op, key)
	if err != nil {
		return nil, err
	}
	if err := checkSHA(op, sha); err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(dirs))
	inputs := []string{sha + "^{commit}"}
	for _, d := range dirs {
		d, err := cleanPath(op, d)
		if err != nil {
			return nil, err
		}
		paths = append(paths, d)
		inputs = append(inputs, sha+":"+d) // "sha:" is the root tree
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	b := c.batchFor(dir)
	heads, err := b.query(ctx, op, inputs, func(int, string, int64) bool { return false })
	if err != nil {
		return nil, err
	}
	if heads[0].typ != "commit" {
		if err := c.requireCommit(ctx, op, key, dir, sha); err != nil {
			return nil, err
		}
		return nil, errs.E(op, errs.NotFound, "%s is not a commit", sha)
	}
	files := map[string][]byte{}
	var tooBig []string
	for i, p := range paths {
		h := heads[i+1]
		if h.typ != "tree" {
			continue // absent, or not a folder
		}
		tf, err := c.readTree(ctx, op, b, sha, p, h.oid)
		if err != nil {
			return nil, err
		}
		for name, data := range tf.files {
			full := path.Join(p, name)
			if _, seen := files[full]; !seen {
				files[full] = data
			}
		}
		for _, name := range tf.tooBig {
			tooBig = append(tooBig, path.Join(p, name))
		}
	}
	if len(tooBig) > 0 {
		sort.Strings(tooBig)
		return nil, errs.E(op, errs.Invalid, "files over %d bytes: %s", c.opts.MaxFileSize, strings.Join(tooBig, ", "))
	}
	return files, nil
}

// treeFiles is what ReadFiles took from one folder: the YAML files by name,
// the names of those over the size limit, and the YAML names that are
// symbolic links (followed at each read: where they lead depends on the
// commit, not on the folder).
type treeFiles struct {
	files  map[string][]byte
	tooBig []string
	links  []string
}

// maxTrees bounds the folders ReadFiles remembers.
const maxTrees = 1024

// readTree reads the YAML files of the folder p (tree oid) at commit sha.
func (c *Cache) readTree(ctx context.Context, op string, b *catBatch, sha, p, oid string) (treeFiles, error) {
	c.mu.Lock()
	tf, ok := c.trees[oid]
	c.mu.Unlock()
	if !ok {
		var err error
		if tf, err = c.readFolder(ctx, op, b, oid); err != nil {
			return treeFiles{}, err
		}
		c.mu.Lock()
		if c.trees == nil || len(c.trees) >= maxTrees {
			c.trees = map[string]treeFiles{}
		}
		c.trees[oid] = tf
		c.mu.Unlock()
	}
	if len(tf.links) == 0 {
		return tf, nil
	}
	inputs := make([]string, len(tf.links))
	for i, n := range tf.links {
		inputs[i] = sha + ":" + path.Join(p, n)
	}
	out := treeFiles{files: make(map[string][]byte, len(tf.files)+len(tf.links)), tooBig: append([]string(nil), tf.tooBig...)}
	for n, d := range tf.files {
		out.files[n] = d
	}
	if err := c.readBlobs(ctx, op, b, inputs, tf.links, &out); err != nil {
		return treeFiles{}, err
	}
	return out, nil
}

// readFolder reads a folder's regular YAML files and notes its links.
func (c *Cache) readFolder(ctx context.Context, op string, b *catBatch, oid string) (treeFiles, error) {
	rs, err := b.query(ctx, op, []string{oid}, func(int, string, int64) bool { return true })
	if err != nil {
		return treeFiles{}, err
	}
	entries, err := parseTree(rs[0].data, len(oid)/2)
	if err != nil {
		return treeFiles{}, errs.E(op, errs.Other, "tree %s: %v", oid, err)
	}
	tf := treeFiles{files: map[string][]byte{}}
	var names, inputs []string
	for _, e := range entries {
		if !isYAML(e.name) || strings.Contains(e.name, "\n") {
			continue
		}
		switch e.mode {
		case "100644", "100755":
			names = append(names, e.name)
			inputs = append(inputs, e.oid)
		case "120000":
			tf.links = append(tf.links, e.name)
		}
	}
	if err := c.readBlobs(ctx, op, b, inputs, names, &tf); err != nil {
		return treeFiles{}, err
	}
	return tf, nil
}

// readBlobs reads the objects inputs name into tf under names; what is not
// a file (a link out of the tree, dangling, a folder) is skipped.
func (c *Cache) readBlobs(ctx context.Context, op string, b *catBatch, inputs, names []string, tf *treeFiles) error {
	max := c.opts.MaxFileSize
	rs, err := b.query(ctx, op, inputs, func(_ int, typ string, size int64) bool { return typ == "blob" && size <= max })
	if err != nil {
		return err
	}
	for i, r := range rs {
		switch {
		case r.typ != "blob":
		case r.size > max:
			tf.tooBig = append(tf.tooBig, fmt.Sprintf("%s (%d bytes)", names[i], r.size))
		default:
			tf.files[names[i]] = r.data
		}
	}
	return nil
}

// treeEntry is one entry of a raw tree object.
type treeEntry struct{ mode, name, oid string }

// parseTree reads a raw tree: "<mode> <name>\0<oid bytes>" repeated.
func parseTree(data []byte, oidLen int) ([]treeEntry, error) {
	var out []treeEntry
	for len(data) > 0 {
		sp := bytes.IndexByte(data, ' ')
		nul := bytes.IndexByte(data, 0)
		if sp < 0 || nul < sp || nul+1+oidLen > len(data) {
			return nil, fmt.Errorf("malformed entry")
		}
		mode := string(data[:sp])
		if len(mode) == 5 {
			mode = "0" + mode // trees are stored as 40000
		}
		out = append(out, treeEntry{mode: mode, name: string(data[sp+1 : nul]), oid: hex.EncodeToString(data[nul+1 : nul+1+oidLen])})
		data = data[nul+1+oidLen:]
	}
	return out, nil
}

func isYAML(p string) bool { return strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml") }

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
