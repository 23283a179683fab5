package heartbeats_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/heartbeats"
)

func hasLine(lines []string, part string) bool {
	return slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, part) })
}

// A monitor goes PENDING → UP on its first pulse, DOWN when no pulse comes
// for interval plus grace (one alert, paged), and UP again on the next
// pulse, which closes the alert. Pulses in between only count.
func TestHeartbeatPendingUpDownUp(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		alice := f.user("alice")
		m, err := f.store.CreateMonitor(f.ctx, heartbeats.Input{
			Name: ptr("nightly backup"), IntervalMinutes: ptr(10), GraceMinutes: ptr(5), RecipientUserIDs: []int{alice},
		})
		if err != nil {
			t.Fatal(err)
		}
		if m.Status != heartbeats.Pending || m.Severity != "high" || f.store.URL(m) != "https://klaxon.example/heartbeats/"+m.Token || len(m.Token) < 40 {
			t.Fatalf("new monitor %+v, url %s", m, f.store.URL(m))
		}
		if n := f.deadlineJobs(); n != 1 {
			t.Fatalf("a new monitor has %d deadline jobs, want 1", n)
		}

		f.advance(3*time.Minute, f.instance)
		if got := f.pulse(m.Token); got.Status != heartbeats.Up || got.PulseCount != 1 {
			t.Fatalf("after the first pulse %+v", got)
		}
		// 50 pulses, one a minute: counted on the row, one job throughout.
		for range 50 {
			f.advance(time.Minute, f.instance)
			f.pulse(m.Token)
			if n := f.deadlineJobs(); n != 1 {
				t.Fatalf("pulses left %d deadline jobs, want 1", n)
			}
		}
		up := f.monitor(m.ID)
		if up.Status != heartbeats.Up || up.PulseCount != 51 || up.LastPulseAt == nil || !up.LastPulseAt.Equal(f.clock.Now()) {
			t.Fatalf("after 51 pulses %+v", up)
		}
		if len(f.alerts(m.ID)) != 0 || len(f.inbox.take()) != 0 {
			t.Fatal("a monitor pulsing in time opened an alert or paged")
		}

		// Silence: at interval + grace after the last pulse, DOWN.
		f.advance(14*time.Minute, f.instance)
		if f.monitor(m.ID).Status != heartbeats.Up || len(f.alerts(m.ID)) != 0 {
			t.Fatal("the monitor went down before interval + grace")
		}
		f.advance(time.Minute, f.instance)
		if got := f.monitor(m.ID).Status; got != heartbeats.Down {
			t.Fatalf("status %s after interval + grace without a pulse, want DOWN", got)
		}
		alerts := f.alerts(m.ID)
		if len(alerts) != 1 || alerts[0].Status != db.AlertOpen || alerts[0].Subject != "heartbeat nightly backup missed" || alerts[0].Severity != "high" || alerts[0].IntegrationID != nil {
			t.Fatalf("alerts after the miss: %+v", alerts)
		}
		if got := f.inbox.take(); !slices.Equal(got, []string{"/alice"}) {
			t.Fatalf("paged %v, want alice once", got)
		}
		// Still down an hour later: no second alert, no second page.
		f.advance(time.Hour, f.instance)
		if n := len(f.alerts(m.ID)); n != 1 || len(f.inbox.take()) != 0 {
			t.Fatalf("%d alerts an hour into the outage", n)
		}
		if n := f.deadlineJobs(); n != 0 {
			t.Fatalf("a DOWN monitor keeps %d deadline jobs", n)
		}

		// The next pulse closes it.
		if got := f.pulse(m.Token); got.Status != heartbeats.Up {
			t.Fatalf("status %s after the pulse that ends the outage", got.Status)
		}
		closed := f.alerts(m.ID)[0]
		if closed.Status != db.AlertClosed || closed.ClosedAt == nil {
			t.Fatalf("alert after the pulse: %+v", closed)
		}
		lines := f.timeline(closed.ID)
		if !hasLine(lines, `OPENED: Opened: heartbeat "nightly backup" sent no pulse for 15 minutes`) || !hasLine(lines, `CLOSED: Closed: heartbeat "nightly backup" pulsed again`) {
			t.Fatalf("timeline %q", lines)
		}
		if types := f.eventTypes(closed.ID); !slices.Contains(types, "OPENED") || !slices.Contains(types, "CLOSED") {
			t.Fatalf("alertEvents %v, want OPENED and CLOSED", types)
		}
		if n := f.deadlineJobs(); n != 1 {
			t.Fatalf("after coming back up %d deadline jobs, want 1", n)
		}

		// A second outage is a second alert.
		f.advance(16*time.Minute, f.instance)
		if alerts := f.alerts(m.ID); len(alerts) != 2 || alerts[1].Status != db.AlertOpen {
			t.Fatalf("second outage: %+v", alerts)
		}
	})
}

