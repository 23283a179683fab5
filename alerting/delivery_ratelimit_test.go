package alerting_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/notifiers"
)

func TestRateLimitBundlesABurstIntoOneSMS(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS, db.ContactEmail)
		first := f.openAt(0)
		second := f.openAt(2 * time.Second)
		third := f.openAt(4 * time.Second)

		if sent := f.sms.take(); len(sent) != 1 || sent[0].AlertID != first || len(sent[0].Others) != 0 {
			t.Fatalf("SMS during the burst: %+v, want one for alert %d alone", sent, first)
		}
		if sent := f.email.take(); len(sent) != 3 {
			t.Fatalf("%d emails during the burst, want 3: email is not rate limited", len(sent))
		}
		windowEnd := time.Date(2026, 3, 2, 9, 1, 0, 0, time.UTC)
		jobs := f.pendingJobs()
		if len(jobs) != 2 {
			t.Fatalf("%d notify jobs held back, want 2", len(jobs))
		}
		for _, job := range jobs {
			// Being held back is no failed attempt.
			if !job.RunAt.Equal(windowEnd) || job.Attempts != 0 || job.LastError != "" {
				t.Fatalf("held back job %+v, want it due at %s with no attempt counted", job, windowEnd)
			}
		}

		f.run(time.Minute - time.Second)
		if sent := f.sms.take(); len(sent) != 0 {
			t.Fatalf("%d SMS inside the window", len(sent))
		}
		f.run(time.Minute)
		sent := f.sms.take()
		if len(sent) != 1 {
			t.Fatalf("%d SMS when the window ended, want 1", len(sent))
		}
		covered := alertsIn(sent[0])
		slices.Sort(covered)
		if !slices.Equal(covered, []int{second, third}) {
			t.Fatalf("the bundled SMS covers alerts %v, want %v", covered, []int{second, third})
		}
		if sent[0].AckURL == "" || sent[0].Destination != "+15551230001" {
			t.Fatalf("bundled message %+v", sent[0])
		}

		notes := f.notifications(db.ContactSMS)
		if len(notes) != 3 {
			t.Fatalf("%d SMS notifications, want one per alert", len(notes))
		}
		for i, want := range []struct {
			alert    int
			provider string
		}{{first, "SM1"}, {second, "SM2"}, {third, "SM2"}} {
			n := notes[i]
			if n.AlertID != want.alert || n.Status != db.NotificationSent || n.ProviderID != want.provider || n.Attempts != 1 {
				t.Fatalf("notification %d: %+v, want alert %d sent as %s", i, n, want.alert, want.provider)
			}
		}
		if jobs := f.pendingJobs(); len(jobs) != 0 {
			t.Fatalf("%d notify jobs left", len(jobs))
		}
		timeline := strings.Join(f.timeline(third), "\n")
		for _, want := range []string{"Notification to alice by SMS held back until 09:01:00 UTC", "Notified alice by SMS (one message with 1 other", "Notified alice by EMAIL"} {
			if !strings.Contains(timeline, want) {
				t.Fatalf("timeline lacks %q:\n%s", want, timeline)
			}
		}

		// The next alert is a minute after the bundle: the window runs from
		// the bundle, not from the first SMS.
		fourth := f.openAt(time.Minute + 30*time.Second)
		if sent := f.sms.take(); len(sent) != 0 {
			t.Fatalf("%d SMS within a minute of the bundle", len(sent))
		}
		f.run(2 * time.Minute)
		if sent := f.sms.take(); len(sent) != 1 || !slices.Equal(alertsIn(sent[0]), []int{fourth}) {
			t.Fatalf("SMS after the bundle's window: %+v", sent)
		}
	})
}

// Alerts that come due together need not wait for the window at all: the
// first message carries them all.
func TestBurstAtOneInstantSendsOneSMS(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS)
		var opened []int
		for range 4 {
			opened = append(opened, f.open())
		}
		f.run(0)
		sent := f.sms.take()
		if len(sent) != 1 {
			t.Fatalf("%d SMS for a burst at one instant, want 1", len(sent))
		}
		covered := alertsIn(sent[0])
		slices.Sort(covered)
		if !slices.Equal(covered, opened) {
			t.Fatalf("alerts covered %v, want %v", covered, opened)
		}
		f.run(time.Hour)
		if sent := f.sms.take(); len(sent) != 0 {
			t.Fatalf("%d more SMS later", len(sent))
		}
		if notes := f.notifications(db.ContactSMS); len(notes) != 4 {
			t.Fatalf("%d SMS notifications, want 4", len(notes))
		}
	})
}

