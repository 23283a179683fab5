package schedules_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/oncall"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/schedules"
)

// jan is 2026-01-<day> at hh:mm UTC.
func jan(day, hh, mm int) time.Time {
	return time.Date(2026, time.January, day, hh, mm, 0, 0, time.UTC)
}

func daily(handoff time.Time, participants ...int) oncall.Layer {
	return oncall.Layer{Name: "daily", ShiftLength: 1, ShiftUnit: oncall.UnitDays, HandoffAt: handoff, ParticipantIDs: participants}
}

func (c *config) schedule(name string, layers ...oncall.Layer) *db.Schedule {
	c.t.Helper()
	sched, err := c.svc.CreateSchedule(c.ctx, schedules.ScheduleInput{Name: &name, TimeZone: ptr("UTC"), Layers: layers})
	if err != nil {
		c.t.Fatalf("create schedule %s: %v", name, err)
	}
	return sched
}

func TestCreateScheduleValidation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		c := newConfig(t, d)
		a, b := c.addUser("a"), c.addUser("b")
		c.schedule("Taken", daily(jan(5, 9, 0), a))
		good := daily(jan(5, 9, 0), a, b)
		with := func(edit func(l *oncall.Layer)) []oncall.Layer {
			l := good
			l.ParticipantIDs = slices.Clone(good.ParticipantIDs)
			edit(&l)
			return []oncall.Layer{good, l}
		}
		cases := []struct {
			name      string
			in        schedules.ScheduleInput
			wantField string
		}{
			{"no name", schedules.ScheduleInput{TimeZone: ptr("UTC")}, "name"},
			{"blank name", schedules.ScheduleInput{Name: ptr("  "), TimeZone: ptr("UTC")}, "name"},
			{"name in use", schedules.ScheduleInput{Name: ptr("Taken"), TimeZone: ptr("UTC")}, "name"},
			{"no time zone", schedules.ScheduleInput{Name: ptr("x")}, "timeZone"},
			{"unknown time zone", schedules.ScheduleInput{Name: ptr("x"), TimeZone: ptr("Mars/Olympus")}, "timeZone"},
			{"local time zone", schedules.ScheduleInput{Name: ptr("x"), TimeZone: ptr("Local")}, "timeZone"},
			{"zero shift length", schedules.ScheduleInput{Name: ptr("x"), TimeZone: ptr("UTC"),
				Layers: with(func(l *oncall.Layer) { l.ShiftLength = 0 })}, "layers[1].shiftLength"},
			{"unknown shift unit", schedules.ScheduleInput{Name: ptr("x"), TimeZone: ptr("UTC"),
				Layers: with(func(l *oncall.Layer) { l.ShiftUnit = "MONTHS" })}, "layers[1].shiftUnit"},
			{"no hand-off", schedules.ScheduleInput{Name: ptr("x"), TimeZone: ptr("UTC"),
				Layers: with(func(l *oncall.Layer) { l.HandoffAt = time.Time{} })}, "layers[1].handoffAt"},
			{"unknown participant", schedules.ScheduleInput{Name: ptr("x"), TimeZone: ptr("UTC"),
				Layers: with(func(l *oncall.Layer) { l.ParticipantIDs[1] = b + 1000 })}, "layers[1].participantIds[1]"},
			{"bad restriction", schedules.ScheduleInput{Name: ptr("x"), TimeZone: ptr("UTC"),
				Layers: with(func(l *oncall.Layer) {
					l.Restrictions = []oncall.Restriction{{StartDay: time.Monday, StartMinute: 540, DurationMinutes: 0}}
				})}, "layers[1].restrictions[0].durationMinutes"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				schedules, layers := c.rows((*db.Schedule)(nil)), c.rows((*db.ScheduleLayer)(nil))
				_, err := c.svc.CreateSchedule(c.ctx, tc.in)
				wantFieldError(t, err, tc.wantField)
				if c.rows((*db.Schedule)(nil)) != schedules || c.rows((*db.ScheduleLayer)(nil)) != layers {
					t.Fatal("a refused create stored rows")
				}
			})
		}
	})
}

