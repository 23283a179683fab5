package oncall

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"
)

// A second, deliberately simple model of a schedule, written from the
// documented rules alone and sharing no code with the package, to check the
// package against.
//
// It rests on one observation: "the first instant at which the local clock
// reads W or later" is at or before t exactly when the highest reading the
// clock has shown up to t is W or later. The model keeps that high-water
// mark minute by minute and answers every wall-clock question with a
// comparison against it, never building an instant from a wall-clock time.
//
// Readings are wall-clock times stored as UTC times, so they compare and
// subtract as plain calendar values. The model assumes every zone offset is
// a whole number of minutes and changes at whole minutes (true of every
// zone it is run with, and checked), and that no transition sets the clock
// back by more than modelLookBack.
type model struct {
	s    Schedule
	loc  *time.Location
	from time.Time
	// high[i] is the highest reading up to and including from+i minutes.
	high []time.Time
}

const modelLookBack = 6 * time.Hour

func newModel(t *testing.T, s Schedule, from, to time.Time) *model {
	t.Helper()
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		t.Fatalf("model: zone %q: %v", s.TimeZone, err)
	}
	m := &model{s: s, loc: loc, from: from}
	// Within a minute the reading only rises, so the highest reading in
	// (a, a+1min] is at its end or in the last nanosecond before a
	// transition at its end.
	var high time.Time
	step := func(at time.Time) {
		for _, c := range []time.Time{at.Add(-time.Nanosecond), at} {
			if r := m.reading(t, c); r.After(high) {
				high = r
			}
		}
	}
	for at := from.Add(-modelLookBack); at.Before(from); at = at.Add(time.Minute) {
		step(at)
	}
	for at := from; !at.After(to); at = at.Add(time.Minute) {
		step(at)
		m.high = append(m.high, high)
	}
	return m
}

