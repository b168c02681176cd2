package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/actions"
	"github.com/conveyor-ci/conveyor/internal/lint"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// lintMain is `conveyor lint [FILE|DIR ...]`: it prints file:line:col: message
// for every problem and exits 1 if there is any, 2 on usage or read errors.
func lintMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("lint", flag.ContinueOnError)
	fl.SetOutput(stderr)
	strict := fl.Bool("strict", false, "check on: with the language service's strict schema (as the VS Code extension does), not GitHub's runtime one")
	fl.Usage = func() {
		fmt.Fprintln(stderr, "usage: conveyor lint [--strict] [FILE|DIR ...]\n\nChecks workflow files (default: .github/workflows and .conveyor).\n\nflags:")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	targets := fl.Args()
	explicit := len(targets) > 0
	if !explicit {
		targets = []string{filepath.Join(".github", "workflows"), ".conveyor"}
	}
	files, code := lintFiles(targets, explicit, stderr)
	if len(files) == 0 && code == 0 {
		fmt.Fprintln(stderr, "conveyor lint: no workflow files found")
		return 0
	}
	problems := false
	for _, f := range files {
		if ctx.Err() != nil {
			return 2
		}
		found, err := lintFile(f, *strict, stdout)
		if err != nil {
			fmt.Fprintf(stderr, "conveyor lint: %v\n", err)
			code = 2
			continue
		}
		if found {
			problems = true
		}
	}
	if code != 0 {
		return code
	}
	if problems {
		return 1
	}
	return 0
}

// lintFiles is the files the targets name: files as they are, folders'
// .yml and .yaml files in name order. A default target (not explicit) that
// does not exist is passed over; another error is said and makes code 2.
func lintFiles(targets []string, explicit bool, stderr io.Writer) (files []string, code int) {
	for _, t := range targets {
		fi, err := os.Stat(t)
		if err != nil {
			if !explicit && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			fmt.Fprintf(stderr, "conveyor lint: %v\n", err)
			code = 2
			continue
		}
		if !fi.IsDir() {
			files = append(files, t)
			continue
		}
		found, err := yamlFilesIn(t)
		if err != nil {
			fmt.Fprintf(stderr, "conveyor lint: %v\n", err)
			code = 2
			continue
		}
		files = append(files, found...)
	}
	return files, code
}

// yamlFilesIn is dir's .yml and .yaml files (not below), sorted.
func yamlFilesIn(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var found []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if !e.IsDir() && (ext == ".yml" || ext == ".yaml") {
			found = append(found, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(found)
	return found, nil
}

// lintFile prints a workflow's or an action's problems (and a workflow's
// warnings, which do not count) to stdout and says whether it had any.
func lintFile(f string, strict bool, stdout io.Writer) (problems bool, err error) {
	data, err := readWorkflowFile(repoRootOf(f), f)
	if err != nil {
		return false, err
	}
	var probs workflow.Problems
	if isActionFile(f) {
		_, probs = lint.ActionBytes(data, f)
	} else {
		var w *workflow.Workflow
		w, probs = lint.BytesWith(data, f, lint.Options{Resolve: localWorkflows(repoRootOf(f)), Limits: workflow.Limits{Strict: strict}})
		if w != nil && w.Node != nil {
			// Warnings do not change the exit code.
			for _, p := range lint.Warnings(w) {
				fmt.Fprintln(stdout, p.Error())
			}
		}
	}
	for _, p := range probs {
		fmt.Fprintln(stdout, p.Error())
	}
	return len(probs) > 0, nil
}

// isActionFile tells action metadata (action.yml) from a workflow: a file
// in .github/workflows is a workflow whatever its name, as on GitHub.
func isActionFile(file string) bool {
	base := strings.ToLower(filepath.Base(file))
	if base != "action.yml" && base != "action.yaml" {
		return false
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		abs = file
	}
	return filepath.Base(filepath.Dir(abs)) != "workflows" || filepath.Base(filepath.Dir(filepath.Dir(abs))) != ".github"
}

// repoRootOf is the repository a workflow file belongs to: the folder
// holding its .github or .conveyor folder, else the current one.
func repoRootOf(file string) string {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "."
	}
	dir := filepath.Dir(abs)
	for _, marker := range []string{string(filepath.Separator) + filepath.Join(".github", "workflows"), string(filepath.Separator) + ".conveyor"} {
		if i := strings.LastIndex(dir, marker); i >= 0 && (i+len(marker) == len(dir) || dir[i+len(marker)] == filepath.Separator) {
			return dir[:i]
		}
	}
	return "."
}

// localWorkflows resolves local reusable workflows (uses: ./path) in the
// repository at root, as the executor does: confined to it and
// size-limited; others are not checked.
func localWorkflows(root string) func(uses string) ([]byte, bool) {
	return func(uses string) ([]byte, bool) {
		if !actions.IsLocal(uses) {
			return nil, false
		}
		data, err := actions.ReadLocal(root, uses)
		return data, err == nil
	}
}

// readWorkflowFile reads a workflow file named on the command line or
// found in the repository: a regular file of at most actions.MaxFileSize
// bytes. A file under repoDir is read confined to it (a symbolic link out
// of the repository is refused).
func readWorkflowFile(repoDir, file string) ([]byte, error) {
	root, rel := filepath.Dir(file), filepath.Base(file)
	absRepo, err1 := filepath.Abs(repoDir)
	if abs, err := filepath.Abs(file); err == nil && err1 == nil {
		if r, err := filepath.Rel(absRepo, abs); err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			root, rel = absRepo, r
		}
	}
	b, err := actions.ReadFile(root, filepath.ToSlash(rel), actions.MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return b, nil
}
