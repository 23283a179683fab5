package maintenance_test

import (
	"sync"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/maintenance"
	"github.com/klaxonhq/klaxon/rules"
)

var monday = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// TestWindowHoldsPagingThenPagesWhatIsStillOpen holds that alerts opened
// while an ad-hoc window covers their integration open and append as
// usual without paging anyone, and that when it ends those still open
// start paging from step 1, once, even with a restarted and a second
// instance running the jobs, while those acknowledged or closed meanwhile
// are never paged.
func TestWindowHoldsPagingThenPagesWhatIsStillOpen(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, monday)
		w := f.window(maintenance.Input{Name: ptr("deploy"), SetEndsAt: true, EndsAt: ptr(monday.Add(2 * time.Hour))})
		if !w.StartsAt.Equal(monday) || !w.PageOpenAlertsAfter {
			t.Fatalf("ad-hoc window starts %v, pageOpenAlertsAfter %v; want now and true", w.StartsAt, w.PageOpenAlertsAfter)
		}
		open, acked, closed := f.open(f.svc, "a"), f.open(f.svc, "b"), f.open(f.svc, "c")
		f.clock.Advance(30 * time.Minute)
		if again := f.open(f.svc, "a"); again != open {
			t.Fatalf("duplicate opened alert %d, want appended to %d", again, open)
		}
		f.run(f.svc)
		for _, id := range []int{open, acked, closed} {
			a := f.alert(id)
			if a.SuppressedBy == nil || *a.SuppressedBy != w.ID {
				t.Fatalf("alert %d suppressedBy %v, want window %d", id, a.SuppressedBy, w.ID)
			}
			if !contains(f.entries(id, db.LogOpened), `opened during maintenance window "deploy": not paged`) {
				t.Fatalf("alert %d opening entry %q does not say it was not paged", id, f.entries(id, db.LogOpened))
			}
			if n := f.paged(id); n != 0 {
				t.Fatalf("alert %d paged %d times during the window", id, n)
			}
		}
		if n := f.alert(open).AppendCount; n != 1 {
			t.Fatalf("append count %d, want 1", n)
		}
		held, total, _, err := f.svc.Alerts(f.ctx, alerting.AlertFilter{Suppressed: ptr(true)}, db.PageRequest{})
		if err != nil || total != 3 || len(held) != 3 {
			t.Fatalf("suppressed alerts: %d (%v)", total, err)
		}
		if _, err := f.svc.Acknowledge(f.ctx, acked, f.userID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Close(f.ctx, closed, f.userID); err != nil {
			t.Fatal(err)
		}

		f.clock.Set(monday.Add(2*time.Hour - time.Second))
		f.run(f.svc)
		if n := f.paged(open); n != 0 {
			t.Fatalf("paged %d times before the window ended", n)
		}
		// The window ends; a restarted instance and a second one run the
		// due jobs at the same time.
		f.clock.Set(monday.Add(2 * time.Hour))
		_, restarted := f.instance()
		_, second := f.instance()
		var wg sync.WaitGroup
		for _, svc := range []*alerting.Service{restarted, second} {
			wg.Go(func() {
				if _, err := svc.RunDueJobs(f.ctx); err != nil {
					t.Errorf("run due jobs: %v", err)
				}
			})
		}
		wg.Wait()
		f.run(f.svc)
		if got := f.entries(open, db.LogMaintenanceEnded); len(got) != 1 || got[0] != `Maintenance window "deploy" ended: paging` {
			t.Fatalf("maintenance entries %q, want one saying it pages", got)
		}
		if n := f.paged(open); n != 1 {
			t.Fatalf("paged %d times when the window ended, want step 1 once", n)
		}
		if got := f.entries(open, db.LogEscalated); !contains(got, "step 1 of 1") {
			t.Fatalf("escalation %q did not start from step 1", got)
		}
		if n := f.events(open, db.LogMaintenanceEnded); n != 1 {
			t.Fatalf("%d MAINTENANCE_ENDED events, want 1", n)
		}
		if a := f.alert(open); a.SuppressedBy != nil {
			t.Fatalf("paging alert still suppressedBy %d", *a.SuppressedBy)
		}
		for _, id := range []int{acked, closed} {
			if n := f.paged(id) + len(f.entries(id, db.LogMaintenanceEnded)); n != 0 {
				t.Fatalf("alert %d, acknowledged or closed during the window, was paged", id)
			}
		}
		_, total, _, err = f.svc.Alerts(f.ctx, alerting.AlertFilter{Suppressed: ptr(false)}, db.PageRequest{})
		if err != nil || total != 1 {
			t.Fatalf("unsuppressed alerts: %d (%v), want the one paging", total, err)
		}
		// After the window, alerts page at once.
		after := f.open(f.svc, "d")
		f.run(f.svc)
		if f.alert(after).SuppressedBy != nil || f.paged(after) != 1 {
			t.Fatalf("alert opened after the window: suppressed %v, paged %d", f.alert(after).SuppressedBy, f.paged(after))
		}
	})
}