func (m *model) reading(t *testing.T, at time.Time) time.Time {
	l := at.In(m.loc)
	if _, off := l.Zone(); off%60 != 0 {
		t.Fatalf("model: %s has an offset of %ds, not whole minutes", m.s.TimeZone, off)
	}
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// highAt is the highest reading up to at, which must lie in the model's
// window. No transition falls strictly inside a minute, so the reading
// rises steadily from the last whole minute to at.
func (m *model) highAt(t *testing.T, at time.Time) time.Time {
	i := int(at.Truncate(time.Minute).Sub(m.from) / time.Minute)
	if i < 0 || i >= len(m.high) {
		t.Fatalf("model: %s is outside its window", at)
	}
	h := m.high[i]
	if r := m.reading(t, at); r.After(h) {
		h = r
	}
	return h
}

func modelFloorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func modelMod(a, b int64) int64 { return a - b*modelFloorDiv(a, b) }

// shift is the number of the shift of l that holds at: shift 0 starts at
// HandoffAt, and shift k of a DAYS or WEEKS layer at the first instant the
// clock reads HandoffAt's reading plus k days or weeks.
func (m *model) shift(t *testing.T, l Layer, at, high time.Time) int64 {
	if l.ShiftUnit == UnitHours {
		return modelFloorDiv(int64(at.Sub(l.HandoffAt)), int64(time.Duration(l.ShiftLength)*time.Hour))
	}
	days := l.ShiftLength
	if l.ShiftUnit == UnitWeeks {
		days *= 7
	}
	k := modelFloorDiv(int64(high.Sub(m.reading(t, l.HandoffAt))), int64(time.Duration(days)*24*time.Hour))
	// HandoffAt is an instant: when its reading occurs twice, the clock
	// may have reached the reading before HandoffAt itself.
	if k == 0 && at.Before(l.HandoffAt) {
		k = -1
	}
	return k
}

// active reports whether a window of l holds: one started (the clock has
// read its start) and has not ended (the clock has not yet read its end).
func (m *model) active(l Layer, high time.Time) bool {
	if len(l.Restrictions) == 0 {
		return true
	}
	week := int64(high.Weekday())*1440 + int64(high.Hour())*60 + int64(high.Minute())
	for _, r := range l.Restrictions {
		if modelMod(week-int64(r.StartDay)*1440-int64(r.StartMinute), 7*1440) < int64(r.DurationMinutes) {
			return true
		}
	}
	return false
}

func (m *model) onCall(t *testing.T, at time.Time) []int {
	high := m.highAt(t, at)
	var set []int
	for i := len(m.s.Layers) - 1; i >= 0; i-- {
		l := m.s.Layers[i]
		if len(l.ParticipantIDs) == 0 || !m.active(l, high) {
			continue
		}
		k := m.shift(t, l, at, high)
		set = []int{l.ParticipantIDs[modelMod(k, int64(len(l.ParticipantIDs)))]}
		break
	}
	in := func(o Override) bool { return !at.Before(o.Start) && at.Before(o.End) }
	var everyone, alongside []int
	var one []Override
	for _, o := range m.s.Overrides {
		switch {
		case !in(o):
		case o.Alongside:
			alongside = append(alongside, o.UserID)
		case o.ReplaceUserID == 0:
			everyone = append(everyone, o.UserID)
		default:
			one = append(one, o)
		}
	}
	if everyone != nil {
		set = everyone
	} else {
		// Replace-one overrides apply in order of start, ties in the
		// schedule's order.
		sort.SliceStable(one, func(i, j int) bool { return one[i].Start.Before(one[j].Start) })
		for _, o := range one {
			for i, id := range set {
				if id == o.ReplaceUserID {
					set[i] = o.UserID
				}
			}
		}
	}
	set = append(set, alongside...)
	if len(set) == 0 {
		return nil
	}
	slices.Sort(set)
	return slices.Compact(set)
}

// timeline is the model's answer to Shifts. A hand-off happens when the
// reading reaches a value or at a transition, so at HandoffAt's offset
// within a minute or on a whole minute; restriction edges on whole
// minutes; override edges where they are. Evaluating at all of those is
// evaluating wherever the answer can change.
func (m *model) timeline(t *testing.T, from, to time.Time) []Shift {
	phases := []time.Duration{0}
	for _, l := range m.s.Layers {
		phases = append(phases, l.HandoffAt.Sub(l.HandoffAt.Truncate(time.Minute)))
	}
	slices.Sort(phases)
	phases = slices.Compact(phases)
	points := []time.Time{from}
	for at := from.Truncate(time.Minute); at.Before(to); at = at.Add(time.Minute) {
		for _, p := range phases {
			points = append(points, at.Add(p))
		}
	}
	for _, o := range m.s.Overrides {
		points = append(points, o.Start, o.End)
	}
	points = slices.DeleteFunc(points, func(p time.Time) bool { return p.Before(from) || !p.Before(to) })
	slices.SortFunc(points, time.Time.Compare)
	points = slices.CompactFunc(points, time.Time.Equal)

	var out []Shift
	for i, p := range points {
		end := to
		if i+1 < len(points) {
			end = points[i+1]
		}
		set := m.onCall(t, p)
		switch {
		case set == nil:
		case len(out) > 0 && out[len(out)-1].End.Equal(p) && equalIDs(out[len(out)-1].UserIDs, set):
			out[len(out)-1].End = end.UTC()
		default:
			out = append(out, Shift{Start: p.UTC(), End: end.UTC(), UserIDs: set})
		}
	}
	return out
}

// modelZones have transitions east and west of UTC, at half and quarter
// hours, of half an hour and of two hours, at midnight, and none at all.
var modelZones = []string{
	"UTC", "Europe/Berlin", "America/New_York", "America/St_Johns", "Asia/Kolkata",
	"Australia/Sydney", "Australia/Lord_Howe", "Pacific/Chatham", "America/Santiago",
	"America/Havana", "Asia/Beirut", "Africa/Casablanca", "Antarctica/Troll",
	"Asia/Kathmandu", "America/Sao_Paulo", "Europe/London", "America/Los_Angeles",
}

// modelCase is a random schedule and a three-day window, most often
// around one of the zone's transitions, with hand-offs, restrictions and
// override edges drawn towards the local times that transition skips or
// repeats.
func modelCase(r *rand.Rand) (Schedule, time.Time, time.Time) {
	zone := modelZones[r.IntN(len(modelZones))]
	loc, _ := time.LoadLocation(zone)
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(3 * 365 * 24 * time.Hour))))
	// The transition: the end of the zone period holding at, if any.
	pivot := at
	if _, end := at.In(loc).ZoneBounds(); !end.IsZero() && end.Sub(at) < 400*24*time.Hour && r.IntN(5) > 0 {
		pivot = end
	}
	from := pivot.Add(-time.Duration(r.Int64N(int64(60 * time.Hour)))).Truncate(time.Minute)
	to := from.Add(72 * time.Hour)
	near := func() time.Time { // an instant up to two hours from the pivot
		return pivot.Add(time.Duration(r.Int64N(int64(4*time.Hour))) - 2*time.Hour)
	}
	tidy := func(t time.Time) time.Time { // whole quarter hours, minutes, or anything
		switch r.IntN(4) {
		case 0:
			return t.Truncate(15 * time.Minute)
		case 1:
			return t.Truncate(time.Minute)
		case 2:
			return t.Truncate(time.Second)
		}
		return t
	}

	s := Schedule{TimeZone: zone}
	for range 1 + r.IntN(3) {
		var l Layer
		switch r.IntN(3) {
		case 0: // far away
			l.HandoffAt = at.Add(time.Duration(r.Int64N(int64(4*365*24*time.Hour))) - 2*365*24*time.Hour)
		case 1: // in the window, maybe in a skipped or repeated hour
			l.HandoffAt = near()
		default: // the same local time some days or weeks earlier or later
			l.HandoffAt = near().In(loc).AddDate(0, 0, r.IntN(200)-100)
		}
		l.HandoffAt = tidy(l.HandoffAt)
		switch r.IntN(3) {
		case 0:
			l.ShiftUnit, l.ShiftLength = UnitHours, 1+r.IntN(48)
		case 1:
			l.ShiftUnit, l.ShiftLength = UnitDays, 1+r.IntN(4)
		default:
			l.ShiftUnit, l.ShiftLength = UnitWeeks, 1+r.IntN(2)
		}
		for range r.IntN(5) {
			l.ParticipantIDs = append(l.ParticipantIDs, 1+r.IntN(6))
		}
		for range r.IntN(4) {
			rs := Restriction{
				StartDay:        time.Weekday(r.IntN(7)),
				StartMinute:     r.IntN(minutesPerDay),
				DurationMinutes: 1 + r.IntN(minutesPerWeek),
			}
			if r.IntN(2) == 0 { // an edge near the transition, on its local day
				n := near().In(loc)
				rs.StartDay, rs.StartMinute = n.Weekday(), n.Hour()*60+n.Minute()
				rs.DurationMinutes = 1 + r.IntN(180)
				if r.IntN(2) == 0 { // or the window ends there
					rs.DurationMinutes = 1 + r.IntN(12*60)
					start := rs.StartMinute - rs.DurationMinutes
					rs.StartDay = time.Weekday(modelMod(int64(rs.StartDay)+modelFloorDiv(int64(start), minutesPerDay), 7))
					rs.StartMinute = int(modelMod(int64(start), minutesPerDay))
				}
			}
			l.Restrictions = append(l.Restrictions, rs)
		}
		s.Layers = append(s.Layers, l)
	}
	for range r.IntN(4) {
		start := tidy(from.Add(time.Duration(r.Int64N(int64(to.Sub(from))))))
		o := Override{UserID: 1 + r.IntN(8), Start: start, End: tidy(start.Add(time.Duration(1 + r.Int64N(int64(36*time.Hour)))))}
		if !o.End.After(o.Start) {
			o.End = o.Start.Add(time.Minute)
		}
		switch r.IntN(5) {
		case 0, 1:
			o.ReplaceUserID = 1 + r.IntN(6)
		case 2:
			o.Alongside = true
		}
		s.Overrides = append(s.Overrides, o)
	}
	return s, from, to
}