// A monitor that never pulses goes DOWN too, counted from its creation.
func TestHeartbeatNeverPulsedGoesDown(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		alice := f.user("alice")
		m, err := f.store.CreateMonitor(f.ctx, heartbeats.Input{Name: ptr("cron"), IntervalMinutes: ptr(5), RecipientUserIDs: []int{alice}})
		if err != nil {
			t.Fatal(err)
		}
		f.advance(5*time.Minute, f.instance)
		if got := f.monitor(m.ID).Status; got != heartbeats.Down || len(f.alerts(m.ID)) != 1 {
			t.Fatalf("status %s, %d alerts", got, len(f.alerts(m.ID)))
		}
	})
}

// The deadline is carried out once whatever runs it: two instances at the
// same moment, and a restarted one afterwards, open one alert and page
// once.
func TestHeartbeatMissedOnceAcrossInstancesAndRestart(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		alice := f.user("alice")
		m, err := f.store.CreateMonitor(f.ctx, heartbeats.Input{Name: ptr("etl"), IntervalMinutes: ptr(10), RecipientUserIDs: []int{alice}})
		if err != nil {
			t.Fatal(err)
		}
		f.pulse(m.Token)
		second := f.newInstance()
		f.clock.Advance(10 * time.Minute)
		var wg sync.WaitGroup
		for _, inst := range []instance{f.instance, second} {
			wg.Go(func() {
				if _, err := inst.svc.RunDueJobs(f.ctx); err != nil {
					t.Errorf("run due jobs: %v", err)
				}
			})
		}
		wg.Wait()
		restarted := f.newInstance()
		f.advance(time.Minute, restarted)
		f.advance(time.Hour, second)
		if n := len(f.alerts(m.ID)); n != 1 {
			t.Fatalf("%d alerts, want 1", n)
		}
		if got := f.inbox.take(); len(got) != 1 {
			t.Fatalf("paged %v, want once", got)
		}
		// The pulse may land on any instance; it closes the one alert.
		if _, err := restarted.store.Pulse(f.ctx, m.Token); err != nil {
			t.Fatal(err)
		}
		if a := f.alerts(m.ID); a[0].Status != db.AlertClosed {
			t.Fatalf("alert %+v", a[0])
		}
	})
}

// A new interval moves the pending deadline; a rotated token retires the
// old URL; deleting the monitor closes its alert and drops its job; each
// change is audited. Bad input is refused with nothing written.
func TestHeartbeatConfiguration(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		alice := f.user("alice")
		m, err := f.store.CreateMonitor(f.ctx, heartbeats.Input{Name: ptr("sync"), IntervalMinutes: ptr(60), RecipientUserIDs: []int{alice}})
		if err != nil {
			t.Fatal(err)
		}
		f.pulse(m.Token)
		if _, err := f.store.UpdateMonitor(f.ctx, m.ID, heartbeats.Input{IntervalMinutes: ptr(5), Severity: ptr("Critical")}); err != nil {
			t.Fatal(err)
		}
		f.advance(5*time.Minute, f.instance)
		alerts := f.alerts(m.ID)
		if len(alerts) != 1 || alerts[0].Severity != "critical" {
			t.Fatalf("a shorter interval did not bring the deadline forward: %+v", alerts)
		}

		old := m.Token
		rotated, err := f.store.RotateToken(f.ctx, m.ID)
		if err != nil || rotated.Token == old {
			t.Fatalf("rotate: %v", err)
		}
		if _, err := f.store.Pulse(f.ctx, old); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("pulse with the old token: %v, want not found", err)
		}

		if err := f.store.DeleteMonitor(f.ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		var left []*db.Alert
		if err := f.d.NewSelect().Model(&left).Where("id = ?", alerts[0].ID).Scan(f.ctx); err != nil {
			t.Fatal(err)
		}
		if left[0].Status != db.AlertClosed || !hasLine(f.timeline(left[0].ID), `was deleted`) {
			t.Fatalf("the deleted monitor's alert %+v", left[0])
		}
		if n := f.deadlineJobs(); n != 0 {
			t.Fatalf("a deleted monitor left %d deadline jobs", n)
		}
		entries, _, _, err := audit.NewLog(d).List(f.ctx, audit.Filter{EntityType: audit.HeartbeatMonitor}, db.PageRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var actions []audit.Action
		for _, e := range entries {
			actions = append(actions, e.Action)
			if strings.Contains(e.Changes, old) || strings.Contains(e.Changes, rotated.Token) {
				t.Fatalf("the audit log shows a token: %s", e.Changes)
			}
		}
		if !slices.Equal(actions, []audit.Action{audit.Deleted, audit.TokenRotated, audit.Updated, audit.Created}) {
			t.Fatalf("audit actions %v", actions)
		}

		bad := []struct {
			in    heartbeats.Input
			field string
		}{
			{heartbeats.Input{IntervalMinutes: ptr(5), RecipientUserIDs: []int{alice}}, "name"},
			{heartbeats.Input{Name: ptr(" "), IntervalMinutes: ptr(5), RecipientUserIDs: []int{alice}}, "name"},
			{heartbeats.Input{Name: ptr("x"), RecipientUserIDs: []int{alice}}, "intervalMinutes"},
			{heartbeats.Input{Name: ptr("x"), IntervalMinutes: ptr(0), RecipientUserIDs: []int{alice}}, "intervalMinutes"},
			{heartbeats.Input{Name: ptr("x"), IntervalMinutes: ptr(5), GraceMinutes: ptr(-1), RecipientUserIDs: []int{alice}}, "graceMinutes"},
			{heartbeats.Input{Name: ptr("x"), IntervalMinutes: ptr(5), Severity: ptr("urgent"), RecipientUserIDs: []int{alice}}, "severity"},
			{heartbeats.Input{Name: ptr("x"), IntervalMinutes: ptr(5)}, "escalationPolicyId"},
			{heartbeats.Input{Name: ptr("x"), IntervalMinutes: ptr(5), EscalationPolicyID: ptr(9999)}, "escalationPolicyId"},
			{heartbeats.Input{Name: ptr("x"), IntervalMinutes: ptr(5), RecipientUserIDs: []int{alice, 9999}}, "recipientUserIds[1]"},
			{heartbeats.Input{Name: ptr("x"), IntervalMinutes: ptr(5), RecipientGroupIDs: []int{9999}}, "recipientGroupIds[0]"},
		}
		for _, tc := range bad {
			_, err := f.store.CreateMonitor(f.ctx, tc.in)
			wantFieldError(t, err, tc.field)
		}
		if _, err := f.store.CreateMonitor(f.ctx, heartbeats.Input{Name: ptr("dup"), IntervalMinutes: ptr(5), RecipientUserIDs: []int{alice}}); err != nil {
			t.Fatal(err)
		}
		_, err = f.store.CreateMonitor(f.ctx, heartbeats.Input{Name: ptr("dup"), IntervalMinutes: ptr(5), RecipientUserIDs: []int{alice}})
		wantFieldError(t, err, "name")
		list, err := f.store.Monitors(f.ctx)
		if err != nil || len(list) != 1 || f.deadlineJobs() != 1 {
			t.Fatalf("refused monitors left rows behind: %d monitors, %d jobs, %v", len(list), f.deadlineJobs(), err)
		}
	})
}

