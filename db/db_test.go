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
			return &db.Alert{IntegrationID: &integ.ID, SourceID: "f1", Status: status, OpenedAt: now, LastSeenAt: now}
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

// Migration 0012 makes each verified phone number one user's. A database
// that already holds a number verified by several users keeps the oldest
// verification (the one SMS replies acted for) and drops the others.
func TestMigrationKeepsTheOldestVerifiedNumber(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		// Back to the schema before 0012, as a database upgraded from an
		// earlier release has it.
		for _, q := range []string{"DROP INDEX contact_methods_verified_number", "DELETE FROM schema_migrations WHERE version = '0012_verified_numbers'"} {
			if _, err := d.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Now().UTC()
		var methods []*db.ContactMethod
		for i, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
			u := &db.User{Email: email, Role: db.RoleResponder, CreatedAt: now, UpdatedAt: now}
			if _, err := d.NewInsert().Model(u).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			for _, typ := range []db.ContactType{db.ContactSMS, db.ContactEmail} {
				value := "+15551230001"
				if typ == db.ContactEmail {
					value = "team@example.com"
				}
				cm := &db.ContactMethod{UserID: u.ID, Type: typ, Value: value, Verified: i != 0, CreatedAt: now}
				if _, err := d.NewInsert().Model(cm).Exec(ctx); err != nil {
					t.Fatal(err)
				}
				methods = append(methods, cm)
			}
		}
		if _, err := d.Migrate(ctx); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		var got []bool
		for _, cm := range methods {
			if err := d.NewSelect().Model(cm).WherePK().Scan(ctx); err != nil {
				t.Fatal(err)
			}
			got = append(got, cm.Verified)
		}
		// Users a, b, c; each an SMS then an email. a's number was never
		// verified, b's is the oldest verification, c's goes; the shared
		// mailbox stays verified for b and c.
		want := []bool{false, false, true, true, false, true}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("verified after migrating: %v, want %v", got, want)
			}
		}
		dup := &db.ContactMethod{UserID: methods[0].UserID, Type: db.ContactSMS, Value: "+15551230001", Verified: true, CreatedAt: now}
		if _, err := d.NewUpdate().Model(dup).Column("verified").Where("id = ?", methods[0].ID).Exec(ctx); !db.IsConstraint(err) {
			t.Fatalf("a second verification of the number after migrating: %v", err)
		}
	})
}