// modelSettings reads how many random schedules to check, and from which
// seed, from KLAXON_ONCALL_MODEL_RUNS and KLAXON_ONCALL_MODEL_SEED; by
// default a quick, fixed run.
func modelSettings(t *testing.T) (runs int, seed uint64) {
	runs, seed = 100, 1
	if v := os.Getenv("KLAXON_ONCALL_MODEL_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("KLAXON_ONCALL_MODEL_RUNS=%q: want a positive number of schedules", v)
		}
		runs = n
	}
	if v := os.Getenv("KLAXON_ONCALL_MODEL_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("KLAXON_ONCALL_MODEL_SEED=%q: want a non-negative integer", v)
		}
		seed = n
	}
	return runs, seed
}

// TestMatchesModel compares OnCall, Shifts and NextChange with the model on
// random schedules across DST transitions. See doc.go for a longer run.
func TestMatchesModel(t *testing.T) {
	runs, seed := modelSettings(t)
	for i := range runs {
		r := rand.New(rand.NewPCG(seed, uint64(i)))
		s, from, to := modelCase(r)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d, run %d: schedule %+v, window %s to %s: %s", seed, i, s, from, to, fmt.Sprintf(format, args...))
		}
		if err := s.Validate(); err != nil {
			fail("invalid: %v", err)
		}
		m := newModel(t, s, from, to)

		want := m.timeline(t, from, to)
		got, err := s.Shifts(from, to)
		if err != nil {
			fail("Shifts: %v", err)
		}
		if !slices.EqualFunc(got, want, func(a, b Shift) bool {
			return a.Start.Equal(b.Start) && a.End.Equal(b.End) && equalIDs(a.UserIDs, b.UserIDs)
		}) {
			fail("Shifts\n got %v\nwant %v", got, want)
		}

		var probes []time.Time
		for range 20 {
			probes = append(probes, from.Add(time.Duration(r.Int64N(int64(to.Sub(from))))))
		}
		for _, l := range s.Layers {
			if !l.HandoffAt.Before(from.Add(time.Nanosecond)) && l.HandoffAt.Before(to) {
				probes = append(probes, l.HandoffAt, l.HandoffAt.Add(-time.Nanosecond))
			}
		}
		for _, at := range probes {
			got, err := s.OnCall(at)
			if err != nil {
				fail("OnCall: %v", err)
			}
			if want := m.onCall(t, at); !equalIDs(got, want) {
				fail("OnCall(%s) = %v, model says %v", at, got, want)
			}
		}

		// NextChange may stop where nothing changes, but never later than
		// a real change.
		for _, at := range probes[:5] {
			next, err := s.NextChange(at)
			if err != nil {
				fail("NextChange: %v", err)
			}
			k := sort.Search(len(want), func(k int) bool { return want[k].End.After(at) })
			var change time.Time
			switch {
			case k < len(want) && want[k].Start.After(at):
				change = want[k].Start
			case k < len(want) && want[k].End.Before(to):
				change = want[k].End
			}
			if !change.IsZero() && (next.IsZero() || !next.After(at) || next.After(change)) {
				fail("NextChange(%s) = %s, but the set changes at %s", at, next, change)
			}
		}
	}
}
