package db_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

func TestMigrateIsIdempotent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		applied, err := d.Migrate(context.Background())
		if err != nil {
			t.Fatalf("second migrate: %v", err)
		}
		if len(applied) != 0 {
			t.Fatalf("second migrate applied %v, want nothing", applied)
		}
	})
}

func TestOpenAlertIsUniquePerSource(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Microsecond) // both engines keep microseconds
		integ := &db.Integration{Name: "x", Type: "GENERIC", Token: "tok", Enabled: true, CreatedAt: now, UpdatedAt: now}
		if _, err := d.NewInsert().Model(integ).Exec(ctx); err != nil {
			t.Fatalf("insert integration: %v", err)
		}
		alert := func(status db.AlertStatus) *db.Alert {
			return &db.Alert{IntegrationID: integ.ID, SourceID: "f1", Status: status, OpenedAt: now, LastSeenAt: now}
		}
		if _, err := d.NewInsert().Model(alert(db.AlertClosed)).Exec(ctx); err != nil {
			t.Fatalf("insert closed alert: %v", err)
		}
		if _, err := d.NewInsert().Model(alert(db.AlertOpen)).Exec(ctx); err != nil {
			t.Fatalf("insert open alert beside a closed one: %v", err)
		}
		_, err := d.NewInsert().Model(alert(db.AlertAcknowledged)).Exec(ctx)
		if !db.IsConstraint(err) || !errors.Is(db.Classify(err), db.ErrConflict) {
			t.Fatalf("second unclosed alert for one source: got %v, want a conflict", err)
		}
		var got db.Alert
		if err := d.NewSelect().Model(&got).Where("status = ?", db.AlertOpen).Scan(ctx); err != nil {
			t.Fatalf("read back: %v", err)
		}
		if _, offset := got.OpenedAt.Zone(); !got.OpenedAt.Equal(now) || offset != 0 {
			t.Fatalf("opened_at round trip: got %v, want %v in UTC", got.OpenedAt, now)
		}
	})
}
