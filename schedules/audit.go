package schedules

import (
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/oncall"
)

// What the audit log keeps of a schedule: the fields an admin sets, by
// their API names. Row ids of layers are left out, as replacing them with
// equal ones is no change.

type scheduleRecord struct {
	Name        string        `json:"name"`
	Description string        `json:"description"`
	TimeZone    string        `json:"timeZone"`
	Layers      []layerRecord `json:"layers"`
}

type layerRecord struct {
	Name           string              `json:"name"`
	ShiftLength    int                 `json:"shiftLength"`
	ShiftUnit      oncall.ShiftUnit    `json:"shiftUnit"`
	HandoffAt      time.Time           `json:"handoffAt"`
	ParticipantIDs []int               `json:"participantIds"`
	Restrictions   []restrictionRecord `json:"restrictions"`
}

type restrictionRecord struct {
	StartDay        string `json:"startDay"`
	StartMinute     int    `json:"startMinute"`
	DurationMinutes int    `json:"durationMinutes"`
}

func recordOfSchedule(sched *db.Schedule) *scheduleRecord {
	r := &scheduleRecord{Name: sched.Name, Description: sched.Description, TimeZone: sched.TimeZone, Layers: []layerRecord{}}
	for _, l := range sched.Layers {
		layer := layerRecord{
			Name: l.Name, ShiftLength: l.ShiftLength, ShiftUnit: l.ShiftUnit, HandoffAt: l.HandoffAt.UTC(),
			ParticipantIDs: l.ParticipantIDs, Restrictions: []restrictionRecord{},
		}
		for _, res := range l.Restrictions {
			layer.Restrictions = append(layer.Restrictions, restrictionRecord{
				StartDay: res.StartDay.String(), StartMinute: res.StartMinute, DurationMinutes: res.DurationMinutes,
			})
		}
		r.Layers = append(r.Layers, layer)
	}
	return r
}

// overrideRecord is recorded on the override's schedule, so that the
// schedule's history shows who stood in for whom.
type overrideRecord struct {
	Override overrideFields `json:"override"`
}

type overrideFields struct {
	ID            int       `json:"id"`
	UserID        int       `json:"userId"`
	ReplaceUserID *int      `json:"replaceUserId"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	Alongside     bool      `json:"alongside,omitempty"`
}

func recordOfOverride(o *db.ScheduleOverride) *overrideRecord {
	return &overrideRecord{Override: overrideFields{
		ID: o.ID, UserID: o.UserID, ReplaceUserID: o.ReplaceUserID, Start: o.Start.UTC(), End: o.End.UTC(), Alongside: o.Alongside,
	}}
}

// swapRecord is recorded on the swap's schedule at each step of a shift
// swap, so that the schedule's history shows who handed which shift to
// whom, and who answered.
type swapRecord struct {
	Swap swapFields `json:"shiftSwap"`
}

type swapFields struct {
	ID         int        `json:"id"`
	FromUserID int        `json:"fromUserId"`
	ToUserID   int        `json:"toUserId"`
	Start      time.Time  `json:"start"`
	End        time.Time  `json:"end"`
	ExpiresAt  time.Time  `json:"expiresAt"`
	Status     SwapStatus `json:"status"`
	OverrideID *int       `json:"overrideId"`
}

func recordOfSwap(sw *ShiftSwap) *swapRecord {
	return &swapRecord{Swap: swapFields{
		ID: sw.ID, FromUserID: sw.FromUserID, ToUserID: sw.ToUserID, Start: sw.Start.UTC(), End: sw.End.UTC(),
		ExpiresAt: sw.ExpiresAt.UTC(), Status: sw.Status, OverrideID: sw.OverrideID,
	}}
}
