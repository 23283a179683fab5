package oncall

import (
	"fmt"
	"slices"
	"time"
)

// Weekly is a span that recurs every week: it starts on each of Weekdays
// at the local time StartHour:StartMinute in Zone and lasts Duration of
// elapsed time. Starts are placed by WallClock's rule, so they keep their
// local time across DST changes like the schedules' hand-offs.
type Weekly struct {
	Weekdays               []time.Weekday
	StartHour, StartMinute int
	Duration               time.Duration
	Zone                   *time.Location
}

// Covering reports whether an occurrence covers t, and if so when the
// covering occurrence ends (the latest end, where occurrences overlap).
func (w Weekly) Covering(t time.Time) (end time.Time, ok bool) {
	local := t.In(w.Zone)
	// An occurrence covering t started at most Duration before it, so on
	// one of the local days from that far back up to t's own; one day
	// more covers the hour a DST change moves the clock by.
	back := int(w.Duration/(24*time.Hour)) + 1
	for i := back; i >= 0; i-- {
		day := time.Date(local.Year(), local.Month(), local.Day()-i, 12, 0, 0, 0, time.UTC)
		if !slices.Contains(w.Weekdays, day.Weekday()) {
			continue
		}
		start := wallClock(day.Year(), day.Month(), day.Day(), w.StartHour, w.StartMinute, 0, 0, w.Zone)
		e := start.Add(w.Duration)
		if !t.Before(start) && t.Before(e) && e.After(end) {
			end, ok = e, true
		}
	}
	return end, ok
}

// ParseClock reads a local time of day "HH:MM", 00:00 to 23:59.
func ParseClock(s string) (hour, minute int, err error) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, 0, fmt.Errorf("time of day %q is not HH:MM", s)
	}
	return t.Hour(), t.Minute(), nil
}
