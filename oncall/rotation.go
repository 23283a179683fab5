package oncall

import "time"

// rotation finds the shift containing an instant. Shift k is
// [boundary(k), boundary(k+1)); shift 0 starts at the anchor.
type rotation struct {
	loc *time.Location
	// Set for HOURS: fixed-length shifts in absolute time. Whole seconds,
	// so the anchor's sub-second part never affects which shift t is in.
	hours      bool
	anchorUnix int64
	anchorNsec int
	stepSecs   int64
	// Set for DAYS and WEEKS: the anchor itself, which is always exactly
	// boundary(0), and its local wall clock, to which stepDays days are
	// added per shift.
	anchor                    time.Time
	year                      int
	month                     time.Month
	day, hour, min, sec, nsec int
	anchorDay                 int64 // civil day number of the local anchor date
	stepDays                  int64
}

func newRotation(l Layer, loc *time.Location) rotation {
	r := rotation{loc: loc}
	n := int64(l.ShiftLength)
	if l.ShiftUnit == UnitHours {
		r.hours = true
		r.anchorUnix = l.HandoffAt.Unix()
		r.anchorNsec = l.HandoffAt.Nanosecond()
		r.stepSecs = n * 3600
		return r
	}
	r.stepDays = n
	if l.ShiftUnit == UnitWeeks {
		r.stepDays = 7 * n
	}
	a := l.HandoffAt.In(loc)
	r.anchor = a
	r.year, r.month, r.day = a.Date()
	r.hour, r.min, r.sec = a.Clock()
	r.nsec = a.Nanosecond()
	r.anchorDay = civilDay(a)
	return r
}

// boundary is the start of shift k.
func (r *rotation) boundary(k int64) time.Time {
	if r.hours {
		return time.Unix(r.anchorUnix+k*r.stepSecs, int64(r.anchorNsec))
	}
	// The anchor's wall-clock reading may occur twice that day, and
	// HandoffAt names one of the two instants: rebuilding it from the
	// reading could pick the other.
	if k == 0 {
		return r.anchor
	}
	return wallClock(r.year, r.month, r.day+int(k*r.stepDays), r.hour, r.min, r.sec, r.nsec, r.loc)
}

// index returns k such that boundary(k) <= t < boundary(k+1).
func (r *rotation) index(t time.Time) int64 {
	if r.hours {
		secs := t.Unix() - r.anchorUnix
		if t.Nanosecond() < r.anchorNsec {
			secs--
		}
		return floorDiv(secs, r.stepSecs)
	}
	// The local date gives k to within one shift (a boundary on a skipped
	// time can move to the next date, a fall-back across midnight shows t
	// on the previous one, and HandoffAt may be the second of two
	// instants with its reading); the loops settle the rest. They are capped
	// so a pathological zone can never make them spin.
	k := floorDiv(civilDay(t.In(r.loc))-r.anchorDay, r.stepDays)
	for i := 0; i < 4 && r.boundary(k).After(t); i++ {
		k--
	}
	for i := 0; i < 4 && !r.boundary(k+1).After(t); i++ {
		k++
	}
	return k
}

// civilDay numbers t's calendar date (as shown in t's location)
// consecutively, so date differences ignore DST.
func civilDay(t time.Time) int64 {
	y, m, d := t.Date()
	return floorDiv(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix(), 86400)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}