// TestChangingWindowMovesItsEnd holds that shortening a window ends it
// at its new end, extending it keeps alerts held until the new end,
// turning off pageOpenAlertsAfter lets held alerts end unpaged, and
// deleting a window ends it now.
func TestChangingWindowMovesItsEnd(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, monday)
		w := f.window(maintenance.Input{Name: ptr("deploy"), SetEndsAt: true, EndsAt: ptr(monday.Add(2 * time.Hour))})
		a := f.open(f.svc, "a")
		f.clock.Advance(10 * time.Minute)
		// Extended to 12:00: 11:00 passes unpaged.
		if _, err := f.store.UpdateWindow(f.ctx, w.ID, maintenance.Input{SetEndsAt: true, EndsAt: ptr(monday.Add(3 * time.Hour))}); err != nil {
			t.Fatal(err)
		}
		f.clock.Set(monday.Add(2 * time.Hour))
		f.run(f.svc)
		if n := f.paged(a); n != 0 {
			t.Fatalf("paged at the old end of an extended window")
		}
		// Shortened to 11:30: pages then.
		if _, err := f.store.UpdateWindow(f.ctx, w.ID, maintenance.Input{SetEndsAt: true, EndsAt: ptr(monday.Add(150 * time.Minute))}); err != nil {
			t.Fatal(err)
		}
		f.clock.Set(monday.Add(150*time.Minute - time.Second))
		f.run(f.svc)
		if n := f.paged(a); n != 0 {
			t.Fatalf("paged before the new end")
		}
		f.clock.Set(monday.Add(150 * time.Minute))
		f.run(f.svc)
		if n := f.paged(a); n != 1 {
			t.Fatalf("paged %d times at the new end, want 1", n)
		}

		// Deleting ends it now.
		f.clock.Set(monday.Add(4 * time.Hour))
		w2 := f.window(maintenance.Input{Name: ptr("patching"), SetEndsAt: true, EndsAt: ptr(f.clock.Now().Add(8 * time.Hour))})
		b := f.open(f.svc, "b")
		f.clock.Advance(time.Minute)
		if err := f.store.DeleteWindow(f.ctx, w2.ID); err != nil {
			t.Fatal(err)
		}
		f.run(f.svc)
		if got := f.entries(b, db.LogMaintenanceEnded); len(got) != 1 || f.paged(b) != 1 {
			t.Fatalf("after deleting the window: entries %q, paged %d; want paging now", got, f.paged(b))
		}

		// A window that says not to page leaves its alerts to people.
		f.clock.Advance(time.Hour)
		w3 := f.window(maintenance.Input{Name: ptr("quiet"), SetEndsAt: true, EndsAt: ptr(f.clock.Now().Add(time.Hour)), PageOpenAlertsAfter: ptr(false)})
		c := f.open(f.svc, "c")
		f.clock.Advance(time.Hour)
		f.run(f.svc)
		if got := f.entries(c, db.LogMaintenanceEnded); len(got) != 1 || !contains(got, "not paging") || f.paged(c) != 0 {
			t.Fatalf("window %d without paging after: entries %q, paged %d", w3.ID, got, f.paged(c))
		}
	})
}

