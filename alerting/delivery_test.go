package alerting_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/notifiers"
)

func TestRetryAfterIsHonoured(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS)
		f.sms.failures = []error{&notifiers.RetryAfterError{Wait: 5 * time.Minute, Err: errors.New("twilio answered 429 Too Many Requests")}}
		f.openAt(0)
		note := f.onlyNotification(db.ContactSMS)
		if note.Status != alerting.NotificationRetrying || note.Attempts != 1 || !strings.Contains(note.Error, "429") {
			t.Fatalf("after the 429: %+v", note)
		}
		// The backoff alone would have retried after 15 s.
		f.run(4 * time.Minute)
		if n := f.sms.callCount(); n != 1 {
			t.Fatalf("%d sends before the provider's Retry-After passed, want 1", n)
		}
		f.run(5 * time.Minute)
		if sent := f.sms.take(); len(sent) != 1 {
			t.Fatalf("%d messages once Retry-After passed, want 1", len(sent))
		}
		note = f.onlyNotification(db.ContactSMS)
		if note.Status != db.NotificationSent || note.Attempts != 2 || note.ProviderID != "SM1" || note.Error != "" {
			t.Fatalf("after the retry: %+v", note)
		}
	})
}

func TestShortRetryAfterKeepsTheBackoff(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS)
		f.sms.failures = []error{
			errors.New("twilio answered 503"),
			&notifiers.RetryAfterError{Wait: time.Second, Err: errors.New("twilio answered 429")},
		}
		f.openAt(0)
		f.run(15 * time.Second) // second attempt; the backoff is now 30 s
		f.run(20 * time.Second)
		if n := f.sms.callCount(); n != 2 {
			t.Fatalf("%d sends: a Retry-After shorter than the backoff must not bring the retry forward", n)
		}
		f.run(45 * time.Second)
		if n := f.sms.callCount(); n != 3 || len(f.sms.take()) != 1 {
			t.Fatalf("%d sends, want the third to succeed at +45s", n)
		}
	})
}

func TestPermanentFailureIsNotRetried(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS)
		f.sms.fail = notifiers.Permanent(errors.New("twilio answered 400 Bad Request: error 21211: invalid 'To' phone number"))
		alertID := f.openAt(0)
		f.run(2 * time.Hour)
		if n := f.sms.callCount(); n != 1 {
			t.Fatalf("%d sends of a permanently failing notification, want 1", n)
		}
		note := f.onlyNotification(db.ContactSMS)
		if note.Status != db.NotificationFailed || note.Attempts != 1 || !strings.Contains(note.Error, "21211") {
			t.Fatalf("notification %+v", note)
		}
		if jobs := f.pendingJobs(); len(jobs) != 0 {
			t.Fatalf("%d notify jobs left", len(jobs))
		}
		if timeline := strings.Join(f.timeline(alertID), "\n"); !strings.Contains(timeline, "Notification to alice by SMS failed") {
			t.Fatalf("timeline:\n%s", timeline)
		}
	})
}

func TestTemporaryFailureBacksOffUntilSent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS)
		timeout := errors.New("twilio: context deadline exceeded")
		f.sms.failures = []error{timeout, timeout, timeout}
		f.openAt(0)
		// Waits of 15 s, 30 s and 60 s: each retry comes exactly when its
		// backoff has passed and not a second earlier.
		for i, at := range []time.Duration{15 * time.Second, 45 * time.Second, 105 * time.Second} {
			f.run(at - time.Second)
			if n := f.sms.callCount(); n != i+1 {
				t.Fatalf("%d sends at +%s, want %d", n, at-time.Second, i+1)
			}
			f.run(at)
			if n := f.sms.callCount(); n != i+2 {
				t.Fatalf("%d sends at +%s, want %d", n, at, i+2)
			}
		}
		if sent := f.sms.take(); len(sent) != 1 {
			t.Fatalf("%d messages, want 1", len(sent))
		}
		note := f.onlyNotification(db.ContactSMS)
		if note.Status != db.NotificationSent || note.Attempts != 4 || note.ProviderID != "SM1" {
			t.Fatalf("notification %+v", note)
		}
	})
}

func TestTemporaryFailureGivesUpAfterMaxRetries(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS)
		f.sms.fail = errors.New("twilio answered 503 Service Unavailable")
		f.openAt(0)
		for h := range 10 {
			f.run(time.Duration(h+1) * time.Hour)
		}
		if n := f.sms.callCount(); n != 5 {
			t.Fatalf("%d sends, want 5", n)
		}
		note := f.onlyNotification(db.ContactSMS)
		if note.Status != db.NotificationFailed || note.Attempts != 5 || !strings.Contains(note.Error, "503") {
			t.Fatalf("notification %+v", note)
		}
		if jobs := f.pendingJobs(); len(jobs) != 0 {
			t.Fatalf("%d notify jobs left", len(jobs))
		}
	})
}

// A message out when its alert is closed has still been sent: the
// delivery log must say so, not stay SENDING with its job gone.
func TestSendUnderWayWhenTheAlertClosesIsRecorded(t *testing.T) {
	for _, fail := range []error{nil, errors.New("connection reset")} {
		t.Run(fmt.Sprintf("error %v", fail), func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, d *db.DB) {
				f := newDeliveryFixture(t, d, db.ContactEmail)
				f.email.fail = fail
				f.email.during = func(msg notifiers.Message) {
					if _, err := f.svc.Close(f.ctx, msg.AlertID, f.user); err != nil {
						t.Errorf("close alert %d: %v", msg.AlertID, err)
					}
				}
				alertID := f.openAt(0)
				f.run(2 * time.Hour)
				want, entry := db.NotificationSent, "Notified alice by EMAIL"
				if fail != nil {
					want, entry = db.NotificationFailed, "Notification to alice by EMAIL failed"
				}
				note := f.onlyNotification(db.ContactEmail)
				if note.Status != want || note.Attempts != 1 {
					t.Fatalf("notification %+v, want %s after one attempt", note, want)
				}
				if n := f.email.callCount(); n != 1 {
					t.Fatalf("%d sends, want 1", n)
				}
				if jobs := f.pendingJobs(); len(jobs) != 0 {
					t.Fatalf("%d notify jobs left", len(jobs))
				}
				if timeline := strings.Join(f.timeline(alertID), "\n"); !strings.Contains(timeline, entry) {
					t.Fatalf("timeline, want %q:\n%s", entry, timeline)
				}
			})
		})
	}
}
