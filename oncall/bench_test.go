package oncall

import (
	"testing"
	"time"
)

func BenchmarkShifts30Days(b *testing.B) {
	var weekdays []Restriction
	for d := time.Monday; d <= time.Friday; d++ {
		weekdays = append(weekdays, Restriction{StartDay: d, StartMinute: 9 * 60, DurationMinutes: 8 * 60})
	}
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	s := Schedule{
		TimeZone: "America/New_York",
		Layers: []Layer{
			{Name: "base", ShiftLength: 1, ShiftUnit: UnitWeeks, HandoffAt: start, ParticipantIDs: []int{1, 2, 3, 4}},
			{Name: "business", ShiftLength: 1, ShiftUnit: UnitDays, HandoffAt: start.Add(9 * time.Hour), ParticipantIDs: []int{5, 6, 7}, Restrictions: weekdays},
			{Name: "nights", ShiftLength: 12, ShiftUnit: UnitHours, HandoffAt: start, ParticipantIDs: []int{8, 9},
				Restrictions: []Restriction{{StartDay: time.Saturday, StartMinute: 22 * 60, DurationMinutes: 10 * 60}}},
		},
	}
	for i := range 5 {
		from := start.Add(time.Duration(i*5*24+13) * time.Hour)
		s.Overrides = append(s.Overrides, Override{UserID: 10 + i, ReplaceUserID: i % 3, Start: from, End: from.Add(20 * time.Hour)})
	}
	to := start.Add(30 * 24 * time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Shifts(start, to); err != nil {
			b.Fatal(err)
		}
	}
}