// TestRecurringWindowKeepsLocalTimeAcrossDST holds that a weekly window
// starts at its local time in its zone on both sides of the spring and
// autumn changes (Europe/Berlin: last Sundays of March and October), and
// that ingest holds back paging only inside an occurrence.
func TestRecurringWindowKeepsLocalTimeAcrossDST(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
		w := f.window(maintenance.Input{Name: ptr("backups"), StartsAt: ptr(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)),
			SetRecurrence: true, Recurrence: &maintenance.RecurrenceInput{
				Weekdays: []time.Weekday{time.Sunday}, StartTime: "03:00", DurationMinutes: 60, TimeZone: "Europe/Berlin"}})
		utc := func(mo time.Month, day, h, m int) time.Time { return time.Date(2026, mo, day, h, m, 0, 0, time.UTC) }
		for _, tt := range []struct {
			name  string
			at    time.Time
			until time.Time // zero: not covered
		}{
			{"03:00 CET the week before spring", utc(3, 22, 2, 0), utc(3, 22, 3, 0)},
			{"02:59 CET", utc(3, 22, 1, 59), time.Time{}},
			{"03:00 CEST the day clocks spring forward", utc(3, 29, 1, 0), utc(3, 29, 2, 0)},
			{"02:00 UTC is 04:00 CEST, after it", utc(3, 29, 2, 0), time.Time{}},
			{"03:00 CEST the week before autumn", utc(10, 18, 1, 0), utc(10, 18, 2, 0)},
			{"03:00 CET the day clocks fall back", utc(10, 25, 2, 0), utc(10, 25, 3, 0)},
			{"01:00 UTC is 02:00 CET, before it", utc(10, 25, 1, 30), time.Time{}},
			{"a Monday", utc(3, 30, 1, 30), time.Time{}},
		} {
			until, ok := w.ActiveAt(tt.at)
			if ok != !tt.until.IsZero() || (ok && !until.Equal(tt.until)) {
				t.Errorf("%s: active %v until %v; want until %v", tt.name, ok, until, tt.until)
			}
		}
		active, err := f.store.Windows(f.ctx, ptr(utc(3, 29, 1, 30)))
		if err != nil || len(active) != 1 {
			t.Fatalf("windows active during the spring occurrence: %d (%v)", len(active), err)
		}

		// Through ingest, on the day the clocks spring forward.
		f.clock.Set(utc(3, 29, 0, 59))
		before := f.open(f.svc, "before")
		f.clock.Set(utc(3, 29, 1, 0))
		during := f.open(f.svc, "during")
		f.run(f.svc)
		if f.paged(before) != 1 || f.paged(during) != 0 {
			t.Fatalf("paged before %d, during %d; want 1 and 0", f.paged(before), f.paged(during))
		}
		f.clock.Set(utc(3, 29, 2, 0))
		f.run(f.svc)
		if f.paged(during) != 1 {
			t.Fatalf("not paged at the end of the occurrence")
		}
	})
}

// TestRecurringWindowTimeTheClocksSkipOrRepeat holds the schedules' rule
// for a local start time that does not occur (it starts when the clocks
// jump past it) or occurs twice (it starts at the first).
func TestRecurringWindowTimeTheClocksSkipOrRepeat(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, monday)
		w := f.window(maintenance.Input{Name: ptr("night"), StartsAt: ptr(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
			SetRecurrence: true, Recurrence: &maintenance.RecurrenceInput{
				Weekdays: []time.Weekday{time.Sunday}, StartTime: "02:30", DurationMinutes: 30, TimeZone: "Europe/Berlin"}})
		// Spring: 02:30 is skipped; it starts at 03:00 CEST (01:00 UTC).
		if _, ok := w.ActiveAt(time.Date(2026, 3, 29, 0, 59, 0, 0, time.UTC)); ok {
			t.Error("active before the clocks jumped past 02:30")
		}
		if until, ok := w.ActiveAt(time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)); !ok || !until.Equal(time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)) {
			t.Errorf("spring: active %v until %v; want until 01:30 UTC", ok, until)
		}
		// Autumn: 02:30 happens twice; it starts at the first, CEST (00:30 UTC).
		if until, ok := w.ActiveAt(time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC)); !ok || !until.Equal(time.Date(2026, 10, 25, 1, 0, 0, 0, time.UTC)) {
			t.Errorf("autumn: active %v until %v; want until 01:00 UTC", ok, until)
		}
		if _, ok := w.ActiveAt(time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC)); ok {
			t.Error("active again at the repeated 02:30")
		}
	})
}

