package oncall

import (
	"testing"
	"time"
)

// TestWallClockRule pins the one rule for local times that a transition
// skips or repeats, in zones east and west of UTC, with half-hour offsets
// and in the southern hemisphere.
func TestWallClockRule(t *testing.T) {
	tests := []struct {
		name  string
		zone  string
		local string // wall-clock reading, 2006-01-02T15:04
		want  string // RFC 3339
	}{
		{"Berlin ordinary", "Europe/Berlin", "2026-07-01T09:00", "2026-07-01T07:00:00Z"},
		{"Berlin skipped: start of gap", "Europe/Berlin", "2026-03-29T02:00", "2026-03-29T01:00:00Z"},
		{"Berlin skipped: inside gap", "Europe/Berlin", "2026-03-29T02:30", "2026-03-29T01:00:00Z"},
		{"Berlin end of gap", "Europe/Berlin", "2026-03-29T03:00", "2026-03-29T01:00:00Z"},
		{"Berlin after gap", "Europe/Berlin", "2026-03-29T03:01", "2026-03-29T01:01:00Z"},
		{"Berlin repeated: first occurrence", "Europe/Berlin", "2026-10-25T02:00", "2026-10-25T00:00:00Z"},
		{"Berlin repeated: inside", "Europe/Berlin", "2026-10-25T02:30", "2026-10-25T00:30:00Z"},
		{"Berlin after repeat", "Europe/Berlin", "2026-10-25T03:00", "2026-10-25T02:00:00Z"},
		{"New York skipped", "America/New_York", "2026-03-08T02:30", "2026-03-08T07:00:00Z"},
		{"New York before gap", "America/New_York", "2026-03-08T01:59", "2026-03-08T06:59:00Z"},
		{"New York repeated", "America/New_York", "2026-11-01T01:30", "2026-11-01T05:30:00Z"},
		{"New York after repeat", "America/New_York", "2026-11-01T02:00", "2026-11-01T07:00:00Z"},
		{"St John's skipped", "America/St_Johns", "2026-03-08T02:30", "2026-03-08T05:30:00Z"},
		{"St John's repeated", "America/St_Johns", "2026-11-01T01:30", "2026-11-01T04:00:00Z"},
		{"Kolkata has no transitions", "Asia/Kolkata", "2026-03-29T02:30", "2026-03-28T21:00:00Z"},
		{"Sydney skipped", "Australia/Sydney", "2026-10-04T02:30", "2026-10-03T16:00:00Z"},
		{"Sydney repeated", "Australia/Sydney", "2026-04-05T02:30", "2026-04-04T15:30:00Z"},
		{"Lord Howe skips half an hour", "Australia/Lord_Howe", "2026-10-04T02:15", "2026-10-03T15:30:00Z"},
		{"Lord Howe repeats half an hour", "Australia/Lord_Howe", "2026-04-05T01:45", "2026-04-04T14:45:00Z"},
		{"Santiago skips midnight", "America/Santiago", "2026-09-06T00:30", "2026-09-06T04:00:00Z"},
		{"Samoa skipped a whole day", "Pacific/Apia", "2011-12-30T12:00", "2011-12-30T10:00:00Z"},
		{"UTC", "UTC", "2026-03-29T02:30", "2026-03-29T02:30:00Z"},
		{"normalizes out-of-range fields", "Europe/Berlin", "2026-10-25T02:30", "2026-10-25T00:30:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loc := mustLoc(t, tc.zone)
			w, err := time.Parse("2006-01-02T15:04", tc.local)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := time.Parse(time.RFC3339, tc.want)
			day, hour := w.Day(), w.Hour()
			if tc.name == "normalizes out-of-range fields" {
				day, hour = day-1, hour+24
			}
			got := wallClock(w.Year(), w.Month(), day, hour, w.Minute(), 0, 0, loc)
			if !got.Equal(want) {
				t.Errorf("wallClock(%s in %s) = %s, want %s", tc.local, tc.zone, got.UTC(), want)
			}
			if got.Location() != loc {
				t.Errorf("wallClock returned a time in %s, want %s", got.Location(), loc)
			}
		})
	}
}

