package oncall

import (
	"testing"
	"time"
)

func TestRotation(t *testing.T) {
	anchor := utc(2026, 1, 5, 9, 0)
	day := 24 * time.Hour
	hours8 := Schedule{TimeZone: "UTC", Layers: []Layer{{
		ShiftLength: 8, ShiftUnit: UnitHours, HandoffAt: utc(2026, 1, 1, 0, 0), ParticipantIDs: []int{1, 2, 3},
	}}}
	subSecond := Schedule{TimeZone: "UTC", Layers: []Layer{{
		ShiftLength: 8, ShiftUnit: UnitHours,
		HandoffAt:      utc(2026, 1, 1, 0, 0).Add(500 * time.Millisecond),
		ParticipantIDs: []int{1, 2},
	}}}
	biweekly := Schedule{TimeZone: "UTC", Layers: []Layer{{
		ShiftLength: 2, ShiftUnit: UnitWeeks, HandoffAt: anchor, ParticipantIDs: []int{1, 2},
	}}}
	tests := []struct {
		name string
		s    Schedule
		at   time.Time
		want []int
	}{
		{"at anchor, participant 0", daily(10, 20, 30), anchor, []int{10}},
		{"one shift later", daily(10, 20, 30), anchor.Add(day), []int{20}},
		{"end of third shift", daily(10, 20, 30), anchor.Add(3*day - time.Nanosecond), []int{30}},
		{"wraps around", daily(10, 20, 30), anchor.Add(3 * day), []int{10}},
		{"just before anchor", daily(10, 20, 30), anchor.Add(-time.Nanosecond), []int{30}},
		{"two shifts before anchor", daily(10, 20, 30), anchor.Add(-day - time.Nanosecond), []int{20}},
		{"far before anchor, index -300", daily(10, 20, 30), anchor.Add(-300 * day), []int{10}},
		{"far before anchor, index -301", daily(10, 20, 30), anchor.Add(-301 * day), []int{30}},
		{"far after anchor", daily(10, 20, 30), anchor.Add(3000*day + time.Hour), []int{10}},
		{"repeated participant", daily(1, 1, 2), anchor.Add(day), []int{1}},
		{"repeated participant, third", daily(1, 1, 2), anchor.Add(2 * day), []int{2}},
		{"single participant", daily(7), anchor.Add(-5 * day), []int{7}},
		{"empty layer", daily(), anchor, nil},
		{"8h first", hours8, utc(2026, 1, 1, 7, 59), []int{1}},
		{"8h second", hours8, utc(2026, 1, 1, 8, 0), []int{2}},
		{"8h third", hours8, utc(2026, 1, 1, 16, 0), []int{3}},
		{"8h before anchor", hours8, utc(2025, 12, 31, 23, 59), []int{3}},
		{"8h next day", hours8, utc(2026, 1, 2, 0, 0), []int{1}},
		{"sub-second anchor, 1ns before hand-off", subSecond, utc(2026, 1, 1, 8, 0).Add(500*time.Millisecond - 1), []int{1}},
		{"sub-second anchor, at hand-off", subSecond, utc(2026, 1, 1, 8, 0).Add(500 * time.Millisecond), []int{2}},
		{"sub-second anchor, before anchor", subSecond, utc(2026, 1, 1, 0, 0), []int{2}},
		{"two-week shifts", biweekly, anchor.Add(13 * day), []int{1}},
		{"two-week shifts, second", biweekly, anchor.Add(14 * day), []int{2}},
		{"two-week shifts, before anchor", biweekly, anchor.Add(-time.Hour), []int{2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustOnCall(t, tc.s, tc.at); !equalIDs(got, tc.want) {
				t.Errorf("OnCall(%s) = %v, want %v", tc.at, got, tc.want)
			}
		})
	}
}

func TestLayersCoverLowerOnes(t *testing.T) {
	weekdays := make([]Restriction, 0, 5)
	for d := time.Monday; d <= time.Friday; d++ {
		weekdays = append(weekdays, Restriction{StartDay: d, StartMinute: 9 * 60, DurationMinutes: 8 * 60})
	}
	s := Schedule{TimeZone: "UTC", Layers: []Layer{
		{Name: "base", ShiftLength: 1, ShiftUnit: UnitWeeks, HandoffAt: utc(2026, 1, 5, 0, 0), ParticipantIDs: []int{1, 2}},
		{Name: "business hours", ShiftLength: 1, ShiftUnit: UnitDays, HandoffAt: utc(2026, 1, 5, 9, 0), ParticipantIDs: []int{10, 11}, Restrictions: weekdays},
		{Name: "empty top", ShiftLength: 1, ShiftUnit: UnitDays, HandoffAt: utc(2026, 1, 5, 9, 0)},
	}}
	tests := []struct {
		name string
		at   time.Time
		want []int
	}{
		{"Monday business hours, top layer", utc(2026, 1, 5, 10, 0), []int{10}},
		{"Tuesday business hours, top layer rotates", utc(2026, 1, 6, 16, 59), []int{11}},
		{"Monday evening, base", utc(2026, 1, 5, 17, 0), []int{1}},
		{"Monday early morning, base", utc(2026, 1, 5, 8, 59), []int{1}},
		{"Saturday, base", utc(2026, 1, 10, 12, 0), []int{1}},
		{"next week, base rotates", utc(2026, 1, 12, 8, 0), []int{2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustOnCall(t, s, tc.at); !equalIDs(got, tc.want) {
				t.Errorf("OnCall(%s) = %v, want %v", tc.at, got, tc.want)
			}
		})
	}
}
