// Command conveyor is an event-driven CI/CD engine that runs GitHub-Actions
// workflows locally (conveyor run) and, later, as a server.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// command is one subcommand: it parses its own flags and returns the exit code.
type command struct {
	summary string
	main    func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() map[string]command {
	m := map[string]command{
		"run":        {"run workflows of the current repository locally", runMain},
		"server":     {"run the server: webhooks, API, scheduler (SQLite by default)", serverMain},
		"lint":       {"check workflow files and print file:line:col: problems", lintMain},
		"expr":       {"evaluate a ${{ }} expression and print its value as JSON", exprMain},
		"entrypoint": {"(internal) step runner inside a job's sandbox", entrypointMain},
		"step-wait":  {"(internal) a step container's main process (kubernetes wait files)", stepWaitMain},
		"step-run":   {"(internal) hands a step to a step container (kubernetes wait files)", stepRunMain},
		"version":    {"print the version", versionMain},
		"admin":      {"server maintenance: rotate-key re-encrypts stored credentials; new-key prints a key for CONVEYOR_SECRET_KEY", adminMain},
	}
	for k, v := range clientCommands() { // server clients; "run show" joins run
		m[k] = v
	}
	return m
}

var version = "dev"

func versionMain(_ context.Context, _ []string, stdout, _ io.Writer) int {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version // go install ...@v1.2.3
	}
	fmt.Fprintln(stdout, "conveyor", v)
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: conveyor <command> [flags]\n\ncommands:")
	for _, name := range []string{"run", "server", "agent", "lint", "expr", "repo", "trigger", "runs", "logs", "artifacts", "retention", "cancel", "rerun", "agents", "agent-token", "login", "logout", "org", "user", "token", "secret", "var", "audit", "quota", "usage", "whoami", "admin", "version"} {
		fmt.Fprintf(w, "  %-10s %s\n", name, commands()[name].summary)
	}
}

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	cmd, ok := commands()[os.Args[1]]
	if !ok {
		switch os.Args[1] {
		case "-h", "--help", "help":
			usage(os.Stdout)
			os.Exit(0)
		case "--version", "-version", "-v":
			os.Exit(versionMain(context.Background(), nil, os.Stdout, os.Stderr))
		}
		names := make([]string, 0, len(commands()))
		for name := range commands() {
			if name != "entrypoint" && name != "step-wait" && name != "step-run" {
				names = append(names, name)
			}
		}
		fmt.Fprintf(os.Stderr, "conveyor: unknown command %q%s\n", os.Args[1], didYouMean(os.Args[1], names))
		usage(os.Stderr)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cmd.main(ctx, os.Args[2:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
