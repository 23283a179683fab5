package oncall

import (
	"testing"
	"time"
)

func restricted(zone string, rs ...Restriction) Schedule {
	return Schedule{TimeZone: zone, Layers: []Layer{{
		ShiftLength: 1, ShiftUnit: UnitWeeks, HandoffAt: utc(2026, 1, 4, 0, 0),
		ParticipantIDs: []int{1}, Restrictions: rs,
	}}}
}

func TestRestrictions(t *testing.T) {
	var weekdays []Restriction
	for d := time.Monday; d <= time.Friday; d++ {
		weekdays = append(weekdays, Restriction{StartDay: d, StartMinute: 9 * 60, DurationMinutes: 8 * 60})
	}
	businessUTC := restricted("UTC", weekdays...)
	businessBerlin := restricted("Europe/Berlin", weekdays...)
	// Saturday 22:00 for 4h ends Sunday 02:00, past the end of the week.
	weekendWrap := restricted("UTC", Restriction{StartDay: time.Saturday, StartMinute: 22 * 60, DurationMinutes: 4 * 60})
	wholeWeek := restricted("America/New_York", Restriction{StartDay: time.Wednesday, StartMinute: 600, DurationMinutes: minutesPerWeek})
	friToMon := restricted("UTC", Restriction{StartDay: time.Friday, StartMinute: 18 * 60, DurationMinutes: 62 * 60})

	tests := []struct {
		name string
		s    Schedule
		at   time.Time
		want bool
	}{
		{"weekday inside", businessUTC, utc(2026, 1, 7, 12, 0), true},
		{"weekday at start", businessUTC, utc(2026, 1, 7, 9, 0), true},
		{"weekday at end", businessUTC, utc(2026, 1, 7, 17, 0), false},
		{"weekday before", businessUTC, utc(2026, 1, 7, 8, 59), false},
		{"Saturday", businessUTC, utc(2026, 1, 10, 12, 0), false},
		{"Berlin winter, 08:00Z is 09:00 local", businessBerlin, utc(2026, 1, 7, 8, 0), true},
		{"Berlin winter, 07:59Z", businessBerlin, utc(2026, 1, 7, 7, 59), false},
		{"Berlin summer, 07:00Z is 09:00 local", businessBerlin, utc(2026, 7, 8, 7, 0), true},
		{"Berlin summer, 15:00Z is 17:00 local", businessBerlin, utc(2026, 7, 8, 15, 0), false},
		{"wrap before", weekendWrap, utc(2026, 1, 10, 21, 59), false},
		{"wrap start", weekendWrap, utc(2026, 1, 10, 22, 0), true},
		{"wrap past week end", weekendWrap, utc(2026, 1, 11, 1, 59), true},
		{"wrap end", weekendWrap, utc(2026, 1, 11, 2, 0), false},
		{"whole week always on", wholeWeek, utc(2026, 3, 8, 7, 30), true},
		{"whole week at its edge", wholeWeek, time.Date(2026, 3, 11, 10, 0, 0, 0, mustLoc(t, "America/New_York")), true},
		{"Friday night to Monday morning, Sunday", friToMon, utc(2026, 1, 11, 12, 0), true},
		{"Friday night to Monday morning, Monday 07:59", friToMon, utc(2026, 1, 12, 7, 59), true},
		{"Friday night to Monday morning, Monday 08:00", friToMon, utc(2026, 1, 12, 8, 0), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mustOnCall(t, tc.s, tc.at)
			if (len(got) > 0) != tc.want {
				t.Errorf("OnCall(%s) = %v, want on call %v", tc.at, got, tc.want)
			}
		})
	}
}

// TestRestrictionWallClockAcrossDST checks that a window is measured on the
// local clock: 01:00-03:00 on the spring-forward night is one real hour, and
// on the fall-back night three.
func TestRestrictionWallClockAcrossDST(t *testing.T) {
	loc := mustLoc(t, "America/New_York")
	s := restricted("America/New_York", Restriction{StartDay: time.Sunday, StartMinute: 60, DurationMinutes: 120})
	tests := []struct {
		name string
		day  int
		mon  time.Month
		want time.Duration
	}{
		{"spring forward", 8, time.March, time.Hour},
		{"normal", 15, time.March, 2 * time.Hour},
		{"fall back", 1, time.November, 3 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			from := time.Date(2026, tc.mon, tc.day, 0, 0, 0, 0, loc)
			shifts := mustShifts(t, s, from, from.Add(12*time.Hour))
			if len(shifts) != 1 {
				t.Fatalf("got %d shifts, want 1: %v", len(shifts), shifts)
			}
			if got := shifts[0].End.Sub(shifts[0].Start); got != tc.want {
				t.Errorf("window lasts %s, want %s", got, tc.want)
			}
			if h := shifts[0].Start.In(loc).Hour(); h != 1 {
				t.Errorf("window starts at %d:00 local, want 1:00", h)
			}
		})
	}
}

