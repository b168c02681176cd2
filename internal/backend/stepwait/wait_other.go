//go:build !unix

package stepwait

import (
	"context"
	"io"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Wait is only available on Unix systems.
func Wait(context.Context, string, time.Duration, io.Writer) error {
	return errs.E("stepwait", errs.Invalid, "step containers need a Unix system")
}
