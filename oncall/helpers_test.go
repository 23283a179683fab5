package oncall

import (
	"testing"
	"time"
)

func mustLoc(t testing.TB, zone string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatalf("load %s: %v", zone, err)
	}
	return loc
}

// utc is a UTC instant, for tests whose schedule zone is UTC.
func utc(y int, m time.Month, d, h, mi int) time.Time {
	return time.Date(y, m, d, h, mi, 0, 0, time.UTC)
}

func mustOnCall(t testing.TB, s Schedule, at time.Time) []int {
	t.Helper()
	got, err := s.OnCall(at)
	if err != nil {
		t.Fatalf("OnCall(%s): %v", at, err)
	}
	return got
}

func mustShifts(t testing.TB, s Schedule, from, to time.Time) []Shift {
	t.Helper()
	got, err := s.Shifts(from, to)
	if err != nil {
		t.Fatalf("Shifts(%s, %s): %v", from, to, err)
	}
	return got
}

func equalIDs(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// daily is a UTC schedule with one daily 09:00 rotation.
func daily(ids ...int) Schedule {
	return Schedule{
		TimeZone: "UTC",
		Layers: []Layer{{
			Name: "primary", ShiftLength: 1, ShiftUnit: UnitDays,
			HandoffAt: utc(2026, 1, 5, 9, 0), ParticipantIDs: ids,
		}},
	}
}
