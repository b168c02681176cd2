package main

import (
	"context"
	"io"
	"os"

	"github.com/conveyor-ci/conveyor/internal/backend/stepwait"
)

// stepWaitMain is a step container's main process on the kubernetes
// backend: it runs the steps handed to it through wait files.
func stepWaitMain(ctx context.Context, args []string, _, stderr io.Writer) int {
	return stepwait.WaitMain(ctx, args, stderr)
}

// stepRunMain, started by the step runner in the job container, hands a
// step to a step container and follows it.
func stepRunMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return stepwait.RunMain(ctx, args, os.Stdin, stdout, stderr)
}
