package oncall

import (
	"testing"
	"time"
)

// TestHandoffsKeepLocalTime checks that DAYS and WEEKS hand-offs stay at the
// same local wall-clock time across DST transitions, so the shifts spanning
// a transition are an hour (or half an hour) shorter or longer.
func TestHandoffsKeepLocalTime(t *testing.T) {
	type date struct {
		m time.Month
		d int
	}
	tests := []struct {
		name     string
		zone     string
		unit     ShiftUnit
		anchor   date // 2026, at hour:min local
		hour     int
		min      int
		from, to date // 2026, local hand-off days bounding the window
		// odd maps the local start date of a shift to its length; all
		// others are a full day or week.
		odd map[date]time.Duration
	}{
		{
			name: "New York spring", zone: "America/New_York", unit: UnitDays,
			anchor: date{3, 1}, hour: 9, from: date{3, 2}, to: date{3, 14},
			odd: map[date]time.Duration{{3, 7}: 23 * time.Hour},
		},
		{
			name: "New York fall", zone: "America/New_York", unit: UnitDays,
			anchor: date{3, 1}, hour: 9, from: date{10, 26}, to: date{11, 6},
			odd: map[date]time.Duration{{10, 31}: 25 * time.Hour},
		},
		{
			name: "Berlin spring", zone: "Europe/Berlin", unit: UnitDays,
			anchor: date{1, 1}, hour: 9, from: date{3, 25}, to: date{4, 2},
			odd: map[date]time.Duration{{3, 28}: 23 * time.Hour},
		},
		{
			name: "Berlin fall", zone: "Europe/Berlin", unit: UnitDays,
			anchor: date{1, 1}, hour: 9, from: date{10, 20}, to: date{10, 30},
			odd: map[date]time.Duration{{10, 24}: 25 * time.Hour},
		},
		{
			name: "Berlin weekly", zone: "Europe/Berlin", unit: UnitWeeks,
			anchor: date{1, 5}, hour: 9, from: date{3, 9}, to: date{11, 9},
			odd: map[date]time.Duration{
				{3, 23}:  167 * time.Hour,
				{10, 19}: 169 * time.Hour,
			},
		},
		{
			name: "New York weekly", zone: "America/New_York", unit: UnitWeeks,
			anchor: date{1, 7}, hour: 17, min: 30, from: date{2, 25}, to: date{11, 18},
			odd: map[date]time.Duration{
				{3, 4}:   167 * time.Hour,
				{10, 28}: 169 * time.Hour,
			},
		},
		{
			name: "Kolkata has no DST", zone: "Asia/Kolkata", unit: UnitDays,
			anchor: date{2, 1}, hour: 9, min: 30, from: date{3, 1}, to: date{4, 1},
		},
		{
			name: "Adelaide autumn", zone: "Australia/Adelaide", unit: UnitDays,
			anchor: date{1, 1}, hour: 8, from: date{4, 1}, to: date{4, 9},
			odd: map[date]time.Duration{{4, 4}: 25 * time.Hour},
		},
		{
			name: "Adelaide spring", zone: "Australia/Adelaide", unit: UnitDays,
			anchor: date{1, 1}, hour: 8, from: date{10, 1}, to: date{10, 8},
			odd: map[date]time.Duration{{10, 3}: 23 * time.Hour},
		},
		{
			name: "Lord Howe half-hour DST", zone: "Australia/Lord_Howe", unit: UnitDays,
			anchor: date{1, 1}, hour: 12, from: date{4, 1}, to: date{4, 9},
			odd: map[date]time.Duration{{4, 4}: 24*time.Hour + 30*time.Minute},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loc := mustLoc(t, tc.zone)
			local := func(d date) time.Time { return time.Date(2026, d.m, d.d, tc.hour, tc.min, 0, 0, loc) }
			s := Schedule{TimeZone: tc.zone, Layers: []Layer{{
				ShiftLength: 1, ShiftUnit: tc.unit, HandoffAt: local(tc.anchor),
				ParticipantIDs: []int{1, 2}, // alternating, so no shifts merge
			}}}
			full := 24 * time.Hour
			if tc.unit == UnitWeeks {
				full *= 7
			}
			shifts := mustShifts(t, s, local(tc.from), local(tc.to))
			if len(shifts) == 0 {
				t.Fatal("no shifts")
			}
			seen := map[date]bool{}
			for i, sh := range shifts {
				start := sh.Start.In(loc)
				if h, m, _ := start.Clock(); h != tc.hour || m != tc.min {
					t.Errorf("shift %d starts at %s local, want %02d:%02d", i, start, tc.hour, tc.min)
				}
				if sh.Start.Location() != time.UTC {
					t.Errorf("shift %d start not in UTC: %s", i, sh.Start.Location())
				}
				if i > 0 && !shifts[i-1].End.Equal(sh.Start) {
					t.Errorf("gap between shift %d and %d", i-1, i)
				}
				d := date{start.Month(), start.Day()}
				want, ok := tc.odd[d]
				seen[d] = ok
				if !ok {
					want = full
				}
				if got := sh.End.Sub(sh.Start); got != want {
					t.Errorf("shift starting %s lasts %s, want %s", start, got, want)
				}
			}
			for d := range tc.odd {
				if !seen[d] {
					t.Errorf("no shift started on %v", d)
				}
			}
		})
	}
}

