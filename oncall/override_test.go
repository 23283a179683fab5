package oncall

import (
	"testing"
	"time"
)

func TestOverrides(t *testing.T) {
	// User 1 is on call 2026-01-05 09:00 to 2026-01-06 09:00, then user 2.
	base := daily(1, 2)
	at := utc(2026, 1, 5, 12, 0)
	ov := func(user, replace int, from, to int) Override {
		return Override{UserID: user, ReplaceUserID: replace, Start: utc(2026, 1, 5, from, 0), End: utc(2026, 1, 5, to, 0)}
	}
	along := func(user int, from, to int) Override {
		return Override{UserID: user, Alongside: true, Start: utc(2026, 1, 5, from, 0), End: utc(2026, 1, 5, to, 0)}
	}
	tests := []struct {
		name      string
		overrides []Override
		at        time.Time
		want      []int
	}{
		{"none", nil, at, []int{1}},
		{"replace everyone", []Override{ov(7, 0, 10, 14)}, at, []int{7}},
		{"replace everyone, at end", []Override{ov(7, 0, 10, 12)}, at, []int{1}},
		{"replace everyone, at start", []Override{ov(7, 0, 12, 13)}, at, []int{7}},
		{"two replace everyone", []Override{ov(8, 0, 10, 14), ov(7, 0, 11, 13)}, at, []int{7, 8}},
		{"replace everyone twice with the same user", []Override{ov(7, 0, 10, 14), ov(7, 0, 11, 13)}, at, []int{7}},
		{"replace everyone beats replace one", []Override{ov(5, 1, 10, 14), ov(7, 0, 11, 13)}, at, []int{7}},
		{"replace one", []Override{ov(5, 1, 10, 14)}, at, []int{5}},
		{"replace one, other user on call", []Override{ov(5, 2, 10, 14)}, at, []int{1}},
		{"replace someone not on call", []Override{ov(5, 3, 10, 14)}, at, []int{1}},
		{"replace self", []Override{ov(1, 1, 10, 14)}, at, []int{1}},
		{"chain in start order", []Override{ov(5, 1, 10, 14), ov(6, 5, 11, 13)}, at, []int{6}},
		{"later start applies later", []Override{ov(6, 5, 9, 13), ov(5, 1, 10, 14)}, at, []int{5}},
		{"same start, slice order", []Override{ov(5, 1, 10, 14), ov(6, 5, 10, 14)}, at, []int{6}},
		{"same start, reversed slice order", []Override{ov(6, 5, 10, 14), ov(5, 1, 10, 14)}, at, []int{5}},
		{"inactive override", []Override{ov(5, 1, 13, 14)}, at, []int{1}},
		{"alongside", []Override{along(5, 10, 14)}, at, []int{1, 5}},
		{"alongside the one on call", []Override{along(1, 10, 14)}, at, []int{1}},
		{"alongside, inactive", []Override{along(5, 13, 14)}, at, []int{1}},
		{"alongside survives replace everyone", []Override{along(5, 10, 14), ov(7, 0, 11, 13)}, at, []int{5, 7}},
		{"alongside is not replaced", []Override{along(5, 10, 14), ov(6, 5, 11, 13)}, at, []int{1, 5}},
		{"alongside a replacement", []Override{ov(6, 1, 11, 13), along(5, 10, 14)}, at, []int{5, 6}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			s.Overrides = tc.overrides
			if got := mustOnCall(t, s, tc.at); !equalIDs(got, tc.want) {
				t.Errorf("OnCall = %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("replace everyone without layers", func(t *testing.T) {
		s := Schedule{TimeZone: "UTC", Overrides: []Override{ov(7, 0, 10, 14)}}
		if got := mustOnCall(t, s, at); !equalIDs(got, []int{7}) {
			t.Errorf("OnCall = %v, want [7]", got)
		}
	})
	t.Run("does not reorder the caller's overrides", func(t *testing.T) {
		s := base
		s.Overrides = []Override{ov(6, 5, 11, 13), ov(5, 1, 10, 14)}
		mustOnCall(t, s, at)
		if s.Overrides[0].UserID != 6 {
			t.Error("Overrides slice was modified")
		}
	})
}

func TestAlongsideInShifts(t *testing.T) {
	s := daily(1, 2)
	s.Overrides = []Override{{UserID: 5, Alongside: true, Start: utc(2026, 1, 5, 10, 0), End: utc(2026, 1, 5, 12, 0)}}
	got := mustShifts(t, s, utc(2026, 1, 5, 9, 0), utc(2026, 1, 5, 13, 0))
	want := []Shift{
		{Start: utc(2026, 1, 5, 9, 0), End: utc(2026, 1, 5, 10, 0), UserIDs: []int{1}},
		{Start: utc(2026, 1, 5, 10, 0), End: utc(2026, 1, 5, 12, 0), UserIDs: []int{1, 5}},
		{Start: utc(2026, 1, 5, 12, 0), End: utc(2026, 1, 5, 13, 0), UserIDs: []int{1}},
	}
	if len(got) != len(want) {
		t.Fatalf("Shifts = %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].Start.Equal(want[i].Start) || !got[i].End.Equal(want[i].End) || !equalIDs(got[i].UserIDs, want[i].UserIDs) {
			t.Fatalf("Shifts = %v, want %v", got, want)
		}
	}
	s.Overrides[0].ReplaceUserID = 2
	if _, err := s.OnCall(utc(2026, 1, 5, 11, 0)); err == nil {
		t.Fatal("an override both alongside and replacing someone was accepted")
	}
}
