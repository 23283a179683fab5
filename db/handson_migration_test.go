package db_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// TestManualAlertUpgradeKeepsAlerts upgrades a database with alerts to
// the schema that lets an alert have no integration, and checks that the
// alerts keep their ids, that an id deleted before the upgrade is not
// handed out again, that every index of alerts is kept (deduplication by
// integration and source id included), and that what hangs off an alert
// still follows it.
func TestManualAlertUpgradeKeepsAlerts(t *testing.T) {
	dbtest.EachUnmigrated(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if _, err := d.MigrateUntil(ctx, "0012_verified_numbers"); err != nil {
			t.Fatalf("migrate to 0012: %v", err)
		}
		now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
		exec := func(query string, args ...any) {
			t.Helper()
			if _, err := d.ExecContext(ctx, query, args...); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
		}
		exec(`INSERT INTO integrations (id, name, type, token, enabled, mapping, created_at, updated_at) VALUES (1, 'x', 'GENERIC', 'tok', TRUE, '{}', ?, ?)`, now, now)
		for id := 1; id <= 3; id++ {
			exec(`INSERT INTO alerts (id, integration_id, source_id, subject, status, opened_at, last_seen_at) VALUES (?, 1, ?, 'disk full', 'OPEN', ?, ?)`, id, "s"+string(rune('0'+id)), now, now)
			exec(`INSERT INTO alert_log (alert_id, at, type, message) VALUES (?, ?, 'OPENED', 'Opened')`, id, now)
		}
		if d.Kind == db.Postgres {
			exec(`SELECT setval(pg_get_serial_sequence('alerts', 'id'), 3)`)
		}
		exec(`DELETE FROM alerts WHERE id = 3`)
		indexesBefore := alertIndexes(t, d)

		if _, err := d.MigrateUntil(ctx, "0014_hands_on"); err != nil {
			t.Fatalf("upgrade: %v", err)
		}

		var ids []int
		if err := d.NewSelect().Model((*db.Alert)(nil)).Column("id").Order("id").Scan(ctx, &ids); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids, []int{1, 2}) {
			t.Fatalf("alerts after the upgrade: %v, want [1 2]", ids)
		}
		indexesAfter := alertIndexes(t, d)
		for _, name := range indexesBefore {
			if !slices.Contains(indexesAfter, name) {
				t.Errorf("index %s lost: before %v, after %v", name, indexesBefore, indexesAfter)
			}
		}
		if _, err := d.ExecContext(ctx, `INSERT INTO alerts (integration_id, source_id, status, opened_at, last_seen_at) VALUES (1, 's1', 'OPEN', ?, ?)`, now, now); err == nil {
			t.Error("a second open alert for one integration and source id was stored")
		}
		manual := &db.Alert{SourceID: "manual:1", Subject: "by hand", Status: db.AlertOpen, OpenedAt: now, LastSeenAt: now}
		// Only the columns 0014 knows: later migrations add more to the model.
		if _, err := d.NewInsert().Model(manual).Column("source_id", "subject", "status", "opened_at", "last_seen_at").Returning("id").Exec(ctx); err != nil {
			t.Fatalf("store an alert without integration: %v", err)
		}
		if manual.ID <= 3 {
			t.Errorf("new alert got id %d; ids up to 3 were handed out before the upgrade", manual.ID)
		}
		exec(`DELETE FROM alerts WHERE id = 1`)
		n, err := d.NewSelect().Model((*db.AlertLog)(nil)).Where("alert_id = 1").Count(ctx)
		if err != nil || n != 0 {
			t.Errorf("timeline of a deleted alert: %d entries, %v", n, err)
		}
	})
}

func alertIndexes(t *testing.T, d *db.DB) []string {
	t.Helper()
	query := `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'alerts' AND sql IS NOT NULL ORDER BY name`
	if d.Kind == db.Postgres {
		query = `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'alerts' ORDER BY indexname`
	}
	var names []string
	if err := d.NewRaw(query).Scan(context.Background(), &names); err != nil {
		t.Fatal(err)
	}
	return names
}