// TestHandoffOffsetZones pins absolute instants, so a mistake that is
// consistent in local time (such as ignoring the zone) still shows.
func TestHandoffOffsetZones(t *testing.T) {
	tests := []struct {
		name   string
		zone   string
		anchor string // RFC 3339 with the zone's offset
		at     string // an instant (UTC)
		want   string // the hand-off at or before it (UTC)
	}{
		{"Kolkata 09:30", "Asia/Kolkata", "2026-01-01T09:30:00+05:30", "2026-07-01T12:00:00Z", "2026-07-01T04:00:00Z"},
		{"Adelaide summer", "Australia/Adelaide", "2026-01-01T08:00:00+10:30", "2026-02-10T00:00:00Z", "2026-02-09T21:30:00Z"},
		{"Adelaide winter", "Australia/Adelaide", "2026-01-01T08:00:00+10:30", "2026-06-10T00:00:00Z", "2026-06-09T22:30:00Z"},
		{"Kathmandu 05:45", "Asia/Kathmandu", "2026-01-01T00:00:00+05:45", "2026-05-05T00:00:00Z", "2026-05-04T18:15:00Z"},
		{"anchor given in UTC, read in zone", "Europe/Berlin", "2026-01-01T08:00:00Z", "2026-07-01T08:00:00Z", "2026-07-01T07:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			anchor, _ := time.Parse(time.RFC3339, tc.anchor)
			at, _ := time.Parse(time.RFC3339, tc.at)
			want, _ := time.Parse(time.RFC3339, tc.want)
			s := Schedule{TimeZone: tc.zone, Layers: []Layer{{
				ShiftLength: 1, ShiftUnit: UnitDays, HandoffAt: anchor, ParticipantIDs: []int{1, 2},
			}}}
			shifts := mustShifts(t, s, at.Add(-48*time.Hour), at.Add(time.Minute))
			last := shifts[len(shifts)-1]
			if !last.Start.Equal(want) {
				t.Errorf("hand-off before %s is %s, want %s", at, last.Start, want)
			}
		})
	}
}

// TestHoursIgnoreDST checks that HOURS shifts are fixed durations, so their
// local hand-off time moves by an hour across a transition.
func TestHoursIgnoreDST(t *testing.T) {
	loc := mustLoc(t, "America/New_York")
	s := Schedule{TimeZone: "America/New_York", Layers: []Layer{{
		ShiftLength: 8, ShiftUnit: UnitHours,
		HandoffAt:      time.Date(2026, 3, 1, 6, 0, 0, 0, loc),
		ParticipantIDs: []int{1, 2, 3},
	}}}
	shifts := mustShifts(t, s, time.Date(2026, 3, 7, 6, 0, 0, 0, loc), time.Date(2026, 3, 10, 6, 0, 0, 0, loc))
	for _, sh := range shifts[:len(shifts)-1] {
		if d := sh.End.Sub(sh.Start); d != 8*time.Hour {
			t.Errorf("shift at %s lasts %s, want 8h", sh.Start, d)
		}
	}
	if h := shifts[len(shifts)-1].Start.In(loc).Hour(); h != 23 {
		t.Errorf("after spring-forward, last hand-off at %d:00 local, want 23:00", h)
	}
}

