package alerting_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
)

// scanCompleted is Detectify's scan_completed sample for another profile.
func scanCompleted(t *testing.T, profile string) []byte {
	t.Helper()
	return []byte(strings.ReplaceAll(string(sample(t, "scan_completed.json")), "app.example.com", profile))
}

func (f *engineFixture) pulse(profile string) *alerting.IngestResult {
	f.t.Helper()
	res, err := f.svc.Ingest(f.ctx, alerting.Inbound{Token: f.integ.Token, Body: scanCompleted(f.t, profile)})
	if err != nil {
		f.t.Fatalf("pulse of %s: %v", profile, err)
	}
	if res.Status != db.InboundPulse {
		f.t.Fatalf("a completed scan of %s was %s (%s), want %s", profile, res.Status, res.Detail, db.InboundPulse)
	}
	return res
}

// scanAlerts are the missed-scan alerts of the fixture's integration, by id.
func (f *engineFixture) scanAlerts() []*db.Alert {
	f.t.Helper()
	var alerts []*db.Alert
	if err := f.d.NewSelect().Model(&alerts).Where("integration_id = ? AND source_id LIKE 'scan-heartbeat:%'", f.integ.ID).Order("id").Scan(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	return alerts
}

func (f *engineFixture) watchScans(hours int) {
	f.t.Helper()
	store := f.integrations()
	store.UseScanHeartbeats(f.svc)
	integ, err := store.UpdateIntegration(f.ctx, f.integ.ID, integrations.IntegrationInput{ScanHeartbeatHours: &hours})
	if err != nil {
		f.t.Fatalf("set scanHeartbeatHours: %v", err)
	}
	f.integ = integ
}

// A Detectify integration expecting a completed scan every 24 hours: a
// profile that goes silent opens one alert, paged once, across a restart;
// its next scan closes it and starts the window again. A profile that
// never completed a scan is not watched.
func TestScanHeartbeatMissingAndBack(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		ana := f.user("ana", 0)
		f.policy(0, step(60, db.Target{Type: db.TargetUser, ID: ana}))
		f.watchScans(24)

		if res := f.pulse("app.example.com"); res.AlertID != nil {
			t.Fatalf("a first pulse touched alert %d", *res.AlertID)
		}
		f.at(60)
		f.pulse("api.example.com")
		if got := f.at(24*60 - 1); len(got) != 0 || len(f.scanAlerts()) != 0 {
			t.Fatalf("within the window: notified %v, alerts %d", got, len(f.scanAlerts()))
		}

		expectPaths(t, "app.example.com's window passed", f.at(24*60), "/ana/0")
		alerts := f.scanAlerts()
		if len(alerts) != 1 {
			t.Fatalf("%d missed-scan alerts, want 1", len(alerts))
		}
		missed := alerts[0]
		if want := "No completed scan for profile app.example.com since 2026-03-02T09:00:00Z"; missed.Subject != want || missed.Status != db.AlertOpen ||
			missed.SourceID != "scan-heartbeat:app.example.com" || missed.SourceName != "app.example.com" {
			t.Fatalf("alert %+v; want subject %q", missed, want)
		}

		// A restart, and a second instance: the outage pages once.
		f.svc = f.newService()
		other := f.newService()
		got := f.at(30 * 60)
		if _, err := other.RunDueJobs(f.ctx); err != nil {
			t.Fatal(err)
		}
		expectPaths(t, "a day later, both profiles silent", append(got, f.inbox.take()...), "/ana/0")
		if alerts := f.scanAlerts(); len(alerts) != 2 || alerts[0].ID != missed.ID || alerts[1].SourceName != "api.example.com" {
			t.Fatalf("alerts after both windows passed: %v", alerts)
		}

		res := f.pulse("app.example.com")
		if res.AlertID == nil || *res.AlertID != missed.ID {
			t.Fatalf("the scan that came back did not close alert %d: %+v", missed.ID, res)
		}
		closed, err := f.svc.Alert(f.ctx, missed.ID)
		if err != nil || closed.Status != db.AlertClosed {
			t.Fatalf("alert after the scan came back: %+v %v", closed, err)
		}
		if tl := f.timeline(missed.ID); !strings.HasPrefix(tl[0], "OPENED: Opened: no completed scan for profile app.example.com within 24 hours") ||
			tl[len(tl)-1] != "CLOSED: Closed: a completed scan came for profile app.example.com" {
			t.Fatalf("timeline %q", tl)
		}
		keys, err := f.svc.ScanHeartbeats(f.ctx, f.integ.ID)
		if err != nil || len(keys) != 2 {
			t.Fatalf("pulse keys %v %v", keys, err)
		}
		if k := keys[1]; k.Key != "app.example.com" || k.Status != db.ScanHeartbeatUp || k.PulseCount != 2 || k.AlertID != nil {
			t.Fatalf("app.example.com after its scan came back: %+v", k)
		}
		if k := keys[0]; k.Key != "api.example.com" || k.Status != db.ScanHeartbeatDown || k.AlertID == nil {
			t.Fatalf("api.example.com still silent: %+v", k)
		}

		// The window starts again at the scan that came back.
		if got := f.at(54*60 - 1); len(got) != 0 || len(f.scanAlerts()) != 2 {
			t.Fatalf("within the new window: notified %v, alerts %d", got, len(f.scanAlerts()))
		}
		expectPaths(t, "the new window passed", f.at(54*60), "/ana/0")
		if alerts := f.scanAlerts(); len(alerts) != 3 || alerts[2].SourceName != "app.example.com" || alerts[2].Status != db.AlertOpen {
			t.Fatalf("alerts after the second outage: %v", alerts)
		}
	})
}

