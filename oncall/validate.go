package oncall

import (
	"fmt"
	"github.com/klaxonhq/klaxon/invalid"
	"time"
)

// maxShiftLength caps each unit at about ten years. Nobody needs longer
// shifts, and the cap keeps all rotation arithmetic far from int64 overflow.
var maxShiftLength = map[ShiftUnit]int{
	UnitHours: 24 * 3660,
	UnitDays:  3660,
	UnitWeeks: 523,
}

const (
	minutesPerDay  = 24 * 60
	minutesPerWeek = 7 * minutesPerDay
)

// Validate reports the first problem with s as a *invalid.Field, or nil.
func (s Schedule) Validate() error {
	if err := s.validate(); err != nil {
		return err
	}
	return nil
}

// validate returns the concrete type so Validate can return a true nil.
func (s Schedule) validate() *invalid.Field {
	if _, err := loadZone(s.TimeZone); err != nil {
		return invalid.Fieldf("timeZone", "%s", err)
	}
	for i, l := range s.Layers {
		if fe := validateLayer(fmt.Sprintf("layers[%d]", i), l); fe != nil {
			return fe
		}
	}
	for i, o := range s.Overrides {
		if fe := validateOverride(fmt.Sprintf("overrides[%d]", i), o); fe != nil {
			return fe
		}
	}
	return nil
}

func validateLayer(at string, l Layer) *invalid.Field {
	limit, ok := maxShiftLength[l.ShiftUnit]
	if !ok {
		return invalid.Fieldf(at+".shiftUnit", "unknown shift unit %q (want HOURS, DAYS or WEEKS)", l.ShiftUnit)
	}
	if l.ShiftLength < 1 {
		return invalid.Fieldf(at+".shiftLength", "must be at least 1")
	}
	if l.ShiftLength > limit {
		return invalid.Fieldf(at+".shiftLength", "must be at most %d %s", limit, l.ShiftUnit)
	}
	if l.HandoffAt.IsZero() {
		return invalid.Fieldf(at+".handoffAt", "is required")
	}
	for j, id := range l.ParticipantIDs {
		// 0 is reserved: Override.ReplaceUserID uses it to mean everyone.
		if id <= 0 {
			return invalid.Fieldf(fmt.Sprintf("%s.participantIds[%d]", at, j), "must be a positive user id")
		}
	}
	for j, r := range l.Restrictions {
		if fe := validateRestriction(fmt.Sprintf("%s.restrictions[%d]", at, j), r); fe != nil {
			return fe
		}
	}
	return nil
}

func validateRestriction(at string, r Restriction) *invalid.Field {
	if r.StartDay < time.Sunday || r.StartDay > time.Saturday {
		return invalid.Fieldf(at+".startDay", "must be a weekday 0 (Sunday) to 6 (Saturday)")
	}
	if r.StartMinute < 0 || r.StartMinute >= minutesPerDay {
		return invalid.Fieldf(at+".startMinute", "must be between 0 and %d", minutesPerDay-1)
	}
	if r.DurationMinutes < 1 || r.DurationMinutes > minutesPerWeek {
		return invalid.Fieldf(at+".durationMinutes", "must be between 1 and %d", minutesPerWeek)
	}
	return nil
}

func validateOverride(at string, o Override) *invalid.Field {
	if o.UserID <= 0 {
		return invalid.Fieldf(at+".userId", "must be a positive user id")
	}
	if o.ReplaceUserID < 0 {
		return invalid.Fieldf(at+".replaceUserId", "must be 0 (everyone) or a positive user id")
	}
	if o.Alongside && o.ReplaceUserID != 0 {
		return invalid.Fieldf(at+".replaceUserId", "must be empty for an override alongside whoever is on call")
	}
	if o.Start.IsZero() {
		return invalid.Fieldf(at+".start", "is required")
	}
	if !o.End.After(o.Start) {
		return invalid.Fieldf(at+".end", "must be after start")
	}
	return nil
}
