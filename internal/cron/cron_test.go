package cron

import (
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// at parses "2006-01-02 15:04" in UTC.
func at(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"", "empty"},
		{"   ", "empty"},
		{"* * * *", "want 5 fields"},
		{"0 * * * * *", "want 5 fields"},
		{"60 * * * *", "above maximum"},
		{"* 24 * * *", "above maximum"},
		{"* * 0 * *", "below minimum"},
		{"* * * 13 *", "above maximum"},
		{"* * * * 7", "above maximum"},
		{"*/0 * * * *", "positive"},
		{"5-1 * * * *", "beyond end"},
		{"*-5 * * * *", "bad item"},
		{"1,,2 * * * *", "bad item"},
		{"? * * * *", "bad item"},
		{"L * * * *", "failed to parse"},
		{"0 0 30 2 *", "never fires"},
		{"0 0 31 4,6,9,11 *", "never fires"},
		{"@every 5m", "unknown descriptor"},
		{"@reboot", "unknown descriptor"},
		{"TZ=UTC", "time zones"},
		{"CRON_TZ=Europe/Paris 0 * * * *", "time zones"},
	} {
		_, err := Parse(tc.spec)
		if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want Invalid with %q", tc.spec, err, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), "cron.Parse") {
			t.Errorf("error %q lacks the operation", err)
		}
	}
}

// TestNext checks the times each schedule fires, all in UTC.
func TestNext(t *testing.T) {
	for _, tc := range []struct {
		spec  string
		after string
		want  []string
	}{
		{"*/5 * * * *", "2024-03-10 10:02", []string{"2024-03-10 10:05", "2024-03-10 10:10", "2024-03-10 10:15"}},
		{"*/5 * * * *", "2024-03-10 10:05", []string{"2024-03-10 10:10"}}, // strictly after
		{"0 * * * *", "2024-12-31 22:30", []string{"2024-12-31 23:00", "2025-01-01 00:00"}},
		{"@hourly", "2024-12-31 23:00", []string{"2025-01-01 00:00"}},
		{"30 4 * * *", "2024-02-28 05:00", []string{"2024-02-29 04:30", "2024-03-01 04:30"}},
		{"@daily", "2024-02-28 05:00", []string{"2024-02-29 00:00"}},
		// Month ends: the 31st skips short months; Feb 29 waits for a leap year.
		{"0 0 31 * *", "2024-01-31 00:00", []string{"2024-03-31 00:00", "2024-05-31 00:00"}},
		{"0 12 29 2 *", "2024-03-01 00:00", []string{"2028-02-29 12:00"}},
		{"@monthly", "2024-01-31 12:00", []string{"2024-02-01 00:00"}},
		// Both day fields restricted: either matches (POSIX).
		// 2024-06-01 is a Saturday, 2024-06-03 a Monday.
		{"0 9 1,15 * 1", "2024-05-31 00:00", []string{"2024-06-01 09:00", "2024-06-03 09:00", "2024-06-10 09:00", "2024-06-15 09:00"}},
		// Only day-of-week restricted: Monday to Friday.
		{"0 9 * * 1-5", "2024-06-07 10:00", []string{"2024-06-10 09:00"}},
		{"0 9 * * MON-FRI", "2024-06-07 10:00", []string{"2024-06-10 09:00"}},
		{"0 9 * * 0", "2024-06-07 10:00", []string{"2024-06-09 09:00"}},
		// A stepped day field is restricted, so the OR rule applies.
		{"0 0 */10 * 2", "2024-06-01 00:00", []string{"2024-06-04 00:00", "2024-06-11 00:00", "2024-06-18 00:00", "2024-06-21 00:00"}},
		{"15,45 8-9 * JAN,jul *", "2024-06-30 23:59", []string{"2024-07-01 08:15", "2024-07-01 08:45", "2024-07-01 09:15"}},
		{"@weekly", "2024-06-07 10:00", []string{"2024-06-09 00:00"}},
		{"@yearly", "2024-06-07 10:00", []string{"2025-01-01 00:00"}},
		{"  0   0  *  *  *  ", "2024-06-07 10:00", []string{"2024-06-08 00:00"}},
	} {
		s, err := Parse(tc.spec)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.spec, err)
			continue
		}
		cur := at(t, tc.after)
		for _, w := range tc.want {
			cur = s.Next(cur)
			if !cur.Equal(at(t, w)) {
				t.Errorf("%q after %s: got %s, want %s", tc.spec, tc.after, cur.Format(time.DateTime), w)
				break
			}
		}
	}
}

func TestNextIsUTC(t *testing.T) {
	s := MustParse("0 12 * * *")
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no time zone data")
	}
	// 10:00 in Paris (summer) is 08:00 UTC: next is 12:00 UTC, 14:00 in Paris.
	got := s.Next(time.Date(2024, 7, 1, 10, 0, 0, 0, paris))
	if want := at(t, "2024-07-01 12:00"); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("Next = %v, want %v in UTC", got, want)
	}
	if (Schedule{}).Next(got) != (time.Time{}) {
		t.Error("the zero Schedule fires")
	}
	if s.String() != "0 12 * * *" {
		t.Errorf("String = %q", s.String())
	}
}

func TestMinInterval(t *testing.T) {
	from := at(t, "2024-01-01 00:00")
	for spec, want := range map[string]time.Duration{
		"* * * * *":     time.Minute,
		"*/5 * * * *":   5 * time.Minute,
		"0,3 * * * *":   3 * time.Minute,
		"0 */2 * * *":   2 * time.Hour,
		"@daily":        24 * time.Hour,
		"0 0 29 2 *":    1461 * 24 * time.Hour, // four years and a leap day
		"0 0 1 1 *":     365 * 24 * time.Hour,  // 2025 is no leap year
		"15 10 * * 1":   7 * 24 * time.Hour,
		"0 0 * * 1,2":   24 * time.Hour,
		"0 9 1 * 1-5":   24 * time.Hour,
		"58,59 * * * *": time.Minute,
	} {
		if got := MustParse(spec).MinInterval(from, 3); got != want {
			t.Errorf("MinInterval(%q) = %v, want %v", spec, got, want)
		}
	}
}
