package db

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/oncall"
)

// MaintenanceWindow is a span of time during which its integrations'
// alerts open as usual but nobody is paged. Package maintenance keeps the
// table; alerting reads it to hold back paging.
//
// A window without a recurrence covers [StartsAt, EndsAt). A window with
// one covers each weekly occurrence as far as it lies within [StartsAt,
// EndsAt); EndsAt nil means it recurs for good. An occurrence that began
// before StartsAt covers only from StartsAt on, and one running past
// EndsAt ends at EndsAt.
type MaintenanceWindow struct {
	bun.BaseModel `bun:"table:maintenance_windows"`

	ID   int    `bun:"id,pk,autoincrement"`
	Name string `bun:"name"`
	// TeamID owns it; nil is organisation-wide.
	TeamID   *int       `bun:"team_id"`
	StartsAt time.Time  `bun:"starts_at"`
	EndsAt   *time.Time `bun:"ends_at"`
	// The weekly recurrence, all empty for a one-off window: weekdays as
	// a comma-separated list of 0 (Sunday) to 6, the local start time
	// HH:MM, the duration and the IANA zone. See Recurrence.
	RecurWeekdays        string `bun:"recurrence_weekdays,nullzero"`
	RecurStartTime       string `bun:"recurrence_start_time,nullzero"`
	RecurDurationMinutes int    `bun:"recurrence_duration_minutes,nullzero"`
	RecurTimeZone        string `bun:"recurrence_time_zone,nullzero"`
	// PageOpenAlertsAfter starts paging, when the window ends, for the
	// alerts it held back that are still open.
	PageOpenAlertsAfter bool      `bun:"page_open_alerts_after"`
	CreatedAt           time.Time `bun:"created_at"`
	UpdatedAt           time.Time `bun:"updated_at"`

	// IntegrationIDs are the integrations it covers, in id order, where
	// the reader loaded them.
	IntegrationIDs []int `bun:"-"`
	recurrence     *oncall.Weekly
}

// Recurrence is the window's weekly recurrence, nil for a one-off window
// (or before LoadRecurrence).
func (w *MaintenanceWindow) Recurrence() *oncall.Weekly { return w.recurrence }

// LoadRecurrence parses the recurrence columns; readers call it after
// loading a row.
func (w *MaintenanceWindow) LoadRecurrence() error {
	if w.RecurWeekdays == "" {
		w.recurrence = nil
		return nil
	}
	r := &oncall.Weekly{Duration: time.Duration(w.RecurDurationMinutes) * time.Minute}
	for _, s := range strings.Split(w.RecurWeekdays, ",") {
		d, err := strconv.Atoi(s)
		if err != nil || d < 0 || d > 6 {
			return fmt.Errorf("maintenance window %d has weekday %q", w.ID, s)
		}
		r.Weekdays = append(r.Weekdays, time.Weekday(d))
	}
	var err error
	if r.StartHour, r.StartMinute, err = oncall.ParseClock(w.RecurStartTime); err != nil {
		return fmt.Errorf("maintenance window %d: %w", w.ID, err)
	}
	if r.Zone, err = oncall.LoadZone(w.RecurTimeZone); err != nil {
		return fmt.Errorf("maintenance window %d: time zone: %w", w.ID, err)
	}
	w.recurrence = r
	return nil
}

// ActiveAt reports whether the window covers instant t, and if so until
// when: the end of the covering occurrence, cut at EndsAt.
func (w *MaintenanceWindow) ActiveAt(t time.Time) (until time.Time, ok bool) {
	if t.Before(w.StartsAt) || (w.EndsAt != nil && !t.Before(*w.EndsAt)) {
		return time.Time{}, false
	}
	if w.recurrence == nil {
		if w.EndsAt == nil {
			return time.Time{}, false
		}
		return *w.EndsAt, true
	}
	if until, ok = w.recurrence.Covering(t); ok && w.EndsAt != nil && w.EndsAt.Before(until) {
		until = *w.EndsAt
	}
	return until, ok
}

// ActiveMaintenance is the window of windows that covers t and lasts
// longest, and until when it does; nil when none covers t.
func ActiveMaintenance(windows []*MaintenanceWindow, t time.Time) (*MaintenanceWindow, time.Time) {
	var best *MaintenanceWindow
	var bestUntil time.Time
	for _, w := range windows {
		if until, ok := w.ActiveAt(t); ok && (best == nil || until.After(bestUntil)) {
			best, bestUntil = w, until
		}
	}
	return best, bestUntil
}
