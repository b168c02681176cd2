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
	workflows, jobs, platforms, matrix listFlag
	values                             valueFlags
	eventPath, backendName, actor, dir string
	memory, artifactDir, dockerEngine  string
	networkPolicy, runtime             string
	labelConfig                        string
	printPlan, keep, noColor           bool
	list, dryRun, version              bool
	parallel                           int
	cpus                               float64
	pids                               int64
	actions                            actionFlags
	tools                              toolFlags
	kube                               kubeFlags
}

// valueFlags are the flags that give the run secrets, variables, env and
// inputs, one by one or from dotenv files.
type valueFlags struct {
	secrets, secretFiles, vars, varFiles listFlag
	envs, envFiles, inputs, inputFiles   listFlag
}

// register defines conveyor run's flags on fs.
func (f *runFlags) register(fs *flag.FlagSet, usageOut io.Writer) {
	fs.Usage = func() {
		fmt.Fprintln(usageOut, "usage: conveyor run [EVENT] [flags]   (conveyor run show RUN: a run on a server)\n\nRuns the workflows of the current repository that EVENT (default push) triggers.\n.secrets, .vars, .env and .input in the repository folder are read when present\n(as act does); --secret-file, --var-file, --env-file and --input-file replace them.\n\nflags:")
		fs.SetOutput(usageOut)
		fs.PrintDefaults()
	}
	v := &f.values
	fs.Var(&f.workflows, "W", "workflow file or folder (repeatable; default .github/workflows and .conveyor)")
	fs.Var(&f.jobs, "j", "run only this job id and the jobs it needs (repeatable)")
	fs.Var(&v.secrets, "secret", "NAME=VALUE, or NAME to read it from the environment (repeatable)")
	fs.Var(&v.secrets, "s", "short for --secret")
	fs.Var(&v.secretFiles, "secret-file", "dotenv file of secrets (repeatable; default .secrets when present)")
	fs.Var(&v.vars, "var", "NAME=VALUE for the vars context (repeatable)")
	fs.Var(&v.varFiles, "var-file", "dotenv file of variables (repeatable; default .vars when present)")
	fs.Var(&v.envs, "env", "NAME=VALUE added to every job's env (repeatable)")
	fs.Var(&v.envFiles, "env-file", "dotenv file of env for every job (repeatable; default .env when present)")
	fs.Var(&v.inputs, "input", "NAME=VALUE input for workflow_dispatch (repeatable)")
	fs.Var(&v.inputFiles, "input-file", "dotenv file of workflow_dispatch inputs (repeatable; default .input when present)")
	fs.Var(&f.platforms, "P", "LABEL=IMAGE: image for a runs-on label; LABEL=-self-hosted runs on the host (repeatable)")
	fs.Var(&f.matrix, "matrix", "NAME:VALUE: run only the matrix legs with this value (repeatable)")
	fs.StringVar(&f.eventPath, "eventpath", "", "JSON file with the event payload")
	fs.StringVar(&f.eventPath, "e", "", "short for --eventpath")
	fs.BoolVar(&f.list, "list", false, "list the jobs (stage, id, name, workflow, file, events) and exit")
	fs.BoolVar(&f.list, "l", false, "short for --list")
	fs.BoolVar(&f.dryRun, "dryrun", false, "plan and print what would run (jobs, runners, steps); run nothing")
	fs.BoolVar(&f.dryRun, "n", false, "short for --dryrun")
	fs.BoolVar(&f.version, "version", false, "print the version and exit")
	fs.StringVar(&f.backendName, "backend", "auto", "auto, docker, host or kubernetes (auto: docker when an engine answers)")
	f.kube.register(fs)
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
	f.tools.register(fs)
	fs.StringVar(&f.runtime, "runtime", "", "OCI runtime of job containers (docker), e.g. runsc (gVisor) or kata-runtime; refused when the engine lacks it")
	fs.StringVar(&f.labelConfig, "label-config", "", labelConfigHelp)
	fs.StringVar(&f.networkPolicy, "network-policy", "open", "what jobs may reach (docker, as root): open, no-private (public addresses only) or none (only the job's services)")
	f.actions.register(fs, true)
}
