package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/conveyor-ci/conveyor/internal/exec"
	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// listJobs is --list: act's table of jobs (stage, job id, job name,
// workflow name, workflow file, events). With an explicit event, only the
// workflows whose on: names it.
func listJobs(w io.Writer, wfs []*workflow.Workflow, event string, explicit bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Stage\tJob ID\tJob name\tWorkflow name\tWorkflow file\tEvents")
	for _, wf := range wfs {
		if explicit && wf.Trigger(event) == nil {
			continue
		}
		var events []string
		for _, t := range wf.On {
			if !containsStr(events, t.Event) {
				events = append(events, t.Event)
			}
		}
		name := wf.Name
		if name == "" {
			name = wf.File
		}
		stages := jobStages(wf)
		for _, j := range wf.Jobs {
			jn := j.Name
			if jn == "" {
				jn = j.ID
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", stages[j.ID], j.ID, jn, name, wf.File, strings.Join(events, ","))
		}
	}
	tw.Flush()
}

// jobStages numbers each job by the longest chain of needs before it.
func jobStages(wf *workflow.Workflow) map[string]int {
	stage := map[string]int{}
	var depth func(id string, seen map[string]bool) int
	depth = func(id string, seen map[string]bool) int {
		if s, ok := stage[id]; ok {
			return s
		}
		j := wf.Job(id)
		if j == nil || seen[id] { // lint rejects unknown needs and cycles
			return 0
		}
		seen[id] = true
		d := 0
		for _, n := range j.Needs {
			d = max(d, depth(n, seen)+1)
		}
		stage[id] = d
		return d
	}
	for _, j := range wf.Jobs {
		depth(j.ID, map[string]bool{})
	}
	return stage
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// printDryRun is --dryrun: each job that would run, where (the runs-on
// mapping), its matrix legs and its steps. Nothing is started.
func printDryRun(w io.Writer, p *plan.Plan, opts exec.Options) {
	if len(p.Workflows) == 0 {
		fmt.Fprintf(w, "dry run: no workflow is triggered by %q\n", p.Event)
		return
	}
	fmt.Fprintf(w, "dry run: %s would run %d workflow(s); nothing is started\n", p.Event, len(p.Workflows))
	for _, pw := range p.Workflows {
		fmt.Fprintf(w, "\n%s (%s)\n", pw.File, pw.Name)
		for _, j := range pw.Jobs {
			fmt.Fprintf(w, "  job %s", j.ID)
			if len(j.Needs) > 0 {
				fmt.Fprintf(w, " (needs %s)", strings.Join(j.Needs, ", "))
			}
			fmt.Fprintf(w, ": %s\n", runnerOf(j, opts.Platforms))
			switch {
			case j.Uses != "":
				fmt.Fprintf(w, "    calls %s\n", j.Uses)
			case j.MatrixDynamic:
				fmt.Fprintln(w, "    matrix computed at run time")
			case len(j.Matrix) > 0:
				legs := exec.FilterMatrix(j.Matrix, opts.MatrixFilter)
				fmt.Fprintf(w, "    %d of %d matrix legs:", len(legs), len(j.Matrix))
				for _, c := range legs {
					fmt.Fprintf(w, " %s", strings.TrimSpace(c.Suffix()))
				}
				fmt.Fprintln(w)
			}
			for i, s := range j.Steps {
				fmt.Fprintf(w, "    %d. %s [%s]\n", i+1, s.Name, s.Kind)
			}
		}
	}
}

// runnerOf says where a job would run, from runs-on and the -P mapping.
func runnerOf(j *plan.Job, platforms map[string]string) string {
	if j.Uses != "" {
		return "reusable workflow"
	}
	if j.Image != "" {
		return "container " + j.Image
	}
	for _, l := range j.RunsOn {
		if img, ok := platforms[strings.ToLower(l)]; ok {
			if img == "-self-hosted" {
				return "runs-on " + l + " -> this host"
			}
			return "runs-on " + l + " -> image " + img + " (on the host backend: this host)"
		}
	}
	return fmt.Sprintf("runs-on %v -> no runner: skipped (map it with -P LABEL=IMAGE)", j.RunsOn)
}
