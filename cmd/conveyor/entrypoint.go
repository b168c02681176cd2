package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/conveyor-ci/conveyor/internal/backend/runner"
)

// entrypointMain is the step runner: the main process of a job's container.
// It speaks the runner protocol on stdin/stdout; stderr is for diagnostics.
func entrypointMain(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("entrypoint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// The protocol owns stdout, so the writer main passes is not used here:
	// nothing else may write to it.
	if err := runner.Serve(ctx, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(stderr, "conveyor entrypoint:", err)
		return 1
	}
	return 0
}
