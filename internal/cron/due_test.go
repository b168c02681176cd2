package cron

import (
	"testing"
	"time"
)

func TestDue(t *testing.T) {
	const zero = ""
	for _, tc := range []struct {
		name       string
		spec       string
		last, now  string
		catchUp    time.Duration
		fire       string
		skipped    int
		storedLast string
		next       string
	}{
		{"first sighting starts from now", "*/5 * * * *", zero, "2024-06-01 10:07", 0, zero, 0, "2024-06-01 10:07", "2024-06-01 10:10"},
		{"first sighting on a scheduled minute", "*/5 * * * *", zero, "2024-06-01 10:05", 0, zero, 0, "2024-06-01 10:05", "2024-06-01 10:10"},
		{"not yet due", "*/5 * * * *", "2024-06-01 10:05", "2024-06-01 10:09", 0, zero, 0, "2024-06-01 10:05", "2024-06-01 10:10"},
		{"due on time", "*/5 * * * *", "2024-06-01 10:05", "2024-06-01 10:10", 0, "2024-06-01 10:10", 0, "2024-06-01 10:10", "2024-06-01 10:15"},
		{"due, tick a bit late", "*/5 * * * *", "2024-06-01 10:05", "2024-06-01 10:11", 0, "2024-06-01 10:10", 0, "2024-06-01 10:10", "2024-06-01 10:15"},
		{"hourly", "0 * * * *", "2024-06-01 09:00", "2024-06-01 10:00", 0, "2024-06-01 10:00", 0, "2024-06-01 10:00", "2024-06-01 11:00"},
		{"downtime: only the latest fires", "*/5 * * * *", "2024-06-01 10:00", "2024-06-01 10:32", 0, "2024-06-01 10:30", 5, "2024-06-01 10:30", "2024-06-01 10:35"},
		{"downtime: latest inside window", "0 * * * *", "2024-06-01 03:00", "2024-06-01 10:59", 0, "2024-06-01 10:00", 6, "2024-06-01 10:00", "2024-06-01 11:00"},
		{"window edge is inclusive", "0 * * * *", "2024-06-01 08:00", "2024-06-01 10:00", 2 * time.Hour, "2024-06-01 10:00", 1, "2024-06-01 10:00", "2024-06-01 11:00"},
		{"downtime beyond window: skip all", "0 3 * * *", "2024-06-01 03:00", "2024-06-04 05:00", 0, zero, 3, "2024-06-04 05:00", "2024-06-05 03:00"},
		{"beyond window by a minute", "0 3 * * *", "2024-06-01 03:00", "2024-06-02 04:01", time.Hour, zero, 1, "2024-06-02 04:01", "2024-06-03 03:00"},
		{"wider window catches up", "0 3 * * *", "2024-06-01 03:00", "2024-06-04 05:00", 3 * time.Hour, "2024-06-04 03:00", 2, "2024-06-04 03:00", "2024-06-05 03:00"},
		{"month end across a short month", "0 0 31 * *", "2024-01-31 00:00", "2024-03-31 00:20", 0, "2024-03-31 00:00", 0, "2024-03-31 00:00", "2024-05-31 00:00"},
		{"dom or dow", "0 9 1 * 1", "2024-05-31 00:00", "2024-06-03 09:30", 0, "2024-06-03 09:00", 1, "2024-06-03 09:00", "2024-06-10 09:00"},
		{"clock went back", "*/5 * * * *", "2024-06-01 10:10", "2024-06-01 10:02", 0, zero, 0, "2024-06-01 10:10", "2024-06-01 10:15"},
		{"now equals last", "*/5 * * * *", "2024-06-01 10:10", "2024-06-01 10:10", 0, zero, 0, "2024-06-01 10:10", "2024-06-01 10:15"},
		{"last between times", "*/5 * * * *", "2024-06-01 10:07", "2024-06-01 10:10", 0, "2024-06-01 10:10", 0, "2024-06-01 10:10", "2024-06-01 10:15"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := MustParse(tc.spec)
			var last time.Time
			if tc.last != zero {
				last = at(t, tc.last)
			}
			d := Due(s, last, at(t, tc.now), tc.catchUp)
			if got := fmtTime(d.Fire); got != tc.fire {
				t.Errorf("Fire = %q, want %q", got, tc.fire)
			}
			if d.Skipped != tc.skipped {
				t.Errorf("Skipped = %d, want %d", d.Skipped, tc.skipped)
			}
			if got := fmtTime(d.Last); got != tc.storedLast {
				t.Errorf("Last = %q, want %q", got, tc.storedLast)
			}
			if got := fmtTime(d.Next); got != tc.next {
				t.Errorf("Next = %q, want %q", got, tc.next)
			}
		})
	}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// store plays the caller: it keeps Last durably and records the runs it
// created, as one transaction would.
type store struct {
	last    time.Time
	runs    []time.Time
	skipped int
}

func (st *store) tick(s Schedule, now time.Time, catchUp time.Duration) {
	d := Due(s, st.last, now, catchUp)
	if !d.Fire.IsZero() {
		st.runs = append(st.runs, d.Fire)
	}
	st.skipped += d.Skipped
	st.last = d.Last
}

