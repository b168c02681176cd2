package stepwait

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"
)

// WaitMain is `conveyor step-wait --dir DIR [--grace D]`, a step
// container's main process.
func WaitMain(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("step-wait", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "the step container's folder on the shared volume")
	grace := fs.Duration("grace", 2*time.Second, "time between SIGTERM and SIGKILL for a cancelled step")
	if err := fs.Parse(args); err != nil || *dir == "" {
		fmt.Fprintln(stderr, "usage: conveyor step-wait --dir DIR [--grace D]")
		return 2
	}
	if err := Wait(ctx, *dir, *grace, stderr); err != nil {
		fmt.Fprintln(stderr, "conveyor step-wait:", err)
		return 1
	}
	return 0
}

// RunMain is the job container's side, started by the step runner:
//
//	conveyor step-run --dir DIR --n N [--grace D] < spec.json   run step N
//	conveyor step-run --dir DIR --n N --await D                 wait for step N's end: exit 0 once ended, 1 if not within D
//	conveyor step-run --end DIR...                              tell step containers to exit
//
// It exits with the step's code; CodeLost or CodeNotStart, with why on
// stderr, when the step could not run.
func RunMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("step-run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "the step container's folder on the shared volume")
	n := fs.Int("n", 0, "the step's number in that container")
	grace := fs.Duration("grace", 15*time.Second, "how long a cancelled step may take to end")
	await := fs.Duration("await", 0, "only wait, this long at most, for the step's end")
	end := fs.Bool("end", false, "tell the step containers of the folders given as arguments to exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *end {
		if err := End(fs.Args()...); err != nil {
			fmt.Fprintln(stderr, "conveyor step-run:", err)
			return 1
		}
		return 0
	}
	if *dir == "" || *n <= 0 {
		fmt.Fprintln(stderr, "usage: conveyor step-run --dir DIR --n N [--grace D | --await D]")
		return 2
	}
	if *await > 0 {
		if _, err := Await(ctx, *dir, *n, *await); err != nil {
			fmt.Fprintln(stderr, "conveyor step-run:", err)
			return 1
		}
		return 0
	}
	var s Spec
	if err := json.NewDecoder(stdin).Decode(&s); err != nil {
		fmt.Fprintln(stderr, "conveyor step-run: the step's spec:", err)
		return 2
	}
	code, err := Run(ctx, *dir, *n, &s, stdout, RunOptions{Grace: *grace})
	if err != nil {
		fmt.Fprintln(stderr, "conveyor:", err)
	}
	return code
}

// Builtin is RunMain as a step runner builtin (runner.Builtin, name
// "step-run"): served in the job container's runner process, it saves
// the start of a conveyor process per step.
func Builtin(ctx context.Context, args []string, stdin io.Reader, out io.Writer) int {
	return RunMain(ctx, args, stdin, out, out)
}

// BuiltinName is Builtin's name in runner.Request.Builtin.
const BuiltinName = "step-run"
