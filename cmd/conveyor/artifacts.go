package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/conveyor-ci/conveyor/internal/artifact"
)

// artifactsMain is "artifacts RUN" (list) or "artifacts download RUN
// [NAME] [-o DIR]" (extract one, or all into DIR/NAME).
func artifactsMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "download" {
		return artifactsDownloadMain(ctx, args[1:], stdout, stderr)
	}
	c := newClientCmd("artifacts", "artifacts RUN [flags]  |  artifacts download RUN [NAME] [-o DIR]", stdout, stderr)
	c.jsonFlag()
	id, _, ok := c.parseRun(args, 1)
	if !ok {
		return 2
	}
	list, err := c.client().RunArtifacts(ctx, id)
	if err != nil {
		return c.fail(fmt.Sprintf("run %d", id), err)
	}
	if c.json {
		return c.printJSON(map[string]any{"artifacts": list})
	}
	if len(list) == 0 {
		fmt.Fprintf(stdout, "run %d has no artifacts\n", id)
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSIZE\tJOB\tCREATED")
	for _, a := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Name, artifact.FormatSize(a.Size), a.Job, a.Created.Local().Format(time.DateTime))
	}
	tw.Flush()
	return 0
}

func artifactsDownloadMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newClientCmd("artifacts download", "artifacts download RUN [NAME] [-o DIR] [flags]", stdout, stderr)
	var out string
	c.fs.StringVar(&out, "o", ".", "directory to extract into (all artifacts: one folder per artifact in it)")
	id, pos, ok := c.parseRun(args, 2)
	if !ok {
		return 2
	}
	cl := c.client()
	type one struct{ name, dir string }
	var todo []one
	if len(pos) == 2 {
		todo = append(todo, one{pos[1], out})
	} else {
		list, err := cl.RunArtifacts(ctx, id)
		if err != nil {
			return c.fail(fmt.Sprintf("run %d", id), err)
		}
		if len(list) == 0 {
			fmt.Fprintf(stdout, "run %d has no artifacts\n", id)
			return 0
		}
		for _, a := range list {
			todo = append(todo, one{a.Name, filepath.Join(out, a.Name)})
		}
	}
	for _, t := range todo {
		rc, err := cl.DownloadArtifact(ctx, id, t.name)
		if err != nil {
			return c.fail(fmt.Sprintf("artifact %q of run %d", t.name, id), err)
		}
		n, err := artifact.Extract(rc, t.dir, artifact.DefaultLimits)
		rc.Close()
		if err != nil {
			return c.fail(fmt.Sprintf("artifact %q", t.name), err)
		}
		fmt.Fprintf(stdout, "%s: %d files in %s\n", t.name, n, t.dir)
	}
	return 0
}

// localArtifacts is the artifact store of `conveyor run`: dir when given
// (kept), else a temporary folder removed at exit unless keep.
func localArtifacts(dir string, keep bool) (store *artifact.Dir, cleanup func(), err error) {
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, nil, err
		}
		return artifact.NewDir(abs, 0), func() {}, nil
	}
	d, err := os.MkdirTemp("", "conveyor-artifacts-")
	if err != nil {
		return nil, nil, err
	}
	if keep {
		return artifact.NewDir(d, 0), func() {}, nil
	}
	return artifact.NewDir(d, 0), func() { os.RemoveAll(d) }, nil
}

// printLocalArtifacts says where the run's artifacts are, when it made any.
func printLocalArtifacts(ctx context.Context, w io.Writer, store *artifact.Dir, kept bool) {
	list, err := store.List(ctx)
	if err != nil || len(list) == 0 {
		return
	}
	fmt.Fprintf(w, "\nArtifacts (%d) in %s:\n", len(list), store.Path())
	for _, a := range list {
		fmt.Fprintf(w, "  %s.tar.gz  %s  (job %s)\n", a.Name, artifact.FormatSize(a.Size), a.Job)
	}
	if !kept {
		fmt.Fprintln(w, "  (removed at exit: keep them with --artifact-dir DIR)")
	}
}
