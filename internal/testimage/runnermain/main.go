// Command runnermain is a stand-in for "conveyor entrypoint" in tests, used
// only when cmd/conveyor does not build.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/conveyor-ci/conveyor/internal/backend/runner"
	"github.com/conveyor-ci/conveyor/internal/backend/stepwait"
)

func main() {
	if len(os.Args) >= 2 && (os.Args[1] == "step-wait" || os.Args[1] == "step-run") {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := 0
		if os.Args[1] == "step-wait" {
			code = stepwait.WaitMain(ctx, os.Args[2:], os.Stderr)
		} else {
			code = stepwait.RunMain(ctx, os.Args[2:], os.Stdin, os.Stdout, os.Stderr)
		}
		stop()
		os.Exit(code)
	}
	if len(os.Args) < 2 || os.Args[1] != "entrypoint" {
		fmt.Fprintln(os.Stderr, "usage: runnermain entrypoint")
		os.Exit(2)
	}
	if len(os.Args) > 2 && os.Args[2] == "--await" { // as conveyor entrypoint --await
		var b [1]byte
		if _, err := os.Stdin.Read(b[:]); err != nil {
			os.Exit(1)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runner.ServeWith(ctx, os.Stdin, os.Stdout, runner.ServeOptions{Builtins: map[string]runner.Builtin{stepwait.BuiltinName: stepwait.Builtin}})
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "entrypoint:", err)
		os.Exit(1)
	}
}
