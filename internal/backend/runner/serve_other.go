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

// ServeWith is only available on Unix systems.
func ServeWith(context.Context, io.Reader, io.Writer, ServeOptions) error {
	return errs.E("runner", errs.Invalid, "the step runner needs a Unix system")
}

// Local is only available on Unix systems.
type Local struct{}

// NewLocal returns a Local runner whose Run fails.
func NewLocal() *Local { return &Local{} }

// Run fails: the step runner needs a Unix system.
func (*Local) Run(context.Context, *Request, io.Writer) (int, error) {
	return -1, errs.E("runner", errs.Invalid, "the step runner needs a Unix system")
}

// Close does nothing.
func (*Local) Close() {}
