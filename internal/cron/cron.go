// Package cron parses the schedules of `on: schedule` and decides, purely
// from stored and current times, which scheduled times to run.
//
// # Syntax
//
// A schedule is GitHub's: five POSIX cron fields, minute hour day-of-month
// month day-of-week, always in UTC, with *, lists (,), ranges (-) and steps
// (/); months JAN-DEC and days SUN-SAT may be named, and day-of-week runs
// 0-6 with 0 for Sunday. When both day fields are restricted a day matches
// either (POSIX); a field with a step, like */2, counts as restricted (as in
// robfig/cron, which parses the fields; Vixie cron would count it as *).
//
// Beyond GitHub, the descriptors @yearly, @annually, @monthly, @weekly,
// @daily, @midnight and @hourly are accepted as shorthands for their
// five-field forms. @every, @reboot and TZ=/CRON_TZ= prefixes are rejected:
// they are not calendar times in UTC. A schedule that never fires (0 0 30 2 *)
// is rejected too.
//
// GitHub runs schedules at most every 5 minutes. Conveyor does not reject
// or stretch a more frequent schedule: it runs what the workflow says, and
// leaves a warning to the linter (see Schedule.MinInterval).
//
// # Firing rule
//
// The caller stores, per schedule, the last scheduled time it handled, in
// the same transaction as the run it creates, and calls Due on every tick.
// Scheduled times are minutes, and a tick may come late: a time fires when
// it is due and no older than the catch-up window (DefaultCatchUp, one
// hour). After downtime only the most recent missed time fires, and only if
// it is inside that window; older misses are skipped and counted, so the
// caller can log "skipped N runs during downtime". A scheduled time is
// handed out at most once per stored Last, so a restart never fires twice.
// A schedule seen for the first time starts from now: times before its
// first sighting never fire.
package cron

import (
	"regexp"
	"strings"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
	robfig "github.com/robfig/cron/v3"
)

// DefaultCatchUp is how late a scheduled time may still fire.
const DefaultCatchUp = time.Hour

// Schedule is a parsed cron schedule in UTC. The zero Schedule never fires.
type Schedule struct {
	spec  string
	sched robfig.Schedule
}

var parser = robfig.NewParser(robfig.Minute | robfig.Hour | robfig.Dom | robfig.Month | robfig.Dow | robfig.Descriptor)

// item is one element of a field's comma list; robfig accepts some
// malformed items, like "*-5" (read as *), so we check the shape first.
var item = regexp.MustCompile(`^(?:\*|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:/[0-9]+)?$`)

var descriptors = map[string]bool{
	"@yearly": true, "@annually": true, "@monthly": true, "@weekly": true,
	"@daily": true, "@midnight": true, "@hourly": true,
}

// epoch is where Parse looks for a first firing: a leap year, so that
// February 29 is found, and fixed, so that Parse is pure.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Parse parses a five-field cron schedule or descriptor; errors are
// errs.Invalid and quote the spec.
func Parse(spec string) (Schedule, error) {
	const op = "cron.Parse"
	s := strings.TrimSpace(spec)
	bad := func(format string, args ...any) (Schedule, error) {
		return Schedule{}, errs.E(op, errs.Invalid, "schedule %q: "+format, append([]any{spec}, args...)...)
	}
	switch {
	case s == "":
		return bad("empty")
	case strings.HasPrefix(s, "@"):
		if !descriptors[s] {
			return bad("unknown descriptor; use @yearly, @monthly, @weekly, @daily, @hourly or five fields")
		}
	case strings.Contains(s, "="):
		return bad("time zones are not supported: schedules are in UTC")
	default:
		fields := strings.Fields(s)
		if len(fields) != 5 {
			return bad("want 5 fields (minute hour day-of-month month day-of-week), got %d", len(fields))
		}
		names := [...]string{"minute", "hour", "day-of-month", "month", "day-of-week"}
		for i, f := range fields {
			for _, it := range strings.Split(f, ",") {
				if !item.MatchString(it) {
					return bad("%s field %q: bad item %q", names[i], f, it)
				}
			}
		}
		s = strings.Join(fields, " ")
	}
	sched, err := parser.Parse(s)
	if err != nil {
		return bad("%v", err)
	}
	if sched.Next(epoch.Add(-time.Nanosecond)).IsZero() {
		return bad("never fires")
	}
	return Schedule{spec: s, sched: sched}, nil
}

// MustParse is Parse for specs known to be good; it panics on an error.
func MustParse(spec string) Schedule {
	s, err := Parse(spec)
	if err != nil {
		panic(err)
	}
	return s
}

// String returns the schedule as parsed, spaces normalised.
func (s Schedule) String() string { return s.spec }

// Next returns the first scheduled time strictly after t, in UTC, or the
// zero time if there is none within five years.
func (s Schedule) Next(t time.Time) time.Time {
	if s.sched == nil {
		return time.Time{}
	}
	return s.sched.Next(t.UTC())
}

// MinInterval returns the shortest gap between consecutive scheduled times
// among the first n after t, for a linter to compare with GitHub's five
// minutes; 0 if fewer than two times follow t.
func (s Schedule) MinInterval(t time.Time, n int) time.Duration {
	var shortest time.Duration
	prev := s.Next(t)
	for i := 1; i < n && !prev.IsZero(); i++ {
		next := s.Next(prev)
		if next.IsZero() {
			break
		}
		if d := next.Sub(prev); shortest == 0 || d < shortest {
			shortest = d
		}
		prev = next
	}
	return shortest
}