// TestWallClockDefinition checks wallClock against its definition, the
// first instant at which the local clock reads the given time or later,
// found by stepping through instants a minute at a time around each
// transition of 2026 in several zones.
func TestWallClockDefinition(t *testing.T) {
	for _, zone := range []string{
		"Europe/Berlin", "America/New_York", "America/St_Johns", "Asia/Kolkata",
		"Australia/Sydney", "Australia/Lord_Howe", "America/Santiago", "Pacific/Chatham",
	} {
		loc := mustLoc(t, zone)
		// The reading of t's clock, as a UTC instant so readings compare.
		reading := func(t time.Time) time.Time {
			l := t.In(loc)
			return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
		}
		// Days d with a transition between d-12h and d+36h, whose local
		// readings the scan below covers; plus one ordinary day, so zones
		// without DST are tested too.
		days := []time.Time{time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)}
		for d := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() == 2026; d = d.AddDate(0, 0, 1) {
			_, a := d.Add(-12 * time.Hour).In(loc).Zone()
			_, b := d.Add(36 * time.Hour).In(loc).Zone()
			if a != b {
				days = append(days, d)
				d = d.AddDate(0, 0, 1)
			}
		}
		for _, d := range days {
			// Every minute's instant from well before the first reading
			// to well after the last, with its reading.
			first := d.Add(-30 * time.Hour)
			var readings []int64
			for c := first; c.Before(d.Add(70 * time.Hour)); c = c.Add(time.Minute) {
				readings = append(readings, reading(c).Unix())
			}
			var prev time.Time
			for w := d.Add(-6 * time.Hour); w.Before(d.Add(54 * time.Hour)); w = w.Add(5 * time.Minute) {
				i := 0
				for i < len(readings) && readings[i] < w.Unix() {
					i++
				}
				if i == 0 || i == len(readings) {
					t.Fatalf("%s: %s is not inside the instants scanned", zone, w)
				}
				want := first.Add(time.Duration(i) * time.Minute)
				got := wallClock(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), 0, 0, loc)
				if !got.Equal(want) {
					t.Fatalf("%s: wallClock(%s) = %s, want %s", zone, w.Format("2006-01-02T15:04"), got.UTC(), want.UTC())
				}
				if got.Before(prev) {
					t.Fatalf("%s: wallClock(%s) = %s is before the previous reading's %s", zone, w.Format("2006-01-02T15:04"), got.UTC(), prev.UTC())
				}
				prev = got
			}
		}
	}
}

// A weekly span keeps its local start across both DST changes, and one
// starting at a time the clocks skip starts when they jump past it.
func TestWeeklyCoveringKeepsLocalStart(t *testing.T) {
	berlin, err := LoadZone("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(mo time.Month, d, h, m int) time.Time { return time.Date(2026, mo, d, h, m, 0, 0, time.UTC) }
	for _, tt := range []struct {
		w     Weekly
		at    time.Time
		until time.Time
	}{
		{Weekly{[]time.Weekday{time.Sunday}, 3, 0, time.Hour, berlin}, utc(3, 22, 2, 0), utc(3, 22, 3, 0)},
		{Weekly{[]time.Weekday{time.Sunday}, 3, 0, time.Hour, berlin}, utc(3, 29, 1, 0), utc(3, 29, 2, 0)},
		{Weekly{[]time.Weekday{time.Sunday}, 3, 0, time.Hour, berlin}, utc(10, 25, 2, 0), utc(10, 25, 3, 0)},
		{Weekly{[]time.Weekday{time.Sunday}, 2, 30, time.Hour, berlin}, utc(3, 29, 1, 0), utc(3, 29, 2, 0)},
		{Weekly{[]time.Weekday{time.Sunday}, 3, 0, time.Hour, berlin}, utc(3, 29, 0, 59), time.Time{}},
		// Saturday 23:30 UTC is already Sunday in Berlin.
		{Weekly{[]time.Weekday{time.Sunday}, 0, 0, 2 * time.Hour, berlin}, utc(3, 21, 23, 30), utc(3, 22, 1, 0)},
		// Runs over midnight into the next day.
		{Weekly{[]time.Weekday{time.Saturday}, 22, 0, 4 * time.Hour, berlin}, utc(3, 22, 0, 30), utc(3, 22, 1, 0)},
	} {
		until, ok := tt.w.Covering(tt.at)
		if ok != !tt.until.IsZero() || (ok && !until.Equal(tt.until)) {
			t.Errorf("%+v at %v: covering %v until %v; want until %v", tt.w, tt.at, ok, until, tt.until)
		}
	}
}
