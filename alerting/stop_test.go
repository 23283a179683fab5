package alerting_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// TestStopFinishesJobsInHandAndHandsBackTheRest stops the engine while
// more notifications are due than it has workers: the sends under way
// finish and are recorded, and the jobs taken but not started go back to
// the queue at once, unleased and with no attempt counted.
func TestStopFinishesJobsInHandAndHandsBackTheRest(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		arrived := make(chan struct{}, 64)
		release := make(chan struct{})
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			arrived <- struct{}{}
			<-release
		}))
		t.Cleanup(receiver.Close)
		released := sync.OnceFunc(func() { close(release) })
		t.Cleanup(released)

		now := f.clock.Now()
		u := &db.User{Email: "ann@example.com", Name: "ann", Role: db.RoleResponder, CreatedAt: now, UpdatedAt: now}
		f.insert(u)
		cm := &db.ContactMethod{UserID: u.ID, Type: db.ContactWebhook, Value: receiver.URL, CreatedAt: now}
		f.insert(cm)
		f.insert(&db.NotificationRule{UserID: u.ID, ContactMethodID: cm.ID, DelayMinutes: 0, CreatedAt: now})
		f.policy(0, step(30, db.Target{Type: db.TargetUser, ID: u.ID}))
		// More notifications than the engine runs side by side (16).
		const alerts = 20
		for range alerts {
			f.open()
		}

		ctx, stop := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() {
			n, err := f.svc.RunDueJobs(ctx)
			if err != nil {
				t.Errorf("run due jobs: %v", err)
			}
			done <- n
		}()
		// Wait for every worker to be in the middle of a send.
		const workers = 16
		for range workers {
			<-arrived
		}
		stop()
		released()
		ran := <-done

		ctxBg := context.Background()
		sent, err := d.NewSelect().Model((*db.Notification)(nil)).Where("status = ?", db.NotificationSent).Count(ctxBg)
		if err != nil {
			t.Fatal(err)
		}
		if sent != workers {
			t.Errorf("%d notifications sent, want the %d under way", sent, workers)
		}
		// Each step sends its notification itself, right after it commits
		// (see escalate): the steps not started are what goes back.
		var left []db.AlertJob
		if err := d.NewSelect().Model(&left).Where("kind IN ('escalate', 'notify') AND run_at <= ?", f.clock.Now()).Scan(ctxBg); err != nil {
			t.Fatal(err)
		}
		if len(left) != alerts-workers {
			t.Errorf("%d jobs due queued, want %d", len(left), alerts-workers)
		}
		for _, job := range left {
			if job.LockedBy != "" || job.LockedUntil != nil || job.Attempts != 0 {
				t.Errorf("job %d handed back still leased or with an attempt: locked by %q until %v, %d attempts", job.ID, job.LockedBy, job.LockedUntil, job.Attempts)
			}
		}
		// The escalation steps that ran, each with its send.
		if ran != workers {
			t.Errorf("RunDueJobs reports %d jobs run, want %d", ran, workers)
		}
		for _, job := range left {
			if job.Kind != "escalate" {
				t.Errorf("job %d of kind %s left, want only steps not started", job.ID, job.Kind)
			}
		}
	})
}
