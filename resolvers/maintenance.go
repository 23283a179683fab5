package resolvers

import (
	"fmt"
	"slices"
	"time"

	"github.com/klaxonhq/klaxon/graph"
	"github.com/klaxonhq/klaxon/invalid"
	"github.com/klaxonhq/klaxon/maintenance"
)

// recurrenceInput converts a recurrence; nil stays nil.
func recurrenceInput(in *graph.MaintenanceRecurrenceInput) (*maintenance.RecurrenceInput, error) {
	if in == nil {
		return nil, nil
	}
	out := &maintenance.RecurrenceInput{StartTime: in.StartTime, DurationMinutes: in.DurationMinutes, TimeZone: in.TimeZone}
	for _, d := range in.Weekdays {
		i := slices.Index(graph.AllWeekday, d)
		if i < 0 {
			return nil, invalid.New("recurrence.weekdays", fmt.Sprintf("unknown weekday %q", d))
		}
		out.Weekdays = append(out.Weekdays, time.Weekday(i))
	}
	return out, nil
}

// nonNil keeps a given empty list apart from an absent one.
func nonNil(ids []int) []int {
	if ids == nil {
		return []int{}
	}
	return ids
}
