package maintenance_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/maintenance"
	"github.com/klaxonhq/klaxon/rules"
)

// A scan that goes missing while a maintenance window covers its
// integration opens its alert unpaged; the alert pages when the window
// ends, as an alert a message opened would.
func TestWindowHoldsMissedScanAlert(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, monday)
		name, typ := "scans", rules.TypeDetectify
		integ, err := f.integs.CreateIntegration(f.ctx, integrations.IntegrationInput{Name: &name, Type: &typ,
			EscalationPolicyID: f.integ.EscalationPolicyID, ScanHeartbeatHours: ptr(1)})
		if err != nil {
			t.Fatal(err)
		}
		body, err := os.ReadFile(filepath.Join("..", "rules", "testdata", "detectify", "scan_completed.json"))
		if err != nil {
			t.Fatal(err)
		}
		if res, err := f.svc.Ingest(f.ctx, alerting.Inbound{Token: integ.Token, Body: body}); err != nil || res.Status != db.InboundPulse {
			t.Fatalf("pulse: %+v %v", res, err)
		}
		f.window(maintenance.Input{Name: ptr("scanner upgrade"), IntegrationIDs: []int{integ.ID},
			StartsAt: ptr(monday.Add(30 * time.Minute)), SetEndsAt: true, EndsAt: ptr(monday.Add(3 * time.Hour))})

		f.clock.Set(monday.Add(time.Hour))
		f.run(f.svc)
		var alertID int
		if err := d.NewSelect().Model((*db.Alert)(nil)).Column("id").Where("integration_id = ?", integ.ID).Scan(f.ctx, &alertID); err != nil {
			t.Fatalf("no missed-scan alert: %v", err)
		}
		if !contains(f.entries(alertID, db.LogOpened), `opened during maintenance window "scanner upgrade": not paged`) || f.paged(alertID) != 0 {
			t.Fatalf("during the window: opened %q, paged %d", f.entries(alertID, db.LogOpened), f.paged(alertID))
		}

		f.clock.Set(monday.Add(3 * time.Hour))
		f.run(f.svc)
		if n := f.paged(alertID); n != 1 {
			t.Fatalf("paged %d times when the window ended, want once", n)
		}
	})
}