// Pulses beyond PulsesPerMinute are refused with nothing counted.
func TestHeartbeatPulsesAreRateLimited(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		alice := f.user("alice")
		m, err := f.store.CreateMonitor(f.ctx, heartbeats.Input{Name: ptr("chatty"), IntervalMinutes: ptr(5), RecipientUserIDs: []int{alice}})
		if err != nil {
			t.Fatal(err)
		}
		for range heartbeats.PulsesPerMinute {
			f.pulse(m.Token)
		}
		_, err = f.store.Pulse(f.ctx, m.Token)
		var rateErr *db.RateLimitError
		if !errors.As(err, &rateErr) || rateErr.RetryAfterSeconds() != 1 {
			t.Fatalf("pulse over the limit: %v", err)
		}
		if got := f.monitor(m.ID).PulseCount; got != heartbeats.PulsesPerMinute {
			t.Fatalf("pulse count %d, want %d", got, heartbeats.PulsesPerMinute)
		}
		f.clock.Advance(time.Second)
		f.pulse(m.Token)
	})
}

// alertEvents subscribers hear the outage open and the pulse close it.
func TestHeartbeatOutageReachesAlertEvents(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		bus := events.NewBus(d, slog.New(slog.NewTextHandler(t.Output(), nil)))
		f.bus = bus
		f.instance = f.newInstance()
		ctx, stop := context.WithCancel(f.ctx)
		done := make(chan struct{})
		go func() { defer close(done); bus.Run(ctx) }()
		t.Cleanup(func() { stop(); <-done })
		sub, err := bus.Subscribe(f.ctx, 0, func(ev *events.Event) bool { return ev.Kind == events.KindAlert })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		next := func(want string) *events.Event {
			t.Helper()
			wait, cancel := context.WithTimeout(f.ctx, 30*time.Second)
			defer cancel()
			// Paging's own events (ESCALATED, NOTIFIED) come in between.
			var ev *events.Event
			for ev == nil || (ev.Type != "OPENED" && ev.Type != "CLOSED") {
				if ev, err = sub.Next(wait); err != nil {
					t.Fatalf("waiting for %s: %v", want, err)
				}
			}
			if ev.Type != want || ev.Alert == nil || ev.Alert.HeartbeatMonitorID == nil {
				t.Fatalf("event %s %+v, want %s of the monitor's alert", ev.Type, ev.Alert, want)
			}
			return ev
		}

		alice := f.user("alice")
		m, err := f.store.CreateMonitor(f.ctx, heartbeats.Input{Name: ptr("report"), IntervalMinutes: ptr(5), RecipientUserIDs: []int{alice}})
		if err != nil {
			t.Fatal(err)
		}
		f.pulse(m.Token)
		f.advance(5*time.Minute, f.instance)
		opened := next("OPENED")
		f.pulse(m.Token)
		if closed := next("CLOSED"); *closed.AlertID != *opened.AlertID || closed.Alert.Status != db.AlertClosed {
			t.Fatalf("closed %+v, opened alert %d", closed.Alert, *opened.AlertID)
		}
	})
}