// TestRestartNoDoubleFire ticks every 20 seconds, with restarts that replay
// ticks (a crash after the transaction, a clock that jumps back): every
// scheduled time runs exactly once.
func TestRestartNoDoubleFire(t *testing.T) {
	s := MustParse("*/5 * * * *")
	start := at(t, "2024-06-01 10:00")
	st := &store{}
	st.tick(s, start.Add(-time.Second), 0) // first sighting
	for now := start; now.Before(start.Add(time.Hour)); now = now.Add(20 * time.Second) {
		st.tick(s, now, 0)
		st.tick(s, now, 0)                     // the same tick again after a restart
		st.tick(s, now.Add(-2*time.Minute), 0) // a clock that went back
	}
	if len(st.runs) != 12 || st.skipped != 0 {
		t.Fatalf("runs %v, skipped %d; want 12 runs, none skipped", st.runs, st.skipped)
	}
	for i, r := range st.runs {
		if want := start.Add(time.Duration(i) * 5 * time.Minute); !r.Equal(want) {
			t.Errorf("run %d at %s, want %s", i, r, want)
		}
	}
}

// TestRestartAfterDowntime: after downtime the most recent missed time runs
// once if it is inside the window, and the others are reported.
func TestRestartAfterDowntime(t *testing.T) {
	s := MustParse("*/10 * * * *")
	st := &store{}
	st.tick(s, at(t, "2024-06-01 09:55"), 0)
	st.tick(s, at(t, "2024-06-01 10:00"), 0) // runs 10:00, then the server dies
	st.tick(s, at(t, "2024-06-01 10:41"), 0) // back: 10:10-10:40 missed
	st.tick(s, at(t, "2024-06-01 10:41"), 0) // and a second replica, or a restart
	if want := []string{"2024-06-01 10:00", "2024-06-01 10:40"}; len(st.runs) != 2 || fmtTime(st.runs[0]) != want[0] || fmtTime(st.runs[1]) != want[1] {
		t.Errorf("runs %v, want %v", st.runs, want)
	}
	if st.skipped != 3 {
		t.Errorf("skipped %d, want 3", st.skipped)
	}

	// Down 3 hours: 13:00 is 5 minutes old, inside the default window but
	// outside a 2-minute one.
	st = &store{last: at(t, "2024-06-01 10:00")}
	st.tick(s, at(t, "2024-06-01 13:05"), 0)
	if len(st.runs) != 1 || fmtTime(st.runs[0]) != "2024-06-01 13:00" || st.skipped != 17 {
		t.Errorf("after 3h down: runs %v, skipped %d; want 13:00, 17", st.runs, st.skipped)
	}
	st = &store{last: at(t, "2024-06-01 10:00")}
	st.tick(s, at(t, "2024-06-01 13:05"), 2*time.Minute)
	st.tick(s, at(t, "2024-06-01 13:06"), 2*time.Minute)
	if len(st.runs) != 0 || st.skipped != 18 {
		t.Errorf("after 3h down, 2m window: runs %v, skipped %d; want none, 18", st.runs, st.skipped)
	}
	st.tick(s, at(t, "2024-06-01 13:10"), 2*time.Minute)
	if len(st.runs) != 1 || st.skipped != 18 {
		t.Errorf("the first time after downtime: runs %v, skipped %d", st.runs, st.skipped)
	}
}

func TestDueSkipCountIsBounded(t *testing.T) {
	s := MustParse("* * * * *")
	begin := time.Now()
	d := Due(s, at(t, "2020-01-01 00:00"), at(t, "2024-01-01 00:00"), 0)
	if d.Skipped != maxCount || !d.Fire.Equal(at(t, "2024-01-01 00:00")) {
		t.Errorf("Skipped %d, Fire %v", d.Skipped, d.Fire)
	}
	if el := time.Since(begin); el > 5*time.Second {
		t.Errorf("Due took %v", el)
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"*/5 * * * *", "0 0 1 1 *", "@daily", "@every 1h", "TZ=UTC", "CRON_TZ=X 0 * * * *",
		"1-5/2,7 0-23/3 */2 JAN-DEC SUN-SAT", "0 0 30 2 *", "*-5 * * * *", "99999999999999999999 * * * *",
		"-1 * * * *", "1/0 * * * *", "a-b * * * *", "TZ=", "=", "@", "0 0 29 2 1",
	} {
		f.Add(seed)
	}
	from := at(f, "2024-01-01 00:00")
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := Parse(spec)
		if err != nil {
			return
		}
		next := s.Next(from)
		if next.IsZero() || !next.After(from) || next.Second() != 0 {
			t.Fatalf("Parse(%q) ok but Next(%v) = %v", spec, from, next)
		}
		d := Due(s, next.Add(-time.Minute), next, 0)
		if !d.Fire.Equal(next) {
			t.Fatalf("%q: Due at %v fired %v", spec, next, d.Fire)
		}
	})
}
