package main

import (
	"context"
	"fmt"
	"io"
)

func runMain(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "conveyor run: not built yet")
	return 2
}
