package oncall

import "time"

// maxZoneOffset bounds how far any zone's clock is from UTC. Real offsets
// stay within ±15 hours; the margin costs one or two more zone lookups.
const maxZoneOffset = 26 * time.Hour

// wallClock returns the instant at which a clock in loc first reads the
// given wall-clock time or later:
//
//   - a time that occurs once is that instant;
//   - a time that occurs twice (the hour a fall-back repeats) is its first
//     occurrence;
//   - a time that never occurs (the hour a spring-forward skips) is the
//     instant the clock jumps past it, the first instant of the new
//     offset, which the clock shows as the end of the gap.
//
// One sentence covers all three cases, the rule is the same in every zone,
// and it is monotonic: a later wall-clock time never gives an earlier
// instant, so hand-offs keep their order and a restriction window never
// ends before it starts. time.Date is not used because Go does not promise
// which instant it picks for such times, and in practice its choice depends
// on which side of UTC the zone lies. The day and clock values may be out
// of range; they are normalized like time.Date's.
func wallClock(year int, month time.Month, day, hour, min, sec, nsec int, loc *time.Location) time.Time {
	// The wall-clock reading as if it were a UTC instant: adding a zone
	// offset to an instant gives the reading its clock shows.
	wall := time.Date(year, month, day, hour, min, sec, nsec, time.UTC)
	// Zone periods in time order. Within one, the clock reads t+offset, so
	// its first instant reading wall or later is max(start, wall-offset),
	// if that is still inside the period. Periods ending before
	// wall-maxZoneOffset read less than wall throughout.
	p := wall.Add(-maxZoneOffset)
	for range 64 {
		local := p.In(loc)
		_, offset := local.Zone()
		start, end := local.ZoneBounds()
		c := wall.Add(-time.Duration(offset) * time.Second)
		if c.Before(start) {
			c = start
		}
		if end.IsZero() || c.Before(end) {
			return c.In(loc)
		}
		p = end
	}
	// Only a zone with dozens of transitions within two days gets here;
	// none exists.
	return time.Date(year, month, day, hour, min, sec, nsec, loc)
}
