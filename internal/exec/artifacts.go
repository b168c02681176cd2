package exec

import (
	"context"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/artifact"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/expr"
)

// artifactAction tells whether uses names actions/upload-artifact or
// actions/download-artifact (any ref), which Conveyor runs natively.
func artifactAction(uses string) string {
	name, _, _ := strings.Cut(uses, "@")
	switch strings.ToLower(name) {
	case "actions/upload-artifact":
		return "upload"
	case "actions/download-artifact":
		return "download"
	}
	return ""
}

func (sr *stepRun) artifactStep(ctx context.Context, c *expr.Context, kind string) error {
	if sr.jr.e.opts.Artifacts == nil {
		return errs.E(kind+"-artifact", errs.Unavailable, "%s: this executor has no artifact store", sr.step.Uses)
	}
	with, err := sr.evalWith(c)
	if err != nil {
		return err
	}
	in := func(k, def string) string {
		if v, ok := lookupFold(with, k); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	if kind == "upload" {
		return sr.uploadArtifact(ctx, in)
	}
	return sr.downloadArtifact(ctx, in)
}

// hostPath maps a path as the step's processes see it (absolute, or
// relative to the workspace) to the host; false when it is outside the
// job directory, which is all the host can see of a sandbox.
func (jr *jobRun) hostPath(p string) (string, bool) {
	ws := filepath.Join(jr.box.dir, "workspace")
	if !path.IsAbs(p) {
		return filepath.Join(ws, filepath.FromSlash(p)), true
	}
	sb := strings.TrimSuffix(jr.box.dirs.Sandbox, "/")
	p = path.Clean(p)
	if p == sb {
		return jr.box.dirs.Host, true
	}
	rest, ok := strings.CutPrefix(p, sb+"/")
	if !ok {
		return "", false
	}
	return filepath.Join(jr.box.dirs.Host, filepath.FromSlash(rest)), true
}

func boolInput(name, v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errs.E("input", errs.Invalid, "%s: %q is not true or false", name, v)
	}
	return b, nil
}

// uploadArtifact is actions/upload-artifact: the files path: selects,
// packed and stored under name in the run's artifact store.
func (sr *stepRun) uploadArtifact(ctx context.Context, in func(k, def string) string) error {
	const op = "upload-artifact"
	jr := sr.jr
	name := in("name", "artifact")
	if err := artifact.ValidName(name); err != nil {
		return err
	}
	patterns := in("path", "")
	if patterns == "" {
		return errs.E(op, errs.Invalid, "input required and not supplied: path")
	}
	ifNone := strings.ToLower(in("if-no-files-found", "warn"))
	if ifNone != "warn" && ifNone != "error" && ifNone != "ignore" {
		return errs.E(op, errs.Invalid, "if-no-files-found: %q is not warn, error or ignore", ifNone)
	}
	retention, err := strconv.Atoi(in("retention-days", "0"))
	if err != nil || retention < 0 {
		return errs.E(op, errs.Invalid, "retention-days: %q is not a number of days", in("retention-days", ""))
	}
	overwrite, err := boolInput("overwrite", in("overwrite", "false"))
	if err != nil {
		return err
	}
	hidden, err := boolInput("include-hidden-files", in("include-hidden-files", "false"))
	if err != nil {
		return err
	}
	files, _, warnings, err := artifact.Find(artifact.Search{Patterns: patterns, Base: filepath.Join(jr.box.dir, "workspace"),
		Allowed: jr.box.dir, Abs: jr.hostPath, IncludeHidden: hidden})
	if err != nil {
		return err
	}
	for _, w := range warnings {
		sr.annotate("warning", w)
	}
	if len(files) == 0 {
		msg := fmt.Sprintf("No files were found with the provided path: %s. No artifacts will be uploaded.", strings.Join(strings.Fields(patterns), ", "))
		switch ifNone {
		case "error":
			return errs.E(op, errs.NotFound, "%s", msg)
		case "warn":
			sr.annotate("warning", msg)
		default:
			sr.say(msg)
		}
		return nil
	}
	sr.say(fmt.Sprintf("With the provided path, there will be %d file(s) uploaded", len(files)))
	pr, pw := io.Pipe()
	packCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { pw.CloseWithError(artifact.Pack(packCtx, pw, files)) }()
	info, err := jr.e.opts.Artifacts.Put(ctx, artifact.Upload{Name: name, Job: jr.name, Overwrite: overwrite, RetentionDays: retention}, pr)
	pr.CloseWithError(io.ErrClosedPipe) // stops Pack when Put gave up early
	if err != nil {
		return err
	}
	sr.say(fmt.Sprintf("Artifact %s has been successfully uploaded! Final size is %d bytes. Artifact ID is %d", name, info.Size, info.ID))
	sr.outputs["artifact-id"] = strconv.FormatInt(info.ID, 10)
	if u, ok := jr.e.opts.Artifacts.(artifact.Linker); ok {
		if link := u.URL(name); link != "" {
			sr.outputs["artifact-url"] = link
			sr.say("Artifact download URL: " + link)
		}
	}
	return nil
}

