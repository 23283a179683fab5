package alerting_test

import (
	"errors"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/notifiers"
)

// TestSendMadeWhileTheDatabaseGoesAwayIsRecordedOnce cuts the database
// off while a notification is out. The message was sent, so its outcome
// must be recorded by the first run that finds the database back: not
// left SENDING for the job to send it again when its lease ends.
func TestSendMadeWhileTheDatabaseGoesAwayIsRecordedOnce(t *testing.T) {
	d, relay := dbtest.PostgresBehindRelay(t)
	f := newDeliveryFixture(t, d, db.ContactEmail)
	f.email.during = func(notifiers.Message) { relay.Cut() }
	f.open()
	_, err := f.svc.RunDueJobs(f.ctx)
	relay.Restore()
	if !errors.Is(err, db.ErrUnavailable) {
		t.Fatalf("run due jobs that lost the database mid-send: %v, want ErrUnavailable", err)
	}
	f.email.during = nil
	f.run(0)
	note := f.onlyNotification(db.ContactEmail)
	if note.Status != db.NotificationSent || note.Attempts != 1 {
		t.Fatalf("notification %+v, want SENT after one attempt", note)
	}
	if jobs := f.pendingJobs(); len(jobs) != 0 {
		t.Fatalf("%d notify jobs left", len(jobs))
	}
	f.email.during = nil
	// Past any lease and backoff: nothing is sent again.
	f.run(2 * time.Hour)
	if n := f.email.callCount(); n != 1 {
		t.Fatalf("%d sends, want 1", n)
	}
}

// TestEngineTakesNoJobsWhileTheDatabaseIsAway runs the engine with the
// database cut off: it fails with db.ErrUnavailable having taken nothing,
// and once the database is back it runs each due job once.
func TestEngineTakesNoJobsWhileTheDatabaseIsAway(t *testing.T) {
	d, relay := dbtest.PostgresBehindRelay(t)
	f := newDeliveryFixture(t, d, db.ContactEmail)
	f.open()
	f.open()
	relay.Cut()
	_, err := f.svc.RunDueJobs(f.ctx)
	relay.Restore()
	if !errors.Is(err, db.ErrUnavailable) {
		t.Fatalf("run due jobs with the database away: %v, want ErrUnavailable", err)
	}
	var leased int
	if err := d.NewSelect().Model((*db.AlertJob)(nil)).ColumnExpr("count(*)").Where("locked_until IS NOT NULL OR attempts > 0").Scan(f.ctx, &leased); err != nil {
		t.Fatal(err)
	}
	if leased != 0 {
		t.Fatalf("%d jobs taken while the database was away", leased)
	}
	f.run(0)
	f.run(2 * time.Hour)
	if n := f.email.callCount(); n != 2 {
		t.Fatalf("%d sends for two alerts, want 2", n)
	}
	for _, note := range f.notifications(db.ContactEmail) {
		if note.Status != db.NotificationSent || note.Attempts != 1 {
			t.Fatalf("notification %+v, want SENT after one attempt", note)
		}
	}
}