// TestRestrictionEdgesOnTransitions checks that a window edge on a local
// time a transition skips or repeats follows the hand-off rule: a repeated
// time is its first occurrence, a skipped one the instant the clock jumps
// past it, whichever side of UTC the zone lies.
func TestRestrictionEdgesOnTransitions(t *testing.T) {
	tests := []struct {
		name        string
		zone        string
		r           Restriction
		from        string // RFC 3339, a few hours before the window
		start, end  string // UTC, unless wantNoShift
		wantNoShift bool
	}{
		{"Berlin repeated start", "Europe/Berlin", Restriction{time.Sunday, 2*60 + 30, 60}, "2026-10-24T20:00:00Z",
			"2026-10-25T00:30:00Z", "2026-10-25T02:30:00Z", false},
		{"Berlin skipped start", "Europe/Berlin", Restriction{time.Sunday, 2*60 + 30, 60}, "2026-03-28T20:00:00Z",
			"2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z", false},
		{"Berlin window inside the skipped hour", "Europe/Berlin", Restriction{time.Sunday, 2*60 + 15, 30}, "2026-03-28T20:00:00Z",
			"", "", true},
		{"New York repeated end", "America/New_York", Restriction{time.Saturday, 23 * 60, 150}, "2026-10-31T20:00:00Z",
			"2026-11-01T03:00:00Z", "2026-11-01T05:30:00Z", false},
		{"New York skipped end", "America/New_York", Restriction{time.Sunday, 60, 90}, "2026-03-08T00:00:00Z",
			"2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", false},
		{"St John's repeated start", "America/St_Johns", Restriction{time.Sunday, 90, 60}, "2026-11-01T00:00:00Z",
			"2026-11-01T04:00:00Z", "2026-11-01T06:00:00Z", false},
		{"Sydney repeated start", "Australia/Sydney", Restriction{time.Sunday, 2*60 + 30, 60}, "2026-04-04T10:00:00Z",
			"2026-04-04T15:30:00Z", "2026-04-04T17:30:00Z", false},
		{"Sydney skipped start", "Australia/Sydney", Restriction{time.Sunday, 2*60 + 30, 60}, "2026-10-03T10:00:00Z",
			"2026-10-03T16:00:00Z", "2026-10-03T16:30:00Z", false},
		{"Kolkata", "Asia/Kolkata", Restriction{time.Sunday, 2*60 + 30, 60}, "2026-03-28T12:00:00Z",
			"2026-03-28T21:00:00Z", "2026-03-28T22:00:00Z", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			from, _ := time.Parse(time.RFC3339, tc.from)
			s := restricted(tc.zone, tc.r)
			shifts := mustShifts(t, s, from, from.Add(18*time.Hour))
			if tc.wantNoShift {
				if len(shifts) != 0 {
					t.Errorf("a window the clock never shows gave shifts %v", shifts)
				}
				return
			}
			start, _ := time.Parse(time.RFC3339, tc.start)
			end, _ := time.Parse(time.RFC3339, tc.end)
			if len(shifts) != 1 || !shifts[0].Start.Equal(start) || !shifts[0].End.Equal(end) {
				t.Fatalf("shifts %v, want one from %s to %s", shifts, start, end)
			}
			if got := mustOnCall(t, s, start); len(got) == 0 {
				t.Errorf("nobody on call at the window's start %s", start)
			}
			if got := mustOnCall(t, s, start.Add(-time.Nanosecond)); len(got) != 0 {
				t.Errorf("on call just before the window's start %s: %v", start, got)
			}
			if next, err := s.NextChange(start.Add(-time.Minute)); err != nil || !next.Equal(start) {
				t.Errorf("NextChange = %s, %v; want %s", next, err, start)
			}
		})
	}
}
