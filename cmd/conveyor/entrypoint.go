package main

import (
	"context"
	"fmt"
	"io"
)

func entrypointMain(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "conveyor entrypoint: not built yet")
	return 2
}
