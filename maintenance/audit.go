package maintenance

import (
	"time"

	"github.com/klaxonhq/klaxon/db"
)

// What the audit log keeps of a window: the fields an admin sets, by
// their API names.
type windowRecord struct {
	Name                string       `json:"name"`
	IntegrationIDs      []int        `json:"integrationIds"`
	StartsAt            time.Time    `json:"startsAt"`
	EndsAt              *time.Time   `json:"endsAt"`
	Recurrence          *recurRecord `json:"recurrence"`
	PageOpenAlertsAfter bool         `json:"pageOpenAlertsAfter"`
	TeamID              *int         `json:"teamId,omitempty"`
}

type recurRecord struct {
	Weekdays        []string `json:"weekdays"`
	StartTime       string   `json:"startTime"`
	DurationMinutes int      `json:"durationMinutes"`
	TimeZone        string   `json:"timeZone"`
}

func recordOfWindow(w *db.MaintenanceWindow) *windowRecord {
	r := &windowRecord{Name: w.Name, IntegrationIDs: w.IntegrationIDs, StartsAt: w.StartsAt, EndsAt: w.EndsAt,
		PageOpenAlertsAfter: w.PageOpenAlertsAfter, TeamID: w.TeamID}
	if rec := w.Recurrence(); rec != nil {
		r.Recurrence = &recurRecord{StartTime: w.RecurStartTime, DurationMinutes: w.RecurDurationMinutes, TimeZone: w.RecurTimeZone}
		for _, d := range rec.Weekdays {
			r.Recurrence.Weekdays = append(r.Recurrence.Weekdays, d.String())
		}
	}
	return r
}