// TestHandoffAtInRepeatedHour checks that HandoffAt is a hand-off to the
// first participant even when it lies in the hour a fall-back repeats: the
// instant counts, not its local clock reading, which names two instants.
func TestHandoffAtInRepeatedHour(t *testing.T) {
	tests := []struct {
		name    string
		zone    string
		handoff string // RFC 3339, inside the repeated hour
	}{
		// 00:30Z, the first 02:30.
		{"Berlin first occurrence", "Europe/Berlin", "2026-10-25T02:30:00+02:00"},
		{"Berlin second occurrence", "Europe/Berlin", "2026-10-25T02:30:00+01:00"},
		// 06:30Z, the second 01:30.
		{"New York second occurrence", "America/New_York", "2026-11-01T01:30:00-05:00"},
		{"New York first occurrence", "America/New_York", "2026-11-01T01:30:00-04:00"},
		{"St John's second occurrence", "America/St_Johns", "2026-11-01T01:15:00-03:30"},
		{"St John's first occurrence", "America/St_Johns", "2026-11-01T01:15:00-02:30"},
		{"Sydney first occurrence", "Australia/Sydney", "2026-04-05T02:45:00+11:00"},
		{"Sydney second occurrence", "Australia/Sydney", "2026-04-05T02:45:00+10:00"},
		{"Lord Howe second occurrence", "Australia/Lord_Howe", "2026-04-05T01:40:00+10:30"},
		{"Kolkata, no DST, odd seconds", "Asia/Kolkata", "2026-10-25T02:30:17.25+05:30"},
	}
	for _, tc := range tests {
		for _, unit := range []ShiftUnit{UnitDays, UnitWeeks} {
			t.Run(tc.name+" "+string(unit), func(t *testing.T) {
				handoff, err := time.Parse(time.RFC3339Nano, tc.handoff)
				if err != nil {
					t.Fatal(err)
				}
				s := Schedule{TimeZone: tc.zone, Layers: []Layer{{
					ShiftLength: 1, ShiftUnit: unit, HandoffAt: handoff, ParticipantIDs: []int{1, 2},
				}}}
				if got := mustOnCall(t, s, handoff); !equalIDs(got, []int{1}) {
					t.Errorf("OnCall(handoffAt %s) = %v, want [1]", handoff.UTC(), got)
				}
				if got := mustOnCall(t, s, handoff.Add(-time.Nanosecond)); !equalIDs(got, []int{2}) {
					t.Errorf("OnCall(just before handoffAt %s) = %v, want [2]", handoff.UTC(), got)
				}
				shifts := mustShifts(t, s, handoff.Add(-72*time.Hour), handoff.Add(72*time.Hour))
				found := false
				for _, sh := range shifts {
					if sh.Start.Equal(handoff) {
						found = equalIDs(sh.UserIDs, []int{1})
					}
				}
				if !found {
					t.Errorf("no shift of [1] starts at handoffAt %s: %v", handoff.UTC(), shifts)
				}
				next, err := s.NextChange(handoff.Add(-time.Minute))
				if err != nil || !next.Equal(handoff) {
					t.Errorf("NextChange a minute before handoffAt = %s, %v; want %s", next, err, handoff.UTC())
				}
			})
		}
	}
}

// TestHandoffsOnTransitionDays pins the hand-offs that fall on a local time
// a transition skips or repeats: a repeated time is its first occurrence,
// a skipped one the instant the clock jumps past it. Zones east and west of
// UTC, with half-hour offsets and in the southern hemisphere must agree.
func TestHandoffsOnTransitionDays(t *testing.T) {
	tests := []struct {
		name   string
		zone   string
		anchor string // RFC 3339, an ordinary day at the hand-off time
		want   string // the hand-off on the transition day, UTC
	}{
		{"Berlin repeated", "Europe/Berlin", "2026-10-20T02:30:00+02:00", "2026-10-25T00:30:00Z"},
		{"Berlin skipped", "Europe/Berlin", "2026-03-20T02:30:00+01:00", "2026-03-29T01:00:00Z"},
		{"New York repeated", "America/New_York", "2026-10-20T01:30:00-04:00", "2026-11-01T05:30:00Z"},
		{"New York skipped", "America/New_York", "2026-03-01T02:30:00-05:00", "2026-03-08T07:00:00Z"},
		{"St John's repeated", "America/St_Johns", "2026-10-20T01:15:00-02:30", "2026-11-01T03:45:00Z"},
		{"St John's skipped", "America/St_Johns", "2026-03-01T02:15:00-03:30", "2026-03-08T05:30:00Z"},
		{"Sydney repeated", "Australia/Sydney", "2026-03-20T02:45:00+11:00", "2026-04-04T15:45:00Z"},
		{"Sydney skipped", "Australia/Sydney", "2026-09-20T02:45:00+10:00", "2026-10-03T16:00:00Z"},
		{"Lord Howe repeated", "Australia/Lord_Howe", "2026-03-20T01:40:00+11:00", "2026-04-04T14:40:00Z"},
		{"Lord Howe skipped", "Australia/Lord_Howe", "2026-09-20T02:10:00+10:30", "2026-10-03T15:30:00Z"},
		{"Kolkata", "Asia/Kolkata", "2026-03-20T02:30:00+05:30", "2026-03-28T21:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			anchor, _ := time.Parse(time.RFC3339, tc.anchor)
			want, _ := time.Parse(time.RFC3339, tc.want)
			s := Schedule{TimeZone: tc.zone, Layers: []Layer{{
				ShiftLength: 1, ShiftUnit: UnitDays, HandoffAt: anchor, ParticipantIDs: []int{1, 2},
			}}}
			shifts := mustShifts(t, s, want.Add(-20*time.Hour), want.Add(20*time.Hour))
			if len(shifts) != 2 || !shifts[1].Start.Equal(want) {
				t.Errorf("shifts around the transition %v, want a hand-off at %s", shifts, want)
			}
			next, err := s.NextChange(want.Add(-time.Second))
			if err != nil || !next.Equal(want) {
				t.Errorf("NextChange = %s, %v; want %s", next, err, want)
			}
		})
	}
}