func TestScheduleRoundTripAndUpdate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		c := newConfig(t, d)
		a, b, x := c.addUser("a"), c.addUser("b"), c.addUser("x")
		business := oncall.Layer{
			Name: "business hours", ShiftLength: 1, ShiftUnit: oncall.UnitWeeks, HandoffAt: jan(5, 8, 0), ParticipantIDs: []int{b, a, b},
			Restrictions: []oncall.Restriction{{StartDay: time.Monday, StartMinute: 9 * 60, DurationMinutes: 8 * 60}},
		}
		name, tz := "Primary", "Europe/Berlin"
		sched, err := c.svc.CreateSchedule(c.ctx, schedules.ScheduleInput{
			Name: &name, Description: ptr("The first line"), TimeZone: &tz, Layers: []oncall.Layer{daily(jan(5, 9, 0), a, b), business},
		})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := c.svc.Schedule(c.ctx, sched.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Name != name || stored.TimeZone != tz || stored.Description != "The first line" || len(stored.Layers) != 2 {
			t.Fatalf("stored %+v", stored)
		}
		l := stored.Layers[1]
		if l.Position != 1 || l.Name != "business hours" || l.ShiftUnit != oncall.UnitWeeks || !l.HandoffAt.Equal(jan(5, 8, 0)) ||
			!slices.Equal(l.ParticipantIDs, []int{b, a, b}) || !slices.Equal(l.Restrictions, business.Restrictions) {
			t.Fatalf("layer read back as %+v", l)
		}

		// A bad time zone changes nothing.
		_, err = c.svc.UpdateSchedule(c.ctx, sched.ID, schedules.ScheduleInput{Name: ptr("Renamed"), TimeZone: ptr("Nowhere/Special")})
		wantFieldError(t, err, "timeZone")
		// Neither does a bad layer.
		_, err = c.svc.UpdateSchedule(c.ctx, sched.ID, schedules.ScheduleInput{Layers: []oncall.Layer{daily(jan(5, 9, 0), x+1000)}})
		wantFieldError(t, err, "layers[0].participantIds[0]")
		if again, _ := c.svc.Schedule(c.ctx, sched.ID); again.Name != name || len(again.Layers) != 2 {
			t.Fatalf("a refused update changed the schedule: %+v", again)
		}

		// Without layers, the layers stay.
		renamed, err := c.svc.UpdateSchedule(c.ctx, sched.ID, schedules.ScheduleInput{Name: ptr("Renamed"), TimeZone: ptr("UTC")})
		if err != nil {
			t.Fatal(err)
		}
		if renamed.Name != "Renamed" || renamed.TimeZone != "UTC" || len(renamed.Layers) != 2 {
			t.Fatalf("renamed %+v", renamed)
		}
		// With layers, they are replaced.
		if _, err := c.svc.UpdateSchedule(c.ctx, sched.ID, schedules.ScheduleInput{Layers: []oncall.Layer{daily(jan(5, 9, 0), x)}}); err != nil {
			t.Fatal(err)
		}
		replaced, err := c.svc.Schedule(c.ctx, sched.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(replaced.Layers) != 1 || !slices.Equal(replaced.Layers[0].ParticipantIDs, []int{x}) || replaced.Name != "Renamed" {
			t.Fatalf("replaced %+v", replaced)
		}
		if n := c.rows((*db.ScheduleLayer)(nil)); n != 1 {
			t.Fatalf("%d layers stored, want 1", n)
		}
	})
}

