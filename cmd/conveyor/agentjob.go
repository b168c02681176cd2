package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/conveyor-ci/conveyor/internal/agent"
	"github.com/conveyor-ci/conveyor/internal/backend/host"
	"github.com/conveyor-ci/conveyor/internal/backend/stepwait"
	"github.com/conveyor-ci/conveyor/internal/jobrun"
	"github.com/conveyor-ci/conveyor/internal/worker"
)

// The environment of `conveyor agent one-job`, set by the server on the
// job pod's main container (kubernetes worker layout).
const (
	envJobID      = "CONVEYOR_JOB_ID"
	envJobLease   = "CONVEYOR_JOB_LEASE"
	envJobCred    = "CONVEYOR_JOB_CREDENTIAL"
	envJobTTL     = "CONVEYOR_JOB_LEASE_TTL_MS"
	envJobBeat    = "CONVEYOR_JOB_HEARTBEAT_MS"
	envJobDataDir = "CONVEYOR_JOB_DATA"
)

// agentOneJobMain is `conveyor agent one-job`: the in-pod worker of one
// job. It reads the server's URL, the job, its lease token and its worker
// credential from the environment (the credential is removed from it
// before any step starts), runs the job's steps with the host backend of
// its own container and reports over the agent protocol. Exit status: 0
// when the job's result was recorded (whatever it is) or handed back, 1
// otherwise.
func agentOneJobMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agent one-job", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := os.Getenv("CONVEYOR_SERVER")
	fs.StringVar(&server, "server", server, "server URL (env CONVEYOR_SERVER)")
	data := os.Getenv(envJobDataDir)
	fs.StringVar(&data, "data", data, "directory for the job's folders (env "+envJobDataDir+"; default: a temporary one)")
	var actionSrc actionFlags
	actionSrc.register(fs, true)
	var tools toolFlags
	tools.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	job, cred, err := oneJobFromEnv()
	if err != nil {
		fmt.Fprintln(stderr, "conveyor agent one-job:", err)
		return 2
	}
	if data == "" {
		data = filepath.Join(os.TempDir(), "conveyor-job")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("job", job.ID)
	acts, err := actionSrc.open(filepath.Join(data, "actions"))
	if err != nil {
		fmt.Fprintln(stderr, "conveyor agent one-job: action cache:", err)
		return 2
	}
	opts := tools.options(filepath.Join(data, "toolcache"))
	steps, err := stepwait.ParseContainers(os.Getenv(stepwait.EnvContainers))
	if err != nil {
		fmt.Fprintln(stderr, "conveyor agent one-job:", err)
		return 2
	}
	// docker:// steps of the images that have a step container in the
	// pod run there, handed over through the wait files.
	hb := agent.StepContainers{Backend: agent.SidecarServices{Backend: host.New(host.Options{Runner: outOfProcessRunner(), Node: opts.node, ToolCache: opts.toolCache})},
		Containers: steps}
	tr, err := clientTransport("", 2*time.Minute)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor agent one-job:", err)
		return 2
	}
	host, _ := os.Hostname()
	a, err := agent.New(agent.Config{Server: server, Token: cred, Env: jobrun.Env{Backend: hb, Host: hb, Actions: acts},
		DataDir: filepath.Join(data, "jobs"), Version: version, Hostname: host, Log: log, HTTP: &http.Client{Transport: tr}})
	if err != nil {
		fmt.Fprintln(stderr, "conveyor agent one-job:", err)
		return 2
	}
	out, err := a.RunOne(ctx, job)
	if err != nil {
		fmt.Fprintln(stderr, "conveyor agent one-job:", err)
		return 1
	}
	fmt.Fprintf(stdout, "conveyor agent one-job: job %d %s\n", job.ID, out)
	if out == worker.Completed || out == worker.Released {
		return 0
	}
	return 1
}

// oneJobFromEnv reads the job and its worker credential, and removes the
// credential from the environment that steps inherit.
func oneJobFromEnv() (agent.OneJob, string, error) {
	num := func(name string, need bool) (int64, error) {
		s := os.Getenv(name)
		if s == "" && !need {
			return 0, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%s=%q: want a positive integer", name, s)
		}
		return n, nil
	}
	var job agent.OneJob
	var err error
	var ttl, beat int64
	if job.ID, err = num(envJobID, true); err != nil {
		return job, "", err
	}
	if job.LeaseToken, err = num(envJobLease, true); err != nil {
		return job, "", err
	}
	if ttl, err = num(envJobTTL, false); err != nil {
		return job, "", err
	}
	if beat, err = num(envJobBeat, false); err != nil {
		return job, "", err
	}
	job.LeaseTTL, job.Heartbeat = time.Duration(ttl)*time.Millisecond, time.Duration(beat)*time.Millisecond
	cred := os.Getenv(envJobCred)
	if cred == "" {
		return job, "", fmt.Errorf("no job worker credential: set %s", envJobCred)
	}
	os.Unsetenv(envJobCred)
	return job, cred, nil
}
