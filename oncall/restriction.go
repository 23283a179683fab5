package oncall

import "time"

// Windows are identified by the civil day number (see civilDay) of the
// local date they start on, which always falls on the restriction's
// StartDay. Working with dates rather than instants keeps every window a
// wall-clock window: each is computed independently with wallClock, so DST
// stretches or shrinks it exactly as it does the local clock, and an edge
// on a skipped or repeated time follows the same rule as a hand-off.

// window returns the instants bounding r's window that starts on day.
func (r Restriction) window(day int64, loc *time.Location) (start, end time.Time) {
	y, m, d := dayDate(day)
	start = wallClock(y, m, d, 0, r.StartMinute, 0, 0, loc)
	end = wallClock(y, m, d, 0, r.StartMinute+r.DurationMinutes, 0, 0, loc)
	return start, end
}

// lastStartDay is the latest date on or before day falling on r.StartDay.
func (r Restriction) lastStartDay(day int64) int64 {
	wd := int64(dayWeekday(day))
	return day - floorMod(wd-int64(r.StartDay), 7)
}

// activeAt reports whether t lies in any window of rs. A window lasts at
// most a week plus a DST hour or two, so only the window starting on the
// last StartDay on or before t's local date, the one before it, or the one
// after it (a fall-back across midnight can show t on the date before its
// window's) can contain t.
func activeAt(rs []Restriction, t time.Time, loc *time.Location) bool {
	if len(rs) == 0 {
		return true
	}
	today := civilDay(t.In(loc))
	for _, r := range rs {
		base := r.lastStartDay(today)
		for _, day := range [...]int64{base - 7, base, base + 7} {
			start, end := r.window(day, loc)
			if !t.Before(start) && t.Before(end) {
				return true
			}
		}
	}
	return false
}

// restrictionEdges calls add with every window edge that may lie in
// (from, to); callers filter, so extra instants are harmless.
func restrictionEdges(rs []Restriction, from, to time.Time, loc *time.Location, add func(time.Time)) {
	first := civilDay(from.In(loc)) - 14
	last := civilDay(to.In(loc)) + 7
	for _, r := range rs {
		for day := r.lastStartDay(first); day <= last; day += 7 {
			start, end := r.window(day, loc)
			add(start)
			add(end)
		}
	}
}

// nextRestrictionEdge is the earliest window edge strictly after t, or the
// zero time if rs is empty.
func nextRestrictionEdge(rs []Restriction, t time.Time, loc *time.Location) time.Time {
	var next time.Time
	today := civilDay(t.In(loc))
	for _, r := range rs {
		base := r.lastStartDay(today)
		for _, day := range [...]int64{base - 7, base, base + 7, base + 14} {
			start, end := r.window(day, loc)
			next = earliestAfter(next, start, t)
			next = earliestAfter(next, end, t)
		}
	}
	return next
}

// earliestAfter returns the earlier of cur and c, ignoring c unless it is
// after t; a zero cur means none yet.
func earliestAfter(cur, c, t time.Time) time.Time {
	if !c.After(t) {
		return cur
	}
	if cur.IsZero() || c.Before(cur) {
		return c
	}
	return cur
}

func dayDate(day int64) (int, time.Month, int) {
	return time.Unix(day*86400, 0).UTC().Date()
}

func dayWeekday(day int64) time.Weekday {
	// Day 0 is 1970-01-01, a Thursday.
	return time.Weekday(floorMod(day+int64(time.Thursday), 7))
}