func TestOnCallUsers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		c := newConfig(t, d)
		a, b, cc, sub, all := c.addUser("a"), c.addUser("b"), c.addUser("c"), c.addUser("sub"), c.addUser("all")
		gone := c.addUser("gone")
		sched := c.schedule("Rotation", daily(jan(5, 9, 0), a, b, cc, gone))
		overrides := []schedules.OverrideInput{
			// sub stands in for b from noon to 14:00 on the 6th.
			{ScheduleID: sched.ID, UserID: sub, ReplaceUserID: &b, Start: jan(6, 12, 0), End: jan(6, 14, 0)},
			// sub would stand in for a then, but a is not on call.
			{ScheduleID: sched.ID, UserID: sub, ReplaceUserID: &a, Start: jan(6, 15, 0), End: jan(6, 16, 0)},
			// all takes over from everyone for an hour on the 7th.
			{ScheduleID: sched.ID, UserID: all, Start: jan(7, 0, 0), End: jan(7, 1, 0)},
		}
		for _, o := range overrides {
			if _, err := c.svc.CreateOverride(c.ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := d.NewDelete().Model((*db.User)(nil)).Where("id = ?", gone).Exec(c.ctx); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			at   time.Time
			want []int
		}{
			{jan(5, 9, 0), []int{a}},
			{jan(5, 23, 59), []int{a}},
			{jan(6, 9, 0), []int{b}},
			{jan(6, 12, 0), []int{sub}},
			{jan(6, 13, 59), []int{sub}},
			{jan(6, 14, 0), []int{b}},
			{jan(6, 15, 30), []int{b}},
			{jan(7, 0, 30), []int{all}},
			{jan(7, 1, 0), []int{b}},
			{jan(7, 9, 0), []int{cc}},
			{jan(8, 10, 0), []int{}}, // the deleted user's turn
			{jan(9, 10, 0), []int{a}},
			{jan(4, 10, 0), []int{}}, // the rotation extends backwards: the 4th is the deleted user's turn
			{jan(3, 10, 0), []int{cc}},
		}
		for _, tc := range cases {
			t.Run(tc.at.Format(time.RFC3339), func(t *testing.T) {
				got, err := c.svc.OnCallUsers(c.ctx, d, sched.ID, tc.at)
				if err != nil {
					t.Fatal(err)
				}
				if got == nil || !slices.Equal(got, tc.want) {
					t.Fatalf("on call %v, want %v", got, tc.want)
				}
			})
		}
		t.Run("inside a transaction", func(t *testing.T) {
			tx, err := d.BeginTx(c.ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			got, err := c.svc.OnCallUsers(c.ctx, tx, sched.ID, jan(6, 13, 0))
			if err != nil || !slices.Equal(got, []int{sub}) {
				t.Fatalf("on call %v, %v; want [%d]", got, err, sub)
			}
		})
		t.Run("unknown schedule", func(t *testing.T) {
			if _, err := c.svc.OnCallUsers(c.ctx, d, sched.ID+1000, jan(6, 13, 0)); !errors.Is(err, db.ErrNotFound) {
				t.Fatalf("got %v, want not found", err)
			}
		})
		t.Run("shifts", func(t *testing.T) {
			shifts, err := c.svc.Shifts(c.ctx, sched.ID, jan(5, 12, 0), jan(7, 12, 0))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range shifts {
				got = append(got, fmt.Sprintf("%s-%s %v", s.Start.Format("02T15:04"), s.End.Format("02T15:04"), s.UserIDs))
			}
			want := []string{
				fmt.Sprintf("05T12:00-06T09:00 [%d]", a),
				fmt.Sprintf("06T09:00-06T12:00 [%d]", b),
				fmt.Sprintf("06T12:00-06T14:00 [%d]", sub),
				fmt.Sprintf("06T14:00-07T00:00 [%d]", b),
				fmt.Sprintf("07T00:00-07T01:00 [%d]", all),
				fmt.Sprintf("07T01:00-07T09:00 [%d]", b),
				fmt.Sprintf("07T09:00-07T12:00 [%d]", cc),
			}
			if !slices.Equal(got, want) {
				t.Fatalf("shifts\n%v\nwant\n%v", got, want)
			}
			_, err = c.svc.Shifts(c.ctx, sched.ID, jan(7, 0, 0), jan(6, 0, 0))
			wantFieldError(t, err, "to")
		})
	})
}

