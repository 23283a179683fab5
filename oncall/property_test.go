package oncall

import (
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"
)

var propertyZones = []string{
	"UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Adelaide",
	"Australia/Lord_Howe", "Asia/Kathmandu", "America/St_Johns", "Pacific/Chatham",
	"America/Sao_Paulo", "America/Santiago",
}

func randomSchedule(r *rand.Rand, around time.Time) Schedule {
	s := Schedule{TimeZone: propertyZones[r.IntN(len(propertyZones))]}
	for range 1 + r.IntN(3) {
		l := Layer{HandoffAt: around.Add(time.Duration(r.Int64N(int64(4*365*24*time.Hour))) - 2*365*24*time.Hour)}
		if r.IntN(4) == 0 { // odd seconds and nanoseconds too
			l.HandoffAt = l.HandoffAt.Add(time.Duration(r.Int64N(int64(time.Hour))))
		} else {
			l.HandoffAt = l.HandoffAt.Truncate(15 * time.Minute)
		}
		switch r.IntN(3) {
		case 0:
			l.ShiftUnit, l.ShiftLength = UnitHours, 1+r.IntN(48)
		case 1:
			l.ShiftUnit, l.ShiftLength = UnitDays, 1+r.IntN(10)
		default:
			l.ShiftUnit, l.ShiftLength = UnitWeeks, 1+r.IntN(3)
		}
		for range r.IntN(5) {
			l.ParticipantIDs = append(l.ParticipantIDs, 1+r.IntN(6))
		}
		for range r.IntN(4) {
			l.Restrictions = append(l.Restrictions, Restriction{
				StartDay:        time.Weekday(r.IntN(7)),
				StartMinute:     r.IntN(minutesPerDay),
				DurationMinutes: 1 + r.IntN(minutesPerWeek),
			})
		}
		s.Layers = append(s.Layers, l)
	}
	for range r.IntN(4) {
		start := around.Add(time.Duration(r.Int64N(int64(18*24*time.Hour))) - 2*24*time.Hour)
		o := Override{
			UserID: 1 + r.IntN(8),
			Start:  start,
			End:    start.Add(time.Minute + time.Duration(r.Int64N(int64(3*24*time.Hour)))),
		}
		if r.IntN(2) == 0 {
			o.ReplaceUserID = 1 + r.IntN(6)
		}
		s.Overrides = append(s.Overrides, o)
	}
	return s
}