// TestWindowBoundsAndValidation holds how startsAt and endsAt bound a
// recurring window, and that bad input is refused with nothing written.
func TestWindowBoundsAndValidation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, monday)
		weekly := &maintenance.RecurrenceInput{Weekdays: []time.Weekday{time.Monday}, StartTime: "09:00", DurationMinutes: 120, TimeZone: "UTC"}
		// Starts in the middle of the 2026-03-09 occurrence and ends in
		// the middle of the 2026-03-16 one.
		w := f.window(maintenance.Input{Name: ptr("bounded"), StartsAt: ptr(time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC)),
			SetEndsAt: true, EndsAt: ptr(time.Date(2026, 3, 16, 10, 0, 0, 0, time.UTC)), SetRecurrence: true, Recurrence: weekly})
		for _, tt := range []struct {
			at    time.Time
			until time.Time
		}{
			{time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC), time.Time{}},
			{time.Date(2026, 3, 9, 9, 30, 0, 0, time.UTC), time.Time{}},
			{time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC), time.Date(2026, 3, 9, 11, 0, 0, 0, time.UTC)},
			{time.Date(2026, 3, 16, 9, 0, 0, 0, time.UTC), time.Date(2026, 3, 16, 10, 0, 0, 0, time.UTC)},
			{time.Date(2026, 3, 16, 10, 0, 0, 0, time.UTC), time.Time{}},
			{time.Date(2026, 3, 23, 9, 0, 0, 0, time.UTC), time.Time{}},
		} {
			until, ok := w.ActiveAt(tt.at)
			if ok != !tt.until.IsZero() || (ok && !until.Equal(tt.until)) {
				t.Errorf("at %v: active %v until %v; want until %v", tt.at, ok, until, tt.until)
			}
		}

		bad := []struct {
			field string
			in    maintenance.Input
		}{
			{"endsAt", maintenance.Input{Name: ptr("x")}},
			{"endsAt", maintenance.Input{Name: ptr("x"), SetEndsAt: true, EndsAt: ptr(monday.Add(-time.Hour))}},
			{"integrationIds", maintenance.Input{Name: ptr("x"), IntegrationIDs: []int{}, SetEndsAt: true, EndsAt: ptr(monday.Add(time.Hour))}},
			{"integrationIds", maintenance.Input{Name: ptr("x"), IntegrationIDs: []int{f.integ.ID + 1000}, SetEndsAt: true, EndsAt: ptr(monday.Add(time.Hour))}},
			{"name", maintenance.Input{Name: ptr("bounded"), SetEndsAt: true, EndsAt: ptr(monday.Add(time.Hour))}},
			{"recurrence.weekdays", maintenance.Input{Name: ptr("x"), SetRecurrence: true, Recurrence: &maintenance.RecurrenceInput{StartTime: "09:00", DurationMinutes: 1, TimeZone: "UTC"}}},
			{"recurrence.startTime", maintenance.Input{Name: ptr("x"), SetRecurrence: true, Recurrence: &maintenance.RecurrenceInput{Weekdays: []time.Weekday{time.Monday}, StartTime: "24:00", DurationMinutes: 1, TimeZone: "UTC"}}},
			{"recurrence.durationMinutes", maintenance.Input{Name: ptr("x"), SetRecurrence: true, Recurrence: &maintenance.RecurrenceInput{Weekdays: []time.Weekday{time.Monday}, StartTime: "09:00", DurationMinutes: 0, TimeZone: "UTC"}}},
			{"recurrence.timeZone", maintenance.Input{Name: ptr("x"), SetRecurrence: true, Recurrence: &maintenance.RecurrenceInput{Weekdays: []time.Weekday{time.Monday}, StartTime: "09:00", DurationMinutes: 1, TimeZone: "Mars/Olympus"}}},
		}
		for _, tt := range bad {
			in := tt.in
			if in.IntegrationIDs == nil {
				in.IntegrationIDs = []int{f.integ.ID}
			}
			_, err := f.store.CreateWindow(f.ctx, in)
			wantFieldError(t, err, tt.field)
		}
		list, err := f.store.Windows(f.ctx, nil)
		if err != nil || len(list) != 1 {
			t.Fatalf("windows after refused input: %d (%v), want 1", len(list), err)
		}
		// Removing the end of a one-off window is refused too.
		once := f.window(maintenance.Input{Name: ptr("once"), SetEndsAt: true, EndsAt: ptr(monday.Add(time.Hour))})
		_, err = f.store.UpdateWindow(f.ctx, once.ID, maintenance.Input{SetEndsAt: true})
		wantFieldError(t, err, "endsAt")
	})
}

