package oncall

import (
	"errors"
	"github.com/klaxonhq/klaxon/invalid"
	"strings"
	"testing"
	"time"
)

func validSchedule() Schedule {
	return Schedule{
		TimeZone: "Europe/Berlin",
		Layers: []Layer{
			{ShiftLength: 1, ShiftUnit: UnitWeeks, HandoffAt: utc(2026, 1, 5, 9, 0), ParticipantIDs: []int{1, 2}},
			{ShiftLength: 12, ShiftUnit: UnitHours, HandoffAt: utc(2026, 1, 5, 9, 0), ParticipantIDs: []int{3},
				Restrictions: []Restriction{{StartDay: time.Monday, StartMinute: 0, DurationMinutes: 60}}},
		},
		Overrides: []Override{{UserID: 4, Start: utc(2026, 1, 5, 9, 0), End: utc(2026, 1, 5, 10, 0)}},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Schedule)
		field  string // "" means valid
	}{
		{"valid", func(*Schedule) {}, ""},
		{"no layers or overrides", func(s *Schedule) { s.Layers, s.Overrides = nil, nil }, ""},
		{"empty layer", func(s *Schedule) { s.Layers[0].ParticipantIDs = nil }, ""},
		{"missing zone", func(s *Schedule) { s.TimeZone = "" }, "timeZone"},
		{"unknown zone", func(s *Schedule) { s.TimeZone = "Mars/Olympus" }, "timeZone"},
		{"host zone", func(s *Schedule) { s.TimeZone = "Local" }, "timeZone"},
		{"zero shift length", func(s *Schedule) { s.Layers[1].ShiftLength = 0 }, "layers[1].shiftLength"},
		{"negative shift length", func(s *Schedule) { s.Layers[0].ShiftLength = -3 }, "layers[0].shiftLength"},
		{"huge shift length", func(s *Schedule) { s.Layers[0].ShiftLength = 1 << 40 }, "layers[0].shiftLength"},
		{"unknown unit", func(s *Schedule) { s.Layers[0].ShiftUnit = "MONTHS" }, "layers[0].shiftUnit"},
		{"missing unit", func(s *Schedule) { s.Layers[1].ShiftUnit = "" }, "layers[1].shiftUnit"},
		{"missing hand-off", func(s *Schedule) { s.Layers[0].HandoffAt = time.Time{} }, "layers[0].handoffAt"},
		{"zero participant", func(s *Schedule) { s.Layers[0].ParticipantIDs = []int{1, 0} }, "layers[0].participantIds[1]"},
		{"negative participant", func(s *Schedule) { s.Layers[1].ParticipantIDs = []int{-1} }, "layers[1].participantIds[0]"},
		{"bad weekday", func(s *Schedule) { s.Layers[1].Restrictions[0].StartDay = 7 }, "layers[1].restrictions[0].startDay"},
		{"negative weekday", func(s *Schedule) { s.Layers[1].Restrictions[0].StartDay = -1 }, "layers[1].restrictions[0].startDay"},
		{"start minute too big", func(s *Schedule) { s.Layers[1].Restrictions[0].StartMinute = 1440 }, "layers[1].restrictions[0].startMinute"},
		{"negative start minute", func(s *Schedule) { s.Layers[1].Restrictions[0].StartMinute = -1 }, "layers[1].restrictions[0].startMinute"},
		{"zero duration", func(s *Schedule) { s.Layers[1].Restrictions[0].DurationMinutes = 0 }, "layers[1].restrictions[0].durationMinutes"},
		{"duration over a week", func(s *Schedule) { s.Layers[1].Restrictions[0].DurationMinutes = 10081 }, "layers[1].restrictions[0].durationMinutes"},
		{"duration a full week", func(s *Schedule) { s.Layers[1].Restrictions[0].DurationMinutes = 10080 }, ""},
		{"override without user", func(s *Schedule) { s.Overrides[0].UserID = 0 }, "overrides[0].userId"},
		{"override negative replace", func(s *Schedule) { s.Overrides[0].ReplaceUserID = -2 }, "overrides[0].replaceUserId"},
		{"override without start", func(s *Schedule) { s.Overrides[0].Start = time.Time{} }, "overrides[0].start"},
		{"override end equals start", func(s *Schedule) { s.Overrides[0].End = s.Overrides[0].Start }, "overrides[0].end"},
		{"override end before start", func(s *Schedule) { s.Overrides[0].End = s.Overrides[0].Start.Add(-time.Hour) }, "overrides[0].end"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := validSchedule()
			tc.mutate(&s)
			err := s.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var fe *invalid.Field
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() = %v, want *invalid.Field", err)
			}
			if fe.Name != tc.field {
				t.Errorf("field = %q, want %q (%v)", fe.Name, tc.field, err)
			}
			if !strings.HasPrefix(err.Error(), tc.field+": ") || fe.Reason == "" {
				t.Errorf("Error() = %q, want %q followed by a reason", err.Error(), tc.field+": ")
			}

			// Every entry point refuses an invalid schedule the same way.
			at := utc(2026, 1, 5, 9, 0)
			_, errOn := s.OnCall(at)
			_, errShifts := s.Shifts(at, at.Add(time.Hour))
			_, errNext := s.NextChange(at)
			for name, err := range map[string]error{"OnCall": errOn, "Shifts": errShifts, "NextChange": errNext} {
				if !errors.As(err, &fe) || fe.Name != tc.field {
					t.Errorf("%s error = %v, want field %s", name, err, tc.field)
				}
			}
		})
	}
}

func TestValidateNilIsUntyped(t *testing.T) {
	var err error = validSchedule().Validate()
	if err != nil {
		t.Fatalf("Validate() = %#v, want untyped nil", err)
	}
}
