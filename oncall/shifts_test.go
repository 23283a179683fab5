package oncall

import (
	"reflect"
	"testing"
	"time"
)

func TestShifts(t *testing.T) {
	mon := utc(2026, 1, 5, 9, 0)
	shift := func(from, to time.Time, ids ...int) Shift { return Shift{Start: from, End: to, UserIDs: ids} }
	h := func(n int) time.Time { return mon.Add(time.Duration(n) * time.Hour) }

	business := daily(1, 2)
	business.Layers[0].Restrictions = []Restriction{{StartDay: time.Monday, StartMinute: 9 * 60, DurationMinutes: 8 * 60}}
	covered := daily(1, 2)
	covered.Layers = append(covered.Layers, Layer{
		ShiftLength: 1, ShiftUnit: UnitDays, HandoffAt: mon, ParticipantIDs: []int{9},
		Restrictions: []Restriction{{StartDay: time.Tuesday, StartMinute: 9 * 60, DurationMinutes: 2 * 60}},
	})
	withOverride := daily(1, 2)
	withOverride.Overrides = []Override{
		{UserID: 7, Start: h(3), End: h(5)},
		{UserID: 8, ReplaceUserID: 2, Start: h(4), End: h(30)},
	}
	// An override that leaves the set unchanged must not split the shift.
	noop := daily(1, 2)
	noop.Overrides = []Override{{UserID: 8, ReplaceUserID: 3, Start: h(3), End: h(5)}}

	tests := []struct {
		name     string
		s        Schedule
		from, to time.Time
		want     []Shift
	}{
		{"clipped both ends", daily(1, 2), h(3), h(27), []Shift{shift(h(3), h(24), 1), shift(h(24), h(27), 2)}},
		{"inside one shift", daily(1, 2), h(1), h(2), []Shift{shift(h(1), h(2), 1)}},
		{"repeated participant merges", daily(1, 1, 2), h(0), h(72), []Shift{shift(h(0), h(48), 1), shift(h(48), h(72), 2)}},
		{"single participant is one shift", daily(5), h(-100), h(100), []Shift{shift(h(-100), h(100), 5)}},
		{"nobody on call omitted", business, h(-2), h(170), []Shift{shift(h(0), h(8), 1), shift(h(168), h(170), 2)}},
		{"empty schedule", Schedule{TimeZone: "UTC"}, h(0), h(10), nil},
		{"higher layer covers", covered, h(0), h(48), []Shift{shift(h(0), h(24), 1), shift(h(24), h(26), 9), shift(h(26), h(48), 2)}},
		{"overrides", withOverride, h(0), h(48), []Shift{
			shift(h(0), h(3), 1), shift(h(3), h(5), 7), shift(h(5), h(24), 1), shift(h(24), h(30), 8), shift(h(30), h(48), 2),
		}},
		{"no-op override does not split", noop, h(0), h(24), []Shift{shift(h(0), h(24), 1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mustShifts(t, tc.s, tc.from, tc.to)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Shifts =\n  %v\nwant\n  %v", got, tc.want)
			}
		})
	}
}

func TestShiftsWindow(t *testing.T) {
	s := daily(1, 2)
	from := utc(2026, 1, 5, 0, 0)
	berlin := mustLoc(t, "Europe/Berlin")
	tests := []struct {
		name    string
		from    time.Time
		to      time.Time
		wantErr bool
	}{
		{"empty", from, from, true},
		{"reversed", from, from.Add(-time.Hour), true},
		{"over 366 days", from, from.Add(366*24*time.Hour + 1), true},
		{"exactly 366 days", from, from.Add(366 * 24 * time.Hour), false},
		{"one nanosecond", from, from.Add(1), false},
		{"input in another zone", from.In(berlin), from.Add(time.Hour).In(berlin), false},
		{"extreme instants", time.Date(-5000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-5000, 1, 2, 0, 0, 0, 0, time.UTC), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Shifts(tc.from, tc.to)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			for _, sh := range got {
				if sh.Start.Location() != time.UTC || sh.End.Location() != time.UTC {
					t.Errorf("shift %v not in UTC", sh)
				}
			}
		})
	}
}

func TestNextChange(t *testing.T) {
	mon := utc(2026, 1, 5, 9, 0)
	h := func(n int) time.Time { return mon.Add(time.Duration(n) * time.Hour) }
	restrictedDaily := daily(1, 2)
	restrictedDaily.Layers[0].Restrictions = []Restriction{{StartDay: time.Monday, StartMinute: 10 * 60, DurationMinutes: 60}}
	withOverride := daily(1, 2)
	withOverride.Overrides = []Override{{UserID: 7, Start: h(2), End: h(3)}}
	onlyOverride := Schedule{TimeZone: "UTC", Overrides: []Override{{UserID: 7, Start: h(2), End: h(3)}}}
	farOverride := Schedule{TimeZone: "UTC", Overrides: []Override{{UserID: 7, Start: h(367 * 24), End: h(368 * 24)}}}
	ny := mustLoc(t, "America/New_York")
	nyDaily := Schedule{TimeZone: "America/New_York", Layers: []Layer{{
		ShiftLength: 1, ShiftUnit: UnitDays, HandoffAt: time.Date(2026, 1, 1, 9, 0, 0, 0, ny), ParticipantIDs: []int{1, 2},
	}}}

	tests := []struct {
		name string
		s    Schedule
		at   time.Time
		want time.Time
	}{
		{"next hand-off", daily(1, 2), h(1), h(24)},
		{"strictly after a hand-off", daily(1, 2), h(0), h(24)},
		{"before the anchor", daily(1, 2), h(-30), h(-24)},
		{"restriction start", restrictedDaily, h(0), h(1)},
		{"restriction end", restrictedDaily, h(1), h(2)},
		{"override start", withOverride, h(1), h(2)},
		{"override end", withOverride, h(2), h(3)},
		{"only an override", onlyOverride, h(0), h(2)},
		{"after the last override", onlyOverride, h(3), time.Time{}},
		{"beyond 366 days", farOverride, h(0), time.Time{}},
		{"empty schedule", Schedule{TimeZone: "UTC"}, h(0), time.Time{}},
		{"empty layer", daily(), h(0), time.Time{}},
		{"across spring forward", nyDaily, time.Date(2026, 3, 7, 12, 0, 0, 0, ny), time.Date(2026, 3, 8, 13, 0, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.s.NextChange(tc.at)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tc.want) || (!got.IsZero() && got.Location() != time.UTC) {
				t.Errorf("NextChange(%s) = %s, want %s", tc.at, got, tc.want)
			}
		})
	}
}
