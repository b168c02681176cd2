package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/conveyor-ci/conveyor/internal/backend/runner"
	"github.com/conveyor-ci/conveyor/internal/backend/stepwait"
)

// entrypointMain is the step runner: the main process of a job's container.
// It speaks the runner protocol on stdin/stdout; stderr is for diagnostics.
func entrypointMain(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("entrypoint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	await := fs.Bool("await", false, "read one byte from stdin before the hello: for attach streams that do not replay output written before the client attached (Kubernetes)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *await {
		var b [1]byte
		if _, err := io.ReadFull(os.Stdin, b[:]); err != nil {
			fmt.Fprintln(stderr, "conveyor entrypoint: no client attached:", err)
			return 1
		}
	}
	// The protocol owns stdout, so the writer main passes is not used here:
	// nothing else may write to it.
	opts := runner.ServeOptions{Builtins: map[string]runner.Builtin{stepwait.BuiltinName: stepwait.Builtin}}
	if err := runner.ServeWith(ctx, os.Stdin, os.Stdout, opts); err != nil {
		fmt.Fprintln(stderr, "conveyor entrypoint:", err)
		return 1
	}
	return 0
}
