//go:build unix

package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// A builtin serves its request in the runner's process: its arguments
// (Argv[2:]), its standard input, its output and exit code; a cancel ends
// its context; a request naming a builtin the runner lacks runs Argv.
func TestBuiltin(t *testing.T) {
	echo := func(ctx context.Context, args []string, stdin io.Reader, out io.Writer) int {
		in, _ := io.ReadAll(stdin)
		fmt.Fprintf(out, "args %q stdin %q\n", args, in)
		if len(args) > 0 && args[0] == "wait" {
			fmt.Fprintln(out, "waiting")
			select {
			case <-ctx.Done():
				fmt.Fprintln(out, "cancelled")
				return 143
			case <-time.After(10 * time.Second):
				return 0
			}
		}
		return 7
	}
	c, _ := pairWith(t, ServeOptions{Builtins: map[string]Builtin{"echo": echo}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out syncBuffer
	code, err := c.RunInput(ctx, &Request{Builtin: "echo", Argv: []string{"/no/such/conveyor", "echo", "a", "b"}}, strings.NewReader("in put"), &out)
	if err != nil || code != 7 || out.String() != "args [\"a\" \"b\"] stdin \"in put\"\n" {
		t.Errorf("builtin: code %d, err %v, output %q", code, err, out.String())
	}
	// Unknown builtin: the command line runs.
	out = syncBuffer{}
	code, err = c.Run(ctx, &Request{Builtin: "nope", Argv: []string{"sh", "-c", "echo from sh; exit 3"}}, &out)
	if err != nil || code != 3 || out.String() != "from sh\n" {
		t.Errorf("unknown builtin: code %d, err %v, output %q", code, err, out.String())
	}
	// Cancel.
	cctx, ccancel := context.WithCancel(ctx)
	out = syncBuffer{}
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(cctx, &Request{Builtin: "echo", Argv: []string{"x", "echo", "wait"}}, &out)
		done <- err
	}()
	for !strings.Contains(out.String(), "waiting") {
		time.Sleep(5 * time.Millisecond)
	}
	ccancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled builtin did not end")
	}
	// The runner serves the next request (the builtin has ended).
	out = syncBuffer{}
	if code, err := c.Run(ctx, &Request{Argv: []string{"true"}}, &out); err != nil || code != 0 {
		t.Errorf("after the cancelled builtin: code %d, err %v", code, err)
	}
}