// downloadArtifact is actions/download-artifact: one artifact by name
// into path, or every artifact (matching pattern) into path/NAME (or all
// into path with merge-multiple).
func (sr *stepRun) downloadArtifact(ctx context.Context, in func(k, def string) string) error {
	const op = "download-artifact"
	jr := sr.jr
	if id := in("run-id", ""); id != "" && id != jr.e.opts.Event.RunID {
		return errs.E(op, errs.Invalid, "run-id %s: only artifacts of this run can be downloaded", id)
	}
	if in("artifact-ids", "") != "" {
		return errs.E(op, errs.Invalid, "artifact-ids is not supported: use name or pattern")
	}
	merge, err := boolInput("merge-multiple", in("merge-multiple", "false"))
	if err != nil {
		return err
	}
	dest, ok := jr.hostPath(in("path", "."))
	if !ok {
		return errs.E(op, errs.Invalid, "path %q is outside the job's directory: artifacts are downloaded into the workspace or runner.temp", in("path", ""))
	}
	if !within(jr.box.dir, dest) {
		return errs.E(op, errs.Invalid, "path %q leaves the job's directory", in("path", ""))
	}
	store := jr.e.opts.Artifacts
	name := in("name", "")
	type one struct{ name, dir string }
	var todo []one
	if name != "" {
		todo = append(todo, one{name, dest})
	} else {
		list, err := store.List(ctx)
		if err != nil {
			return err
		}
		pattern := in("pattern", "")
		for _, a := range list {
			if pattern != "" {
				if ok, err := path.Match(pattern, a.Name); err != nil {
					return errs.E(op, errs.Invalid, "pattern %q: %v", pattern, err)
				} else if !ok {
					continue
				}
			}
			dir := dest
			if !merge {
				dir = filepath.Join(dest, a.Name)
			}
			todo = append(todo, one{a.Name, dir})
		}
		if len(todo) == 0 {
			sr.say("No artifacts found to download")
		}
	}
	for _, t := range todo {
		rc, err := store.Open(ctx, t.name)
		if errs.Is(err, errs.NotFound) {
			return errs.E(op, errs.NotFound, "Unable to download artifact(s): Artifact not found for name: %s", t.name)
		}
		if err != nil {
			return err
		}
		n, err := artifact.Extract(rc, t.dir, artifact.DefaultLimits)
		rc.Close()
		if err != nil {
			return errs.Wrap(op, errs.KindOf(err), fmt.Errorf("artifact %q: %w", t.name, err))
		}
		sr.say(fmt.Sprintf("Artifact %s (%d files) downloaded to %s", t.name, n, jr.toSandbox(t.dir)))
	}
	sr.outputs["download-path"] = jr.toSandbox(dest)
	return nil
}

// within reports whether p is dir or under it.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func (sr *stepRun) say(text string) {
	jr := sr.jr
	jr.e.report(Event2{Type: Output, Job: jr.name, JobKey: jr.key, Step: sr.name, StepID: sr.id, Text: jr.e.opts.Masker.Apply(text)})
}

func (sr *stepRun) annotate(level, text string) {
	jr := sr.jr
	jr.e.report(Event2{Type: Annotation, Level: level, Job: jr.name, JobKey: jr.key, Step: sr.name, StepID: sr.id, Text: jr.e.opts.Masker.Apply(text)})
}