func TestRateLimitZeroDisables(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS)
		f.rateLimits = map[db.ContactType]time.Duration{db.ContactSMS: 0}
		f.svc = f.newService()
		for i := range 3 {
			f.openAt(time.Duration(i) * time.Second)
		}
		sent := f.sms.take()
		if len(sent) != 3 {
			t.Fatalf("%d SMS without a rate limit, want 3", len(sent))
		}
		for _, msg := range sent {
			if len(msg.Others) != 0 {
				t.Fatalf("message bundled without a rate limit: %+v", msg)
			}
		}
	})
}

func TestRateLimitIsConfigurable(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS, db.ContactEmail)
		f.rateLimits = map[db.ContactType]time.Duration{db.ContactSMS: 5 * time.Minute, db.ContactEmail: time.Minute}
		f.svc = f.newService()
		f.openAt(0)
		f.openAt(time.Second)
		if sms, email := len(f.sms.take()), len(f.email.take()); sms != 1 || email != 1 {
			t.Fatalf("%d SMS and %d emails at once, want 1 each", sms, email)
		}
		f.run(time.Minute)
		if sms, email := len(f.sms.take()), len(f.email.take()); sms != 0 || email != 1 {
			t.Fatalf("%d SMS and %d emails after a minute, want 0 and 1", sms, email)
		}
		f.run(5 * time.Minute)
		if sms := len(f.sms.take()); sms != 1 {
			t.Fatalf("%d SMS after five minutes, want 1", sms)
		}
	})
}

func TestAlertAcknowledgedWhileHeldBackIsLeftOutOfTheBundle(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS)
		f.openAt(0)
		second := f.openAt(time.Second)
		third := f.openAt(2 * time.Second)
		fourth := f.openAt(3 * time.Second)
		f.sms.take()
		if _, err := f.svc.Acknowledge(f.ctx, third, f.user); err != nil {
			t.Fatal(err)
		}
		f.run(time.Minute)
		sent := f.sms.take()
		if len(sent) != 1 {
			t.Fatalf("%d SMS, want 1", len(sent))
		}
		covered := alertsIn(sent[0])
		slices.Sort(covered)
		if !slices.Equal(covered, []int{second, fourth}) {
			t.Fatalf("bundle covers %v, want %v without the acknowledged %d", covered, []int{second, fourth}, third)
		}
		for _, n := range f.notifications(db.ContactSMS) {
			if n.AlertID == third {
				t.Fatalf("the acknowledged alert got a notification: %+v", n)
			}
		}
	})
}

func TestBundleFailingTemporarilyIsRetriedWhole(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS)
		f.openAt(0)
		second := f.openAt(time.Second)
		third := f.openAt(2 * time.Second)
		f.sms.take()
		f.sms.failures = []error{&notifiers.RetryAfterError{Wait: 2 * time.Minute, Err: errors.New("twilio answered 429")}}
		f.run(time.Minute)
		for _, n := range f.notifications(db.ContactSMS)[1:] {
			if n.Status != alerting.NotificationRetrying || n.Attempts != 1 {
				t.Fatalf("after the failed bundle: %+v", n)
			}
		}
		f.run(3*time.Minute - time.Second)
		if n := f.sms.callCount(); n != 2 {
			t.Fatalf("%d sends before Retry-After passed, want 2", n)
		}
		f.run(3 * time.Minute)
		sent := f.sms.take()
		if len(sent) != 1 {
			t.Fatalf("%d SMS on the retry, want 1", len(sent))
		}
		covered := alertsIn(sent[0])
		slices.Sort(covered)
		if !slices.Equal(covered, []int{second, third}) {
			t.Fatalf("the retried bundle covers %v", covered)
		}
		for _, n := range f.notifications(db.ContactSMS)[1:] {
			if n.Status != db.NotificationSent || n.Attempts != 2 || n.ProviderID != "SM2" {
				t.Fatalf("after the retried bundle: %+v", n)
			}
		}
	})
}
