package server

import (
	"context"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// agentBuild is the build time an agent reports, capped at the length of
// its lease: an agent cannot bill more than it held the job.
func agentBuild(reportedMS int64, started, now time.Time) time.Duration {
	d := time.Duration(max(reportedMS, 0)) * time.Millisecond
	if !started.IsZero() {
		d = min(d, now.Sub(started))
	}
	return max(d, 0)
}

// overMonthlyLimit returns an error of kind Forbidden that says why when
// the organisation has used up its monthly build seconds; nil otherwise.
func (s *Server) overMonthlyLimit(ctx context.Context, orgID int64) error {
	q, err := s.store.Quota(ctx, orgID)
	if err != nil || q.MonthlyBuildSeconds <= 0 {
		return err
	}
	month := store.Month(time.Now())
	u, err := s.store.Usage(ctx, orgID, month)
	if err != nil {
		return err
	}
	if used := int64(u.Build / time.Second); used >= q.MonthlyBuildSeconds {
		return errs.E("", errs.Forbidden, "monthly build-seconds limit reached: %d of %d build seconds used in %s; new runs start again next month or when an admin raises the limit",
			used, q.MonthlyBuildSeconds, month)
	}
	return nil
}

// refuseOverLimit turns runs that would start into failed runs with the
// reason when the organisation has used up its monthly build seconds, as
// an invalid workflow file is shown: the user sees why nothing ran.
// overLimit is overMonthlyLimit of the runs' organisation, asked only when
// there are runs.
func refuseOverLimit(runs []store.NewRun, overLimit func() error) error {
	if len(runs) == 0 {
		return nil
	}
	reason := overLimit()
	if errs.KindOf(reason) != errs.Forbidden {
		return reason
	}
	for i := range runs {
		if runs[i].Run.Status == store.StatusFailure {
			continue // already failed for its own reason
		}
		runs[i].Run.Status = store.StatusFailure
		runs[i].Run.Error = reason.Error()
		runs[i].Jobs = nil
	}
	return nil
}