func TestOverrides(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		c := newConfig(t, d)
		a, b := c.addUser("a"), c.addUser("b")
		sched := c.schedule("Rotation", daily(jan(5, 9, 0), a))
		valid := schedules.OverrideInput{ScheduleID: sched.ID, UserID: b, ReplaceUserID: &a, Start: jan(6, 12, 0), End: jan(6, 14, 0)}
		cases := []struct {
			name      string
			edit      func(o *schedules.OverrideInput)
			wantField string
		}{
			{"unknown schedule", func(o *schedules.OverrideInput) { o.ScheduleID += 1000 }, "scheduleId"},
			{"unknown user", func(o *schedules.OverrideInput) { o.UserID += 1000 }, "userId"},
			{"unknown replaced user", func(o *schedules.OverrideInput) { o.ReplaceUserID = ptr(b + 1000) }, "replaceUserId"},
			{"replacing oneself", func(o *schedules.OverrideInput) { o.ReplaceUserID = ptr(b) }, "replaceUserId"},
			{"no start", func(o *schedules.OverrideInput) { o.Start = time.Time{} }, "start"},
			{"ends before it starts", func(o *schedules.OverrideInput) { o.End = o.Start.Add(-time.Minute) }, "end"},
			{"empty", func(o *schedules.OverrideInput) { o.End = o.Start }, "end"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				o := valid
				tc.edit(&o)
				_, err := c.svc.CreateOverride(c.ctx, o)
				wantFieldError(t, err, tc.wantField)
				if n := c.rows((*db.ScheduleOverride)(nil)); n != 0 {
					t.Fatalf("a refused override was stored")
				}
			})
		}
		o, err := c.svc.CreateOverride(c.ctx, valid)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			from time.Time
			want int
		}{{jan(6, 0, 0), 1}, {jan(6, 13, 0), 1}, {jan(6, 14, 0), 0}} {
			list, err := c.svc.Overrides(c.ctx, sched.ID, tc.from)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != tc.want {
				t.Fatalf("overrides ending after %s: %d, want %d", tc.from, len(list), tc.want)
			}
		}
		if err := c.svc.DeleteOverride(c.ctx, o.ID); err != nil {
			t.Fatal(err)
		}
		if err := c.svc.DeleteOverride(c.ctx, o.ID); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("second delete: %v, want not found", err)
		}
	})
}

func TestDeleteSchedule(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		c := newConfig(t, d)
		a, b := c.addUser("a"), c.addUser("b")
		sched := c.schedule("Rotation", daily(jan(5, 9, 0), a))
		if _, err := c.svc.CreateOverride(c.ctx, schedules.OverrideInput{ScheduleID: sched.ID, UserID: b, Start: jan(6, 0, 0), End: jan(7, 0, 0)}); err != nil {
			t.Fatal(err)
		}
		policy, err := c.policies.CreateEscalationPolicy(c.ctx, policies.PolicyInput{Name: ptr("Uses it"), Steps: []policies.StepInput{
			{DelayMinutes: 5, Targets: []db.Target{{Type: db.TargetSchedule, ID: sched.ID}}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		wantFieldError(t, c.svc.DeleteSchedule(c.ctx, sched.ID), "id")
		if _, err := c.svc.Schedule(c.ctx, sched.ID); err != nil {
			t.Fatalf("a refused delete removed the schedule: %v", err)
		}
		if err := c.policies.DeleteEscalationPolicy(c.ctx, policy.ID); err != nil {
			t.Fatal(err)
		}
		if err := c.svc.DeleteSchedule(c.ctx, sched.ID); err != nil {
			t.Fatal(err)
		}
		if c.rows((*db.ScheduleLayer)(nil)) != 0 || c.rows((*db.ScheduleOverride)(nil)) != 0 {
			t.Fatal("layers or overrides outlived their schedule")
		}
		if err := c.svc.DeleteSchedule(c.ctx, sched.ID); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("second delete: %v, want not found", err)
		}
	})
}
