package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
)

// runFlags are conveyor run's flags. Every flag is registered in register,
// and only there, so that additions stay in one place.
type runFlags struct {
	workflows, jobs, secrets, secretFiles, vars, varFiles, envs, inputs, platforms listFlag
	eventPath, backendName, actor, dir, memory, artifactDir, dockerEngine          string
	printPlan, keep, noColor                                                       bool
	parallel                                                                       int
	cpus                                                                           float64
	pids                                                                           int64
}

// register defines conveyor run's flags on fs.
func (f *runFlags) register(fs *flag.FlagSet, stderr io.Writer) {
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: conveyor run [EVENT] [flags]\n\nRuns the workflows of the current repository that EVENT (default push) triggers.\n\nflags:")
		fs.PrintDefaults()
	}
	fs.Var(&f.workflows, "W", "workflow file or folder (repeatable; default .github/workflows and .conveyor)")
	fs.Var(&f.jobs, "j", "run only this job id and the jobs it needs (repeatable)")
	fs.Var(&f.secrets, "secret", "NAME=VALUE, or NAME to read it from the environment (repeatable)")
	fs.Var(&f.secretFiles, "secret-file", "dotenv file of secrets (repeatable)")
	fs.Var(&f.vars, "var", "NAME=VALUE for the vars context (repeatable)")
	fs.Var(&f.varFiles, "var-file", "dotenv file of variables (repeatable)")
	fs.Var(&f.envs, "env", "NAME=VALUE added to every job's env (repeatable)")
	fs.Var(&f.inputs, "input", "NAME=VALUE input for workflow_dispatch (repeatable)")
	fs.Var(&f.platforms, "P", "LABEL=IMAGE: image for a runs-on label; LABEL=-self-hosted runs on the host (repeatable)")
	fs.StringVar(&f.eventPath, "eventpath", "", "JSON file with the event payload")
	fs.StringVar(&f.backendName, "backend", "auto", "auto, docker or host (auto: docker when an engine answers)")
	fs.StringVar(&f.dockerEngine, "docker-engine", os.Getenv("CONVEYOR_DOCKER_ENGINE"), engineFlagHelp)
	fs.StringVar(&f.actor, "actor", "", "github.actor (default: git config user.name)")
	fs.StringVar(&f.dir, "C", ".", "the repository folder")
	fs.BoolVar(&f.printPlan, "plan", false, "print the plan as JSON and exit")
	fs.BoolVar(&f.keep, "keep", false, "keep job folders after the run (for debugging)")
	fs.StringVar(&f.artifactDir, "artifact-dir", "", "keep the run's artifacts (upload-artifact) in this folder (default: a temporary one)")
	fs.BoolVar(&f.noColor, "no-color", false, "no colors even on a terminal")
	fs.IntVar(&f.parallel, "jobs", runtime.NumCPU(), "most jobs running at once")
	fs.Float64Var(&f.cpus, "cpus", 0, "CPUs per job sandbox (docker), e.g. 1.5")
	fs.StringVar(&f.memory, "memory", "", "memory per job sandbox (docker), e.g. 512m, 2g")
	fs.Int64Var(&f.pids, "pids", 0, "most processes per job sandbox (docker)")
}
