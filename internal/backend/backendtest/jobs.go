package backendtest

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend"
)

// jobSerial numbers the jobs NewJob makes in this test binary.
var jobSerial atomic.Int64

// NewJob is a job for test t: an id unique on the machine, t's name, a
// fresh job folder, and image.
func NewJob(t testing.TB, image string) *backend.JobSpec {
	t.Helper()
	return &backend.JobSpec{
		ID:     fmt.Sprintf("test-%d-%d", os.Getpid(), jobSerial.Add(1)),
		Name:   t.Name(),
		JobDir: t.TempDir(),
		Image:  image,
	}
}

// Setup sets job up on b within timeout (a failure shows the set-up log)
// and, when t ends, tears the sandbox down (an error fails t) and calls
// gone, which checks that nothing of the job is left.
func Setup(t testing.TB, b backend.Backend, job *backend.JobSpec, timeout time.Duration, gone func(jobID string)) backend.Sandbox {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var log SyncBuffer
	sb, err := b.Setup(ctx, job, &log)
	if err != nil {
		t.Fatalf("setup: %v\n%s", err, log.String())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := sb.Teardown(ctx); err != nil {
			t.Errorf("teardown: %v", err)
		}
		gone(job.ID)
	})
	return sb
}
