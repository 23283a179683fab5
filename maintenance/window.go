package maintenance

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/oncall"
)

// Window is a maintenance window as stored.
//
// A window without a recurrence covers [StartsAt, EndsAt). A window with
// one covers each weekly occurrence (from the local start time on each
// weekday, for the duration) as far as it lies within [StartsAt, EndsAt);
// EndsAt nil means it recurs for good. An occurrence that began before
// StartsAt covers only from StartsAt on, and one running past EndsAt ends
// at EndsAt.
type Window struct {
	bun.BaseModel `bun:"table:maintenance_windows"`

	ID       int        `bun:"id,pk,autoincrement"`
	Name     string     `bun:"name"`
	StartsAt time.Time  `bun:"starts_at"`
	EndsAt   *time.Time `bun:"ends_at"`
	// The recurrence's columns, all empty for a one-off window; see
	// Recurrence.
	RecurWeekdays        string `bun:"recurrence_weekdays,nullzero"`
	RecurStartTime       string `bun:"recurrence_start_time,nullzero"`
	RecurDurationMinutes int    `bun:"recurrence_duration_minutes,nullzero"`
	RecurTimeZone        string `bun:"recurrence_time_zone,nullzero"`
	// PageOpenAlertsAfter starts paging, when the window ends, for the
	// alerts it held back that are still open.
	PageOpenAlertsAfter bool      `bun:"page_open_alerts_after"`
	CreatedAt           time.Time `bun:"created_at"`
	UpdatedAt           time.Time `bun:"updated_at"`

	IntegrationIDs []int `bun:"-"`
	// recurrence is the parsed recurrence, nil for a one-off window.
	recurrence *Recurrence `bun:"-"`
}

// windowIntegration links a window to an integration it covers.
type windowIntegration struct {
	bun.BaseModel `bun:"table:maintenance_window_integrations"`

	WindowID      int `bun:"window_id,pk"`
	IntegrationID int `bun:"integration_id,pk"`
}

// Recurrence repeats a window weekly.
type Recurrence struct {
	// Weekdays the occurrences start on, in the zone, in week order.
	Weekdays []time.Weekday
	// StartHour and StartMinute are the local start time.
	StartHour, StartMinute int
	// Duration is elapsed time: an occurrence spanning a DST change lasts
	// as long as any other.
	Duration time.Duration
	Zone     *time.Location
}

const maxDurationMinutes = 7 * 24 * 60

// Recurrence returns the window's weekly recurrence, nil for a one-off
// window.
func (w *Window) Recurrence() *Recurrence { return w.recurrence }

// load parses the stored recurrence columns.
func (w *Window) load() error {
	if w.RecurWeekdays == "" {
		w.recurrence = nil
		return nil
	}
	r := &Recurrence{Duration: time.Duration(w.RecurDurationMinutes) * time.Minute}
	for _, s := range strings.Split(w.RecurWeekdays, ",") {
		d, err := strconv.Atoi(s)
		if err != nil || d < 0 || d > 6 {
			return fmt.Errorf("maintenance window %d has weekday %q", w.ID, s)
		}
		r.Weekdays = append(r.Weekdays, time.Weekday(d))
	}
	var err error
	if r.StartHour, r.StartMinute, err = ParseClock(w.RecurStartTime); err != nil {
		return fmt.Errorf("maintenance window %d: %w", w.ID, err)
	}
	if r.Zone, err = oncall.LoadZone(w.RecurTimeZone); err != nil {
		return fmt.Errorf("maintenance window %d: time zone: %w", w.ID, err)
	}
	w.recurrence = r
	return nil
}

// ParseClock reads a local time "HH:MM", 00:00 to 23:59.
func ParseClock(s string) (hour, minute int, err error) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, 0, fmt.Errorf("start time %q is not HH:MM", s)
	}
	return t.Hour(), t.Minute(), nil
}

// ActiveAt reports whether the window covers instant t, and if so until
// when: the end of the covering occurrence (the latest, where occurrences
// overlap), cut at EndsAt.
func (w *Window) ActiveAt(t time.Time) (until time.Time, ok bool) {
	if t.Before(w.StartsAt) || (w.EndsAt != nil && !t.Before(*w.EndsAt)) {
		return time.Time{}, false
	}
	r := w.recurrence
	if r == nil {
		if w.EndsAt == nil {
			return time.Time{}, false
		}
		return *w.EndsAt, true
	}
	local := t.In(r.Zone)
	// An occurrence covering t started at most Duration before it, so on
	// one of the local days from that far back up to t's own (one more
	// for the hour a DST change moves the clock by).
	back := int(r.Duration/(24*time.Hour)) + 1
	for i := back; i >= 0; i-- {
		day := time.Date(local.Year(), local.Month(), local.Day()-i, 12, 0, 0, 0, time.UTC)
		if !slices.Contains(r.Weekdays, day.Weekday()) {
			continue
		}
		start := oncall.WallClock(day.Year(), day.Month(), day.Day(), r.StartHour, r.StartMinute, 0, 0, r.Zone)
		end := start.Add(r.Duration)
		if !t.Before(start) && t.Before(end) && end.After(until) {
			until, ok = end, true
		}
	}
	if ok && w.EndsAt != nil && w.EndsAt.Before(until) {
		until = *w.EndsAt
	}
	return until, ok
}

// Active is the window of windows that covers t and lasts longest, and
// until when it does; nil when none covers t.
func Active(windows []*Window, t time.Time) (*Window, time.Time) {
	var best *Window
	var bestUntil time.Time
	for _, w := range windows {
		if until, ok := w.ActiveAt(t); ok && (best == nil || until.After(bestUntil)) {
			best, bestUntil = w, until
		}
	}
	return best, bestUntil
}
