package runner

import (
	"context"
	"io"
)

// Builtin serves a request in the runner's own process, without starting
// a program: for the runner's own helpers (conveyor step-run), whose
// program start (a large static binary) would cost tens of milliseconds
// per step. ctx ends when the request is cancelled; a builtin must then
// return promptly (within a bounded wait of its own). stdin is the
// request's standard input (empty without Request.Stdin); what it writes
// to out is the request's output. It returns the exit code.
type Builtin func(ctx context.Context, args []string, stdin io.Reader, out io.Writer) int

// ServeOptions configure ServeWith.
type ServeOptions struct {
	// Builtins are served in process, by Request.Builtin name.
	Builtins map[string]Builtin
}