// TestWindowChangesAreAudited holds that creating, changing and deleting
// a window each leave an audit entry.
func TestWindowChangesAreAudited(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, monday)
		w := f.window(maintenance.Input{Name: ptr("deploy"), SetEndsAt: true, EndsAt: ptr(monday.Add(time.Hour))})
		if _, err := f.store.UpdateWindow(f.ctx, w.ID, maintenance.Input{Name: ptr("deploy 2")}); err != nil {
			t.Fatal(err)
		}
		if err := f.store.DeleteWindow(f.ctx, w.ID); err != nil {
			t.Fatal(err)
		}
		var actions []string
		err := d.NewSelect().Model((*audit.Entry)(nil)).Column("action").
			Where("entity_type = ? AND entity_id = ?", audit.MaintenanceWindow, w.ID).Order("id").Scan(f.ctx, &actions)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"CREATED", "UPDATED", "DELETED"}; len(actions) != 3 || actions[0] != want[0] || actions[1] != want[1] || actions[2] != want[2] {
			t.Fatalf("audit actions %v, want %v", actions, want)
		}
	})
}

// Under a window a group's first alert is held like any alert, while an
// alert joining its group is not held at all: the first alert pages for
// it once the window ends.
func TestWindowHoldsGroupLeaderNotItsMembers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, monday)
		integ, err := f.integs.UpdateIntegration(f.ctx, f.integ.ID, integrations.IntegrationInput{
			Grouping: &rules.Grouping{By: []string{"severity"}, WindowMinutes: 10}})
		if err != nil {
			t.Fatalf("turn grouping on: %v", err)
		}
		f.integ = integ
		w := f.window(maintenance.Input{Name: ptr("deploy"), SetEndsAt: true, EndsAt: ptr(monday.Add(time.Hour))})
		leader, member := f.open(f.svc, "a"), f.open(f.svc, "b")
		if a := f.alert(member); a.GroupID == nil || *a.GroupID != leader {
			t.Fatalf("second alert: group %v, want #%d's", a.GroupID, leader)
		}
		if a := f.alert(leader); a.SuppressedBy == nil || *a.SuppressedBy != w.ID {
			t.Fatalf("group's first alert suppressedBy %v, want window %d", a.SuppressedBy, w.ID)
		}
		if a := f.alert(member); a.SuppressedBy != nil {
			t.Fatalf("member suppressedBy %v, want none: it has no paging to hold", *a.SuppressedBy)
		}
		if entries := f.entries(member, db.LogOpened); contains(entries, "not paged") || !contains(entries, "joined the group") {
			t.Fatalf("member's opening entry %q", entries)
		}
		f.clock.Set(monday.Add(30 * time.Minute))
		f.run(f.svc)
		if n := f.paged(leader) + f.paged(member); n != 0 {
			t.Fatalf("paged %d times during the window", n)
		}
		f.clock.Set(monday.Add(time.Hour))
		f.run(f.svc)
		if n, m := f.paged(leader), f.paged(member); n != 1 || m != 0 {
			t.Fatalf("after the window: first alert paged %d times, member %d; want 1 and 0", n, m)
		}
	})
}
