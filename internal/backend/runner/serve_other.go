//go:build !unix

package runner

import (
	"context"
	"io"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Serve is only available on Unix systems.
func Serve(context.Context, io.Reader, io.Writer) error {
	return errs.E("runner", errs.Invalid, "the step runner needs a Unix system")
}
