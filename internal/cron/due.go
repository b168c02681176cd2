package cron

import "time"

// maxCount bounds the counting of skipped times, so that a per-minute
// schedule after months of downtime costs milliseconds, not seconds.
const maxCount = 10_000

// Decision is what Due decided for one schedule.
type Decision struct {
	// Fire is the scheduled time to run now; zero when nothing is due.
	Fire time.Time
	// Skipped counts the scheduled times after the stored last that will
	// never run: all but the most recent after downtime, or all of them
	// when even the most recent is older than the catch-up window. It stops
	// counting at 10,000.
	Skipped int
	// Last is what to store as the last handled time, in the transaction
	// that creates the run for Fire: Fire itself, or now when times were
	// only skipped (or on first sighting), or the stored last unchanged.
	Last time.Time
	// Next is the first scheduled time after now: when to tick again.
	Next time.Time
}

// Due applies the firing rule of the package doc. last is the stored Last
// of the previous Decision, zero for a schedule never seen before; now is
// the current time; catchUp <= 0 means DefaultCatchUp. Times are compared
// in UTC. A clock that went back (now before last) fires nothing.
func Due(s Schedule, last, now time.Time, catchUp time.Duration) Decision {
	if catchUp <= 0 {
		catchUp = DefaultCatchUp
	}
	now = now.UTC()
	if last.IsZero() {
		return Decision{Last: now, Next: s.Next(now)}
	}
	last = last.UTC()
	if !now.After(last) {
		return Decision{Last: last, Next: s.Next(last)}
	}

	// The most recent time in (last, now] that is inside the window
	// [now-catchUp, now]; scheduled times are whole minutes.
	from := now.Add(-catchUp).Add(-time.Nanosecond)
	if from.Before(last) {
		from = last
	}
	var fire time.Time
	next := s.Next(from)
	for !next.IsZero() && !next.After(now) {
		fire = next
		next = s.Next(next)
	}

	// Every time in (last, now] other than fire is skipped.
	skipped := 0
	for t := s.Next(last); !t.IsZero() && !t.After(now) && skipped < maxCount; t = s.Next(t) {
		if !t.Equal(fire) {
			skipped++
		}
	}

	d := Decision{Fire: fire, Skipped: skipped, Last: last, Next: next}
	switch {
	case !fire.IsZero():
		d.Last = fire
	case skipped > 0:
		d.Last = now
	}
	return d
}