// Two instances running the deadline at once open one alert.
func TestScanHeartbeatDeadlineRunsOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		f.watchScans(1)
		f.pulse("app.example.com")
		f.clock.Advance(2 * time.Hour)
		services := []*alerting.Service{f.svc, f.newService(), f.newService()}
		var wg sync.WaitGroup
		for _, svc := range services {
			wg.Go(func() {
				if _, err := svc.RunDueJobs(f.ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if alerts := f.scanAlerts(); len(alerts) != 1 {
			t.Fatalf("%d alerts, want 1", len(alerts))
		}
	})
}

// Changing scanHeartbeatHours moves the deadlines of keys already
// pulsing; clearing it stops watching them.
func TestScanHeartbeatHoursChange(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		f.pulse("app.example.com")
		// Counted while nobody watches, and no deadline queued.
		if n := f.deadlineJobs(); n != 0 {
			t.Fatalf("%d deadline jobs unwatched", n)
		}
		f.watchScans(48)
		f.at(47 * 60)
		f.watchScans(12)
		if f.at(47*60 + 1); len(f.scanAlerts()) != 1 {
			t.Fatalf("a window shortened to 12 hours, 47 hours after the pulse: %d alerts", len(f.scanAlerts()))
		}

		f.pulse("app.example.com")
		store := f.integrations()
		store.UseScanHeartbeats(f.svc)
		if _, err := store.UpdateIntegration(f.ctx, f.integ.ID, integrations.IntegrationInput{ClearScanHeartbeat: true}); err != nil {
			t.Fatal(err)
		}
		if n := f.deadlineJobs(); n != 0 {
			t.Fatalf("%d deadline jobs left after scanHeartbeatHours was cleared", n)
		}
		if f.at(200 * 60); len(f.scanAlerts()) != 1 {
			t.Fatalf("unwatched, a silent profile opened %d alerts", len(f.scanAlerts()))
		}

		// Watching again starts from the last pulse; a disabled
		// integration, which takes no messages, is not watched.
		f.watchScans(12)
		if n := f.deadlineJobs(); n != 1 {
			t.Fatalf("%d deadline jobs after watching again, want 1", n)
		}
		if _, err := store.UpdateIntegration(f.ctx, f.integ.ID, integrations.IntegrationInput{Enabled: new(false)}); err != nil {
			t.Fatal(err)
		}
		if f.at(300 * 60); len(f.scanAlerts()) != 1 || f.deadlineJobs() != 0 {
			t.Fatalf("disabled: %d alerts, %d deadline jobs", len(f.scanAlerts()), f.deadlineJobs())
		}
	})
}

func (f *engineFixture) deadlineJobs() int {
	f.t.Helper()
	n, err := f.d.NewSelect().Model((*db.AlertJob)(nil)).Where("kind = 'scan_heartbeat_deadline'").Count(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return int(n)
}