// TestShiftsMatchOnCall checks Shifts against OnCall on random schedules,
// including a brute-force scan every 15 minutes that does not rely on the
// boundaries Shifts collects.
func TestShiftsMatchOnCall(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const window = 14 * 24 * time.Hour
	// Windows spread over the year so many cross a DST transition.
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 200 {
		from := base.Add(time.Duration(r.Int64N(int64(365 * 24 * time.Hour)))).Truncate(time.Minute)
		to := from.Add(window)
		s := randomSchedule(r, from)
		if err := s.Validate(); err != nil {
			t.Fatalf("schedule %d invalid: %v", i, err)
		}
		shifts := mustShifts(t, s, from, to)
		onCall := func(at time.Time) []int { return mustOnCall(t, s, at) }
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("schedule %d %+v, window %s: "+format, append([]any{i, s, from}, args...)...)
		}

		for j, sh := range shifts {
			if !sh.Start.Before(sh.End) || sh.Start.Before(from) || sh.End.After(to) {
				fail("shift %d %v out of order or window", j, sh)
			}
			if len(sh.UserIDs) == 0 || !slices.IsSorted(sh.UserIDs) || len(slices.Compact(slices.Clone(sh.UserIDs))) != len(sh.UserIDs) {
				fail("shift %d ids %v not sorted, distinct and non-empty", j, sh.UserIDs)
			}
			if j > 0 {
				prev := shifts[j-1]
				if sh.Start.Before(prev.End) {
					fail("shift %d overlaps the previous one", j)
				}
				if sh.Start.Equal(prev.End) && equalIDs(sh.UserIDs, prev.UserIDs) {
					fail("shift %d should have merged with the previous one", j)
				}
			}
			mid := sh.Start.Add(sh.End.Sub(sh.Start) / 2)
			for _, at := range []time.Time{sh.Start, mid, sh.End.Add(-1)} {
				if got := onCall(at); !equalIDs(got, sh.UserIDs) {
					fail("OnCall(%s) = %v, shift %d says %v", at, got, j, sh.UserIDs)
				}
			}
		}

		covering := func(at time.Time) []int {
			k := sort.Search(len(shifts), func(k int) bool { return shifts[k].End.After(at) })
			if k < len(shifts) && !shifts[k].Start.After(at) {
				return shifts[k].UserIDs
			}
			return nil
		}
		for at := from; at.Before(to); at = at.Add(15 * time.Minute) {
			if got, want := onCall(at), covering(at); !equalIDs(got, want) {
				fail("brute force: OnCall(%s) = %v, Shifts say %v", at, got, want)
			}
		}
		for range 50 {
			at := from.Add(time.Duration(r.Int64N(int64(window))))
			if got, want := covering(at), onCall(at); !equalIDs(got, want) {
				fail("random instant %s: OnCall %v, Shifts say %v", at, want, got)
			}
		}

		// Clipping: two halves glued together give the whole window.
		mid := from.Add(time.Duration(r.Int64N(int64(window))))
		glued := append(mustShifts(t, s, from, mid), mustShifts(t, s, mid, to)...)
		for k := 1; k < len(glued); k++ {
			if glued[k].Start.Equal(glued[k-1].End) && equalIDs(glued[k].UserIDs, glued[k-1].UserIDs) {
				glued[k-1].End = glued[k].End
				glued = slices.Delete(glued, k, k+1)
				k--
			}
		}
		if !slices.EqualFunc(glued, shifts, func(a, b Shift) bool {
			return a.Start.Equal(b.Start) && a.End.Equal(b.End) && equalIDs(a.UserIDs, b.UserIDs)
		}) {
			fail("Shifts split at %s and glued differ from the whole", mid)
		}

		// NextChange never skips a real change.
		var changes []time.Time
		for j, sh := range shifts {
			if j == 0 || !sh.Start.Equal(shifts[j-1].End) {
				changes = append(changes, sh.Start)
			}
			changes = append(changes, sh.End)
		}
		for range 10 {
			at := from.Add(time.Duration(r.Int64N(int64(window))))
			next, err := s.NextChange(at)
			if err != nil {
				fail("NextChange: %v", err)
			}
			k := sort.Search(len(changes), func(k int) bool { return changes[k].After(at) })
			if k == len(changes) || !changes[k].Before(to) {
				continue
			}
			if next.IsZero() || !next.After(at) || next.After(changes[k]) {
				fail("NextChange(%s) = %s, but the set changes at %s", at, next, changes[k])
			}
		}
	}
}

// TestNoPanic feeds extreme and invalid values to every entry point.
func TestNoPanic(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	extremes := []time.Time{
		{}, time.Unix(0, 0), time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(-10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(200000, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	ints := []int{-1 << 62, -1, 0, 1, 7, 1439, 1440, 10080, 87840, 1 << 62}
	pick := func() int { return ints[r.IntN(len(ints))] }
	for range 300 {
		s := Schedule{TimeZone: propertyZones[r.IntN(len(propertyZones))]}
		for range 1 + r.IntN(2) {
			s.Layers = append(s.Layers, Layer{
				ShiftLength: pick(), ShiftUnit: []ShiftUnit{UnitHours, UnitDays, UnitWeeks, "X"}[r.IntN(4)],
				HandoffAt:      extremes[r.IntN(len(extremes))],
				ParticipantIDs: []int{pick(), 1},
				Restrictions:   []Restriction{{StartDay: time.Weekday(pick()), StartMinute: pick(), DurationMinutes: pick()}},
			})
		}
		s.Overrides = []Override{{UserID: pick(), ReplaceUserID: pick(), Start: extremes[r.IntN(len(extremes))], End: extremes[r.IntN(len(extremes))]}}
		at := extremes[r.IntN(len(extremes))]
		_ = s.Validate()
		_, _ = s.OnCall(at)
		_, _ = s.Shifts(at, at.Add(time.Duration(r.Int64N(int64(400*24*time.Hour)))))
		_, _ = s.NextChange(at)
	}
}
