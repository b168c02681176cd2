package main

import (
	"context"
	"fmt"
	"io"
)

func exprMain(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "conveyor expr: not built yet")
	return 2
}
